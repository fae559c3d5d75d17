"""The record kinds: frozen dataclasses whose fields are the body of a signed record.

A body is encoded as the msgpack array `[FORMAT_VERSION, kind, created_at, *fields]`, fields in
the order the class declares them. A body object is valid by construction: `__post_init__` runs
the checker of every field (see `protocol.fields`) and the cross-field rules of its kind, so an
instance that exists has passed every rule that needs no other record and no clock.

Revisable kinds carry a `revision`; a higher revision of the same subject replaces a lower one
(see `protocol.validate.slot`). Projects are named by their owner: `project_id(owner, name)` is
stable across revisions, which is what contributions, acceptances, epoch roots and the chain
contract refer to.

An anchored epoch is an `epoch_root` and the `manifest` it names: the ids of exactly the
acceptances its tree was built from, in parts that name each other (see `Manifest`), so that
what the root covers is fixed by signed records and not by whatever acceptances a node holds.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from protocol.errors import InvalidField
from protocol.fields import (
    ADDRESS_SIZE,
    HASH_SIZE,
    KEY_SIZE,
    MAX_SAFE_INT,
    Blob,
    Check,
    Choice,
    Slug,
    SortedSet,
    Tag,
    Text,
    UInt,
    spec,
)

# Version 2: epoch roots name their manifest, and the `manifest` kind exists.
FORMAT_VERSION = 2

# Seconds since 1970. Anything before 2020 is a broken clock, not a record.
MIN_TIMESTAMP = 1_577_836_800
MAX_TIMESTAMP = 2**40

# Bounds chosen so that an epoch's total weight (at most MAX_LEAVES * MAX_WEIGHT < 2**52) fits
# a uint64 and a JavaScript Number.
MAX_WEIGHT = 2**32 - 1
MAX_LEAVES = 2**20
MAX_EPOCH = 2**32 - 1
MAX_REVISION = MAX_SAFE_INT
MAX_REVIEWERS = 16
MAX_TAGS = 32
# Acceptance ids per manifest part: a full part (34 bytes an id) stays under the 64 KiB record
# limit with room for its other fields, and an epoch of MAX_LEAVES takes MAX_PARTS parts.
MAX_MANIFEST_IDS = 1900
MAX_PARTS = -(-MAX_LEAVES // MAX_MANIFEST_IDS)

_PROJECT_DOMAIN = b"workwork/project/v1\x00"


@functools.lru_cache(maxsize=4096)  # every contribution's check recomputes its project's id
def project_id(owner: bytes, name: str) -> bytes:
    """Returns the stable id of the project `name` of `owner` (an Ed25519 public key).

    It does not change when the project is revised, so references to it stay valid; the owner key
    is part of it, so nobody else can post a project with the same id.
    """
    return hashlib.sha256(_PROJECT_DOMAIN + owner + name.encode()).digest()


@dataclass(frozen=True, slots=True)
class Body:
    """Fields common to every kind; subclasses add theirs after these."""

    KIND: ClassVar[str] = ""
    # Filled in by `_register` from the dataclass fields: (name, check) in wire order.
    SCHEMA: ClassVar[tuple[tuple[str, Check], ...]] = ()

    created_at: int = spec(UInt(MAX_TIMESTAMP, MIN_TIMESTAMP))

    def __post_init__(self) -> None:
        kind = self.KIND
        for name, check in self.SCHEMA:
            check(kind, name, getattr(self, name))
        self.check()

    def check(self) -> None:
        """Checks rules that involve more than one field; the default has none."""

    def values(self) -> tuple[Any, ...]:
        """Returns the field values in wire order."""
        return tuple(getattr(self, name) for name, _ in self.SCHEMA)


KINDS: dict[str, type[Body]] = {}


def _register(cls: type[Body]) -> type[Body]:
    cls.SCHEMA = tuple((f.name, f.metadata["check"]) for f in fields(cls))
    KINDS[cls.KIND] = cls
    return cls


@_register
@dataclass(frozen=True, slots=True)
class Profile(Body):
    """Who a participant is: one per author, replaced by higher revisions."""

    KIND: ClassVar[str] = "profile"

    revision: int = spec(UInt(MAX_REVISION))
    name: str = spec(Text(64, min_bytes=1))
    actor: str = spec(Choice("human", "agent"))
    skills: tuple[str, ...] = spec(SortedSet(Tag(), MAX_TAGS))
    interests: tuple[str, ...] = spec(SortedSet(Tag(), MAX_TAGS))
    payout: bytes = spec(Blob(ADDRESS_SIZE, nonzero=True))
    rate: str = spec(Text(64))


@_register
@dataclass(frozen=True, slots=True)
class Project(Body):
    """A project posting; its id is `project_id(author, name)`, stable across revisions."""

    KIND: ClassVar[str] = "project"

    revision: int = spec(UInt(MAX_REVISION))
    name: str = spec(Slug())
    title: str = spec(Text(200, min_bytes=1))
    description: str = spec(Text(16_384, multiline=True))
    skills: tuple[str, ...] = spec(SortedSet(Tag(), MAX_TAGS))
    # The EVM address that anchors the project's epochs (msg.sender of `anchor`).
    payout: bytes = spec(Blob(ADDRESS_SIZE, nonzero=True))
    # Seconds per epoch; 0 means epochs close only on the owner's command.
    epoch_length: int = spec(UInt(MAX_EPOCH))
    status: str = spec(Choice("open", "closed"))
    # Ed25519 keys, besides the owner's, whose acceptances count for this project.
    reviewers: tuple[bytes, ...] = spec(SortedSet(Blob(KEY_SIZE), MAX_REVIEWERS))


@_register
@dataclass(frozen=True, slots=True)
class Contribution(Body):
    """Work submitted to a project; immutable (no revision)."""

    KIND: ClassVar[str] = "contribution"

    project_id: bytes = spec(Blob(HASH_SIZE))
    summary: str = spec(Text(4096, min_bytes=1, multiline=True))
    evidence_uri: str = spec(Text(2048))
    # sha256 or other 32-byte digest of the work itself, or empty.
    evidence_hash: bytes = spec(Blob(0, HASH_SIZE))
    # Claimed effort in minutes.
    effort: int = spec(UInt(10_000_000))
    payout: bytes = spec(Blob(ADDRESS_SIZE, nonzero=True))

    def check(self) -> None:
        if not self.evidence_uri and not self.evidence_hash:
            raise InvalidField(self.KIND, "evidence", "needs an evidence URI, a hash or both")


@_register
@dataclass(frozen=True, slots=True)
class Acceptance(Body):
    """The owner's (or a reviewer's) verdict on a contribution; weight 0 withdraws it.

    Revisions replace each other per contribution, whoever of the owner and reviewers signed them.
    """

    KIND: ClassVar[str] = "acceptance"

    revision: int = spec(UInt(MAX_REVISION))
    project_id: bytes = spec(Blob(HASH_SIZE))
    contribution_id: bytes = spec(Blob(HASH_SIZE))
    epoch: int = spec(UInt(MAX_EPOCH))
    weight: int = spec(UInt(MAX_WEIGHT))


@_register
@dataclass(frozen=True, slots=True)
class Manifest(Body):
    """One part of the list of acceptances an anchored epoch's tree was built from.

    The whole list is the ids of the acceptances, sorted and without duplicates, cut in order
    into `parts` parts of 1 to MAX_MANIFEST_IDS ids. Part `part` names the record id of part
    `part + 1` in `next` (the last part names none), and the epoch root names the record id of
    part 0, so the root commits to every part, and through them to every acceptance id, as a
    hash chain: each part can be checked on its own against the one before it.
    """

    KIND: ClassVar[str] = "manifest"

    project_id: bytes = spec(Blob(HASH_SIZE))
    epoch: int = spec(UInt(MAX_EPOCH))
    part: int = spec(UInt(MAX_PARTS - 1))
    parts: int = spec(UInt(MAX_PARTS, 1))
    # The record id of the next part, or empty in the last part.
    next: bytes = spec(Blob(0, HASH_SIZE))
    acceptances: tuple[bytes, ...] = spec(SortedSet(Blob(HASH_SIZE), MAX_MANIFEST_IDS))

    def check(self) -> None:
        if not self.acceptances:
            raise InvalidField(self.KIND, "acceptances", "a part lists at least one acceptance")
        if self.part >= self.parts:
            raise InvalidField(self.KIND, "part", f"{self.part} is not below parts {self.parts}")
        if (self.part == self.parts - 1) != (not self.next):
            raise InvalidField(
                self.KIND, "next", "names the next part in every part but the last, and only there"
            )


@_register
@dataclass(frozen=True, slots=True)
class EpochRoot(Body):
    """The anchored Merkle root of one (project, epoch), its manifest, and where it was anchored.

    `manifest` is the record id of part 0 of the manifest (`Manifest`) listing the acceptances
    the tree was built from, in `parts` parts.
    """

    KIND: ClassVar[str] = "epoch_root"

    project_id: bytes = spec(Blob(HASH_SIZE))
    epoch: int = spec(UInt(MAX_EPOCH))
    root: bytes = spec(Blob(HASH_SIZE))
    leaf_count: int = spec(UInt(MAX_LEAVES, 1))
    total_weight: int = spec(UInt(MAX_LEAVES * MAX_WEIGHT, 1))
    manifest: bytes = spec(Blob(HASH_SIZE))
    parts: int = spec(UInt(MAX_PARTS, 1))
    chain_id: int = spec(UInt(MAX_SAFE_INT, 1))
    contract: bytes = spec(Blob(ADDRESS_SIZE, nonzero=True))
    tx_hash: bytes = spec(Blob(HASH_SIZE))

    def check(self) -> None:
        # Leaves of weight 0 are left out of the tree, so every leaf weighs at least 1.
        if not self.leaf_count <= self.total_weight <= self.leaf_count * MAX_WEIGHT:
            raise InvalidField(
                self.KIND, "total_weight", "must lie between leaf_count and leaf_count * MAX_WEIGHT"
            )
        # One leaf per listed acceptance, and every part lists 1 to MAX_MANIFEST_IDS of them.
        if not self.parts <= self.leaf_count <= self.parts * MAX_MANIFEST_IDS:
            raise InvalidField(
                self.KIND, "parts", "must fit leaf_count: 1 to MAX_MANIFEST_IDS leaves a part"
            )
