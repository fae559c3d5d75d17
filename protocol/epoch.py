"""An epoch's leaves and tree, as a pure function of the records that decide them.

The tree of (owner, project, epoch) has one leaf per contribution whose acceptance in force (see
`protocol.validate.latest_authorized`) puts it in that epoch with a weight above zero; the leaf
pays the contribution's own payout address. The acceptance in force is chosen among those whose
author the project revision in force authorizes, by (revision, id), and the Merkle tree sorts its
leaves, so every node and auditor holding the same records computes the same root, whatever
order the records reached them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from protocol.envelope import Record
from protocol.errors import MissingRecord
from protocol.merkle import Leaf, MerkleTree
from protocol.records import Acceptance, Contribution
from protocol.validate import check_acceptance, latest_authorized


@dataclass(frozen=True, slots=True)
class Summary:
    """What an `epoch_root` record and the contract's `anchor` call state about a tree."""

    root: bytes
    leaf_count: int
    total_weight: int


def leaves(
    project: Record,
    acceptances: Iterable[Record],
    contributions: Mapping[bytes, Record],
    epoch: int,
) -> tuple[Leaf, ...]:
    """Returns the leaves of one epoch of a project.

    Args:
        project: the project revision in force.
        acceptances: every acceptance known for the project's contributions, of every epoch,
            revision and author: a later revision may move a contribution to another epoch or
            withdraw it, so filtering by epoch before choosing the revision in force would be
            wrong. Those whose author `project` does not authorize (a reviewer it removed, a
            stranger) are ignored, not refused: a reviewer's acceptances stay stored when a
            revision removes the reviewer, and count again if one names them again.
        contributions: contribution records by id; each acceptance's contribution must be here.
        epoch: the epoch whose leaves are wanted.

    Raises:
        MissingRecord: an acceptance names a contribution that is not in `contributions`.
        ReferenceMismatch, UnknownKind: an acceptance in force breaks a rule
            (`validate.check_acceptance`); callers holding only stored records never see these.
    """
    result = []
    for acceptance in latest_authorized(project, acceptances).values():
        body = acceptance.expect(Acceptance)
        work = contributions.get(body.contribution_id)
        if work is None:
            raise MissingRecord(
                f"acceptance {acceptance.id.hex()[:16]} names contribution "
                f"{body.contribution_id.hex()[:16]}, which was not given"
            )
        check_acceptance(acceptance, project, work)
        if body.epoch == epoch and body.weight > 0:
            result.append(Leaf(work.id, work.expect(Contribution).payout, body.weight))
    return tuple(result)


def tree(
    project: Record,
    acceptances: Iterable[Record],
    contributions: Mapping[bytes, Record],
    epoch: int,
) -> tuple[MerkleTree, Summary]:
    """Returns the Merkle tree of one epoch of a project and its summary.

    Raises:
        EmptyTree: no contribution is accepted into that epoch.
        MissingRecord, and the errors of `leaves`.
    """
    merkle = MerkleTree.build(leaves(project, acceptances, contributions, epoch))
    total = sum(leaf.weight for leaf in merkle.leaves)
    return merkle, Summary(merkle.root, len(merkle), total)
