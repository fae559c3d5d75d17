"""An epoch's leaves and tree, as a pure function of the records that decide them.

Theory of operation. An epoch is *open* until the project's owner anchors it, then *anchored*
for good. The two have different sources of leaves:

- An open epoch's tree has one leaf per contribution whose acceptance in force (see
  `protocol.validate.latest_authorized`) puts it in that epoch with a weight above zero, except
  contributions that an anchored epoch already pays (they are *settled*); the leaf pays the
  contribution's own payout address. This is what the owner's node anchors, and what it lists
  in the epoch's manifest.
- An anchored epoch's tree is built from the acceptances its manifest lists (`Manifest`, named
  by the `epoch_root` record), whatever acceptances a node holds or which of them are in force:
  `committed`. A node stores an epoch root only with all of its manifest and every acceptance
  listed (`protocol.validate.dependencies`), so every node that knows the epoch is anchored
  builds the same tree.

An acceptance that does not count is *late* (`standing`): its epoch is anchored and does not
list it (a reviewer's acceptance racing the anchor, a backdated one), or its contribution is
settled by an anchored epoch already (a revision that would re-weigh, move or withdraw work that
was anchored). Late acceptances stay valid and stored; they change no tree and are never paid.

Every rule here depends on the set of records alone: the acceptance in force is chosen by
(revision, id), settled contributions and anchored epochs by the manifests stored, and the Merkle
tree sorts its leaves. So every node and auditor holding the same records computes the same trees,
whatever order the records reached them in.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from protocol.envelope import Record
from protocol.errors import InvalidManifest, MissingRecord
from protocol.merkle import Leaf, MerkleTree
from protocol.records import (
    MAX_MANIFEST_IDS,
    Acceptance,
    Body,
    Contribution,
    EpochRoot,
    Manifest,
)
from protocol.validate import (
    check_acceptance,
    check_epoch_root,
    check_manifest,
    latest_authorized,
)


@dataclass(frozen=True, slots=True)
class Summary:
    """What an `epoch_root` record and the contract's `anchor` call state about a tree."""

    root: bytes
    leaf_count: int
    total_weight: int


def summarize(merkle: MerkleTree) -> Summary:
    """Returns the summary of a tree: its root, number of leaves and total weight."""
    return Summary(merkle.root, len(merkle), sum(leaf.weight for leaf in merkle.leaves))


# Open epochs.


def counted(
    project: Record,
    acceptances: Iterable[Record],
    contributions: Mapping[bytes, Record],
    epoch: int,
    settled: Collection[bytes] = (),
) -> tuple[tuple[Record, Leaf], ...]:
    """Returns the acceptances that give an open epoch its leaves, each with its leaf.

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
        settled: ids of contributions that an anchored epoch's manifest lists: they have no
            leaf here, whatever their acceptance in force says (it is late).

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
        if body.epoch == epoch and body.weight > 0 and work.id not in settled:
            leaf = Leaf(work.id, work.expect(Contribution).payout, body.weight)
            result.append((acceptance, leaf))
    return tuple(result)


def leaves(
    project: Record,
    acceptances: Iterable[Record],
    contributions: Mapping[bytes, Record],
    epoch: int,
    settled: Collection[bytes] = (),
) -> tuple[Leaf, ...]:
    """Returns the leaves of an open epoch of a project: see `counted`."""
    return tuple(leaf for _, leaf in counted(project, acceptances, contributions, epoch, settled))


def tree(
    project: Record,
    acceptances: Iterable[Record],
    contributions: Mapping[bytes, Record],
    epoch: int,
    settled: Collection[bytes] = (),
) -> tuple[MerkleTree, Summary]:
    """Returns the Merkle tree of an open epoch of a project and its summary.

    Raises:
        EmptyTree: no contribution is accepted into that epoch.
        MissingRecord, and the errors of `counted`.
    """
    merkle = MerkleTree.build(leaves(project, acceptances, contributions, epoch, settled))
    return merkle, summarize(merkle)


# Anchored epochs.


def manifest(
    project_id: bytes,
    epoch: int,
    acceptance_ids: Iterable[bytes],
    *,
    created_at: int,
    sign: Callable[[Body], Record],
    per_part: int = MAX_MANIFEST_IDS,
) -> tuple[Record, ...]:
    """Returns the signed parts of the manifest listing `acceptance_ids`, part 0 first.

    The ids are sorted and cut in order into parts of `per_part` ids (the last may hold
    fewer). Each part names the record id of the next, so the parts are signed from the last.

    Args:
        project_id, epoch: the epoch the manifest is of.
        acceptance_ids: the ids of the acceptances the epoch's tree was built from.
        created_at: the parts' timestamp.
        sign: signs a body with the owner's key (`protocol.sign` with the key, or the node's
            identity).
        per_part: ids per part, at most MAX_MANIFEST_IDS (smaller in tests, to make parts).

    Raises:
        InvalidManifest: there is no id, or one appears twice.
        InvalidField: `per_part` is out of bounds, or there are more ids than an epoch takes.
    """
    ids = sorted(acceptance_ids)
    if not ids:
        raise InvalidManifest("a manifest lists at least one acceptance")
    if len(set(ids)) != len(ids):
        raise InvalidManifest("a manifest lists each acceptance once")
    if not 1 <= per_part <= MAX_MANIFEST_IDS:
        raise InvalidManifest(f"{per_part} ids a part is outside [1, {MAX_MANIFEST_IDS}]")
    chunks = [tuple(ids[i : i + per_part]) for i in range(0, len(ids), per_part)]
    signed: list[Record] = []
    following = b""
    for index in range(len(chunks) - 1, -1, -1):
        part = sign(
            Manifest(
                created_at=created_at,
                project_id=project_id,
                epoch=epoch,
                part=index,
                parts=len(chunks),
                next=following,
                acceptances=chunks[index],
            )
        )
        signed.append(part)
        following = part.id
    return tuple(reversed(signed))


def manifest_parts(
    root: Record, project: Record, get: Callable[[bytes], Record | None]
) -> tuple[Record, ...]:
    """Returns the parts of the manifest an epoch root names, part 0 first, links checked.

    Args:
        root: the epoch root.
        project: any revision of its project.
        get: returns a record by id, or None (a store's `get`, or a dict's).

    Raises:
        MissingRecord: a part is not to be had from `get`.
        InvalidManifest, NotAuthorized, ReferenceMismatch, UnknownKind: a part does not fit the
            root or the part before it (`validate.check_epoch_root`, `validate.check_manifest`).
    """
    body = root.expect(EpochRoot)
    parts: list[Record] = []
    wanted = body.manifest
    for index in range(body.parts):
        part = get(wanted)
        if part is None:
            raise MissingRecord(
                f"part {index} ({wanted.hex()[:16]}) of the manifest of epoch root "
                f"{root.id.hex()[:16]} is not at hand"
            )
        if index == 0:
            check_epoch_root(root, project, part)
        else:
            check_manifest(parts[-1], project, part, None)
        parts.append(part)
        wanted = part.expect(Manifest).next
    check_manifest(parts[-1], project, None, None)
    return tuple(parts)


def listed(parts: Sequence[Record]) -> tuple[bytes, ...]:
    """Returns the acceptance ids the parts of a manifest list, in order (sorted)."""
    return tuple(aid for part in parts for aid in part.expect(Manifest).acceptances)


def committed(
    project_id: bytes,
    epoch: int,
    acceptances: Iterable[Record],
    contributions: Mapping[bytes, Record],
) -> tuple[Leaf, ...]:
    """Returns the leaves of an anchored epoch: one per acceptance its manifest lists.

    Every listed acceptance counts, whoever of the owner and reviewers signed it and whatever
    revision is in force now: the owner vouched for the list by signing the manifest, and the
    chain holds the root. The leaf pays the contribution's payout address.

    Args:
        project_id, epoch: the epoch.
        acceptances: the acceptance records the manifest lists.
        contributions: their contributions by id.

    Raises:
        MissingRecord: a listed acceptance's contribution is not in `contributions`.
        InvalidManifest: an acceptance is of another project or epoch, withdraws, or judges a
            contribution that another listed acceptance judges too.
        ReferenceMismatch, UnknownKind: a record is not what it should be.
    """
    result = []
    judged: set[bytes] = set()
    for acceptance in acceptances:
        body = acceptance.expect(Acceptance)
        if body.project_id != project_id or body.epoch != epoch or body.weight == 0:
            raise InvalidManifest(
                f"the manifest lists acceptance {acceptance.id.hex()[:16]}, which does not put "
                f"a contribution of this project into epoch {epoch} with a weight"
            )
        if body.contribution_id in judged:
            raise InvalidManifest(
                f"the manifest lists two acceptances of contribution "
                f"{body.contribution_id.hex()[:16]}"
            )
        judged.add(body.contribution_id)
        work = contributions.get(body.contribution_id)
        if work is None:
            raise MissingRecord(
                f"acceptance {acceptance.id.hex()[:16]} names contribution "
                f"{body.contribution_id.hex()[:16]}, which was not given"
            )
        if work.expect(Contribution).project_id != project_id:
            raise InvalidManifest(
                f"acceptance {acceptance.id.hex()[:16]} names a contribution of another project"
            )
        result.append(Leaf(work.id, work.expect(Contribution).payout, body.weight))
    return tuple(result)


def first_root(roots: Iterable[Record]) -> Record | None:
    """Returns the epoch root whose manifest says what an epoch covers, when no chain decides.

    An honest owner publishes one manifest per epoch, which every root of the epoch names,
    even on several chains; should two roots name different manifests, every node picks the
    same one: the lowest (created_at, id).
    """
    return min(roots, key=lambda r: (r.body.created_at, r.id), default=None)


# Standing: what counts of a contribution's acceptances.


class Status(enum.StrEnum):
    """Where a contribution stands; the API's contribution view carries this value."""

    # Its acceptance in force counts in an epoch that is not anchored yet.
    OPEN = "open"
    # An anchored epoch's manifest lists an acceptance of it: that epoch pays it.
    ANCHORED = "anchored"
    # Its acceptance in force is late: its epoch was anchored without it. Not counted or paid.
    LATE = "late"
    # Its acceptance in force withdraws it (weight 0), and no anchored epoch lists it.
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class Standing:
    """Which acceptance of a contribution counts, and in which epoch.

    Attributes:
        status: see `Status`.
        acceptance: the acceptance that counts (ANCHORED: the one listed; OPEN: the one in
            force) or, for LATE and WITHDRAWN, the one in force, which does not.
        late: the acceptance in force when it does not count although the contribution is
            anchored (a revision that came after the anchor), else None.
    """

    status: Status
    acceptance: Record
    late: Record | None = None

    @property
    def epoch(self) -> int:
        return self.acceptance.expect(Acceptance).epoch

    @property
    def weight(self) -> int:
        return self.acceptance.expect(Acceptance).weight


def standing(
    in_force: Record | None,
    listed_in: Sequence[Record],
    anchored: Callable[[int], bool],
) -> Standing | None:
    """Returns where a contribution stands, or None if it has no acceptance that counts or
    could.

    Args:
        in_force: its acceptance in force, or None.
        listed_in: the acceptances of it that manifests of anchored epochs list (normally
            none or one; the lowest (epoch, id) is taken if an owner listed it twice).
        anchored: whether an epoch of its project has an epoch root.
    """
    if listed_in:
        paid = min(listed_in, key=lambda a: (a.expect(Acceptance).epoch, a.id))
        late = in_force if in_force is not None and in_force.id != paid.id else None
        return Standing(Status.ANCHORED, paid, late)
    if in_force is None:
        return None
    body = in_force.expect(Acceptance)
    if body.weight == 0:
        return Standing(Status.WITHDRAWN, in_force)
    if anchored(body.epoch):
        return Standing(Status.LATE, in_force)
    return Standing(Status.OPEN, in_force)
