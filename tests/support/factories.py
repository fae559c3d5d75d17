"""Builders of valid records with fixed keys, shared by the tests of every layer."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from nacl.signing import SigningKey

from protocol import (
    Acceptance,
    Contribution,
    EpochRoot,
    Profile,
    Project,
    Proposal,
    Record,
    Vote,
    project_id,
    sign,
)
from protocol.epoch import committed
from protocol.epoch import manifest as sign_manifest
from protocol.merkle import MerkleTree
from protocol.records import MAX_MANIFEST_IDS

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, the clock of most tests


def key(name: str) -> SigningKey:
    """Returns the fixed signing key of a named test actor."""
    return SigningKey(hashlib.sha256(b"workwork test key " + name.encode()).digest())


def pub(name: str) -> bytes:
    return bytes(key(name).verify_key)


def address(name: str) -> bytes:
    return hashlib.sha256(b"address " + name.encode()).digest()[:20]


def profile(who: str = "alice", **changes: Any) -> Record:
    body = Profile(
        created_at=T0,
        revision=0,
        name=who.title(),
        actor="human",
        skills=("python",),
        interests=("p2p",),
        payout=address(who),
        rate="",
        about="",
    )
    return sign(replace(body, **changes), key(who))


def project(owner: str = "alice", name: str = "docs", **changes: Any) -> Record:
    body = Project(
        created_at=T0,
        revision=0,
        name=name,
        title=f"Project {name}",
        description="",
        skills=("writing",),
        payout=address(owner),
        epoch_length=86_400,
        status="open",
        reviewers=(),
    )
    return sign(replace(body, **changes), key(owner))


def pid(owner: str = "alice", name: str = "docs") -> bytes:
    return project_id(pub(owner), name)


def contribution(
    who: str = "bob", owner: str = "alice", name: str = "docs", **changes: Any
) -> Record:
    body = Contribution(
        created_at=T0 + 10,
        project_id=pid(owner, name),
        summary=f"work by {who}",
        evidence_uri="https://example.org/work",
        evidence_hash=b"",
        effort=60,
        payout=address(who),
    )
    return sign(replace(body, **changes), key(who))


def acceptance(
    work: Record, signer: str = "alice", *, weight: int = 10, epoch: int = 0, **changes: Any
) -> Record:
    body = Acceptance(
        created_at=T0 + 20,
        revision=0,
        project_id=work.expect(Contribution).project_id,
        contribution_id=work.id,
        epoch=epoch,
        weight=weight,
    )
    return sign(replace(body, **changes), key(signer))


def epoch_root(owner: str = "alice", name: str = "docs", **changes: Any) -> Record:
    """An epoch root; its manifest is made up unless `manifest` (and `parts`) name one: a store
    holds such a root only as an orphan. `anchoring` makes a root with its manifest."""
    body = EpochRoot(
        created_at=T0 + 30,
        project_id=pid(owner, name),
        epoch=0,
        root=b"\x01" * 32,
        leaf_count=1,
        total_weight=10,
        manifest=b"\x03" * 32,
        parts=1,
        chain_id=31337,
        contract=address("contract"),
        tx_hash=b"\x02" * 32,
    )
    return sign(replace(body, **changes), key(owner))


def manifest(
    acceptances: Sequence[Record],
    owner: str = "alice",
    name: str = "docs",
    *,
    epoch: int = 0,
    per_part: int = MAX_MANIFEST_IDS,
    created_at: int = T0 + 30,
) -> tuple[Record, ...]:
    """The signed parts of the manifest of `acceptances`, part 0 first."""
    return manifest_of(
        [a.id for a in acceptances],
        owner,
        name,
        epoch=epoch,
        per_part=per_part,
        created_at=created_at,
    )


def manifest_of(
    ids: Sequence[bytes],
    owner: str = "alice",
    name: str = "docs",
    *,
    epoch: int = 0,
    per_part: int = MAX_MANIFEST_IDS,
    created_at: int = T0 + 30,
) -> tuple[Record, ...]:
    """The signed parts of the manifest listing acceptance ids `ids`, part 0 first."""
    return sign_manifest(
        pid(owner, name),
        epoch,
        ids,
        created_at=created_at,
        sign=lambda body: sign(body, key(owner)),
        per_part=per_part,
    )


def anchoring(
    acceptances: Sequence[Record],
    works: Sequence[Record],
    owner: str = "alice",
    name: str = "docs",
    *,
    epoch: int = 0,
    per_part: int = MAX_MANIFEST_IDS,
    **changes: Any,
) -> list[Record]:
    """The manifest of `acceptances` (of `works`) and the epoch root of their tree, as the owner
    publishes them once the epoch is anchored: the parts, then the root."""
    parts = manifest(acceptances, owner, name, epoch=epoch, per_part=per_part)
    built = MerkleTree.build(
        committed(pid(owner, name), epoch, acceptances, {w.id: w for w in works})
    )
    fields: dict[str, Any] = {
        "epoch": epoch,
        "root": built.root,
        "leaf_count": len(built),
        "total_weight": sum(leaf.weight for leaf in built.leaves),
        "manifest": parts[0].id,
        "parts": len(parts),
        **changes,
    }
    return [*parts, epoch_root(owner, name, **fields)]


def proposal(who: str = "bob", owner: str = "alice", name: str = "docs", **changes: Any) -> Record:
    """A yes/no signal proposal, open from T0 + 100 for a day, counting epochs up to 0."""
    body = Proposal(
        created_at=T0 + 100,
        project_id=pid(owner, name),
        action="signal",
        title=f"A question from {who}",
        text="",
        params=(),
        options=(),
        snapshot=0,
        closes_at=T0 + 100 + 86_400,
    )
    return sign(replace(body, **changes), key(who))


def vote(
    question: Record, who: str = "bob", choice: str = "yes", *, revision: int = 0, **changes: Any
) -> Record:
    """A vote on `question`, dated a minute after it opened."""
    asked = question.expect(Proposal)
    fields: dict[str, Any] = {
        "created_at": asked.created_at + 60,
        "revision": revision,
        "project_id": asked.project_id,
        "proposal_id": question.id,
        "choice": choice,
        "approve": (),
        "reason": "",
        **changes,
    }
    return sign(Vote(**fields), key(who))


def decision(
    question: Record,
    votes: Sequence[Record],
    power: dict[bytes, int],
    owner: str = "alice",
    **changes: Any,
) -> Record:
    """The owner's decision on `question` from `votes` and `power` (by key), dated at its close."""
    from protocol.tally import decision as record_of
    from protocol.tally import tally

    made = record_of(tally(question, votes, power), created_at=question.expect(Proposal).closes_at)
    return sign(replace(made, **changes), key(owner))
