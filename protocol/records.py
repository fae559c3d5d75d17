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
    Amount,
    Array,
    Blob,
    Check,
    Choice,
    Fixed,
    Slug,
    SortedSet,
    Tag,
    Text,
    UInt,
    Unique,
    spec,
)
from protocol.uri import URI_RULE_FROM, UriError, check_uri, workwork_digest

# Version 2: epoch roots name their manifest, the `manifest` kind exists, profiles have an
# `about` text, and the `proposal`, `vote` and `decision` kinds exist (collective decisions).
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
# A profile's free text about its author: a paragraph or a few, not a CV (a profile travels to
# every node on the `meta` topic, and matching reads it as a query).
MAX_ABOUT = 2000
# Acceptance ids per manifest part: a full part (34 bytes an id) stays under the 64 KiB record
# limit with room for its other fields, and an epoch of MAX_LEAVES takes MAX_PARTS parts.
MAX_MANIFEST_IDS = 1900
MAX_PARTS = -(-MAX_LEAVES // MAX_MANIFEST_IDS)

# Collective decisions. A voting window lasts from ten seconds (a quick poll among agents on one
# network, the demo) to 90 days; a proposal offers at most MAX_OPTIONS options to approve. A
# short window is safe against late votes: the owner's node signs the decision a settle time
# after the window closes (`chain.settle`), and the decision, not each node's arrival order,
# fixes the result.
MIN_WINDOW = 10
MAX_WINDOW = 90 * 86_400
MAX_OPTIONS = 16
# Quorum and threshold are in thousandths (per mille), so that tallies need no fractions.
PER_MILLE = 1000
# Ballots a decision lists: 34 bytes an id and up to 9 a power keep a full decision under the
# 64 KiB record limit. A proposal with more voters cannot be decided in one record (a later
# format would chain parts, as manifests do).
MAX_BALLOTS = 1400
OUTCOMES = ("passed", "rejected", "no quorum")

# Who decides a project's acceptances (`protocol.governance`): its owner and reviewers alone;
# they with lazy consensus (an acceptance stands unless a passed `accept` proposal made within
# `window` seconds of it overturns it); or the members alone (only passed `accept` proposals).
MODES = ("owner", "lazy", "vote")
# A project's governance settings, in wire order: how a project record states them and how a
# `settings` proposal changes them.
GOVERNANCE = (
    ("mode", Choice(*MODES)),
    ("quorum", UInt(PER_MILLE)),
    ("threshold", UInt(PER_MILLE)),
    ("half_life", UInt(MAX_EPOCH)),
    ("window", UInt(MAX_WINDOW)),
)

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
    # How many of the last fields are optional: added to the kind after records of it existed,
    # absent from the wire when empty (`()`, which such a field never holds when present), so
    # records made before them still decode, to the same bytes and id.
    OPTIONAL: ClassVar[int] = 0

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

    def wire(self) -> tuple[Any, ...]:
        """Returns the field values that go on the wire: `values` less the optional trailing
        fields that are absent (empty)."""
        found = self.values()
        end = len(found)
        while end > len(found) - self.OPTIONAL and found[end - 1] == ():
            end -= 1
        return found[:end]


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
    # Free text in the author's words (what they do, what they care about), possibly empty;
    # matching reads it beside the interests.
    about: str = spec(Text(MAX_ABOUT, multiline=True))


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
    # Optional: the governance settings [mode, quorum, threshold, half_life, window] (see
    # GOVERNANCE), or empty (absent from the wire) for the defaults (`protocol.governance`).
    governance: tuple[Any, ...] = spec(Fixed(*GOVERNANCE, optional=True), ())

    OPTIONAL: ClassVar[int] = 1


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
        # Contributions dated before the rule keep whatever text they carried (protocol.uri).
        if self.evidence_uri and self.created_at >= URI_RULE_FROM:
            try:
                check_uri(self.evidence_uri)
            except UriError as exc:
                raise InvalidField(self.KIND, "evidence_uri", str(exc)) from None
            named = workwork_digest(self.evidence_uri)
            if named is not None and self.evidence_hash and named != self.evidence_hash:
                raise InvalidField(
                    self.KIND,
                    "evidence_hash",
                    "differs from the sha256 that the workwork: evidence URI names",
                )


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


# The parameters of each action of a proposal, in wire order: (name, check). A proposal's
# `params` holds exactly these values, so that what a decision would do is signed and strict.
PARAMS: dict[str, tuple[tuple[str, Check], ...]] = {
    # Move `amount` of the project's pool in `token` (the zero address for ether) to `epoch`.
    "allocate": (
        ("epoch", UInt(MAX_EPOCH)),
        ("token", Blob(ADDRESS_SIZE)),
        ("amount", Amount()),
    ),
    # Accept (or re-weigh; weight 0 withdraws) a contribution of the project into `epoch`.
    "accept": (
        ("contribution_id", Blob(HASH_SIZE)),
        ("epoch", UInt(MAX_EPOCH)),
        ("weight", UInt(MAX_WEIGHT)),
    ),
    # The project's governance settings, all of them, as they would be after the decision;
    # `mode` and `window` may be left out together (OPTIONAL_PARAMS): they stay as they are.
    "settings": (
        ("quorum", UInt(PER_MILLE)),
        ("threshold", UInt(PER_MILLE)),
        ("half_life", UInt(MAX_EPOCH)),
        ("epoch_length", UInt(MAX_EPOCH)),
        ("reviewers", SortedSet(Blob(KEY_SIZE), MAX_REVIEWERS)),
        ("status", Choice("open", "closed")),
        GOVERNANCE[0],
        GOVERNANCE[4],
    ),
    # Free text only: a poll, no effect.
    "signal": (),
}
# How many of the last parameters of an action a proposal may leave out (all of them or none):
# added after proposals of the action existed, which keep decoding.
OPTIONAL_PARAMS: dict[str, int] = {"settings": 2}


@_register
@dataclass(frozen=True, slots=True)
class Proposal(Body):
    """A question put to a project's members; immutable (no revision).

    Votes count from `created_at` until `closes_at` (excluded), each with the voting power its
    author has in the project's anchored epochs up to `snapshot` (see `protocol.tally`). With
    no `options`, the choices are yes, no and abstain; with 2 to MAX_OPTIONS options, a vote
    approves any of them (approval voting, for budget splits and choosing among alternatives).
    """

    KIND: ClassVar[str] = "proposal"

    project_id: bytes = spec(Blob(HASH_SIZE))
    # What the decision would do; its parameters are `params`, in the order PARAMS gives.
    action: str = spec(Choice(*PARAMS))
    title: str = spec(Text(200, min_bytes=1))
    text: str = spec(Text(16_384, multiline=True))
    params: tuple[Any, ...] = spec(Array())
    options: tuple[str, ...] = spec(Unique(Text(200, min_bytes=1), MAX_OPTIONS))
    # The last epoch whose anchored work counts as voting power.
    snapshot: int = spec(UInt(MAX_EPOCH))
    closes_at: int = spec(UInt(MAX_TIMESTAMP, MIN_TIMESTAMP))

    def check(self) -> None:
        schema = PARAMS[self.action]
        sizes = {len(schema), len(schema) - OPTIONAL_PARAMS.get(self.action, 0)}
        if len(self.params) not in sizes:
            raise InvalidField(
                self.KIND,
                "params",
                f"a {self.action} proposal has {' or '.join(map(str, sorted(sizes)))} "
                f"parameters, got {len(self.params)}",
            )
        for (name, check), value in zip(schema, self.params, strict=False):
            check(self.KIND, f"params.{name}", value)
        if len(self.options) == 1:
            raise InvalidField(self.KIND, "options", "none (yes/no/abstain) or at least two")
        window = self.closes_at - self.created_at
        if not MIN_WINDOW <= window <= MAX_WINDOW:
            raise InvalidField(
                self.KIND,
                "closes_at",
                f"the window is {window} s, not within [{MIN_WINDOW}, {MAX_WINDOW}]",
            )

    def param(self, name: str) -> Any:
        """Returns the parameter `name` of the proposal's action (KeyError if it has none, or
        left it out)."""
        for (field, _), value in zip(PARAMS[self.action], self.params, strict=False):
            if field == name:
                return value
        raise KeyError(f"a {self.action} proposal has no parameter {name!r}")

    def named_params(self) -> dict[str, Any]:
        """Returns the parameters by name (those the proposal gives)."""
        return {name: v for (name, _), v in zip(PARAMS[self.action], self.params, strict=False)}


@_register
@dataclass(frozen=True, slots=True)
class Vote(Body):
    """A member's vote on a proposal; revisable until the window closes.

    Among the votes of one author on one proposal dated inside its window, the highest
    (revision, id) counts. `choice` is yes, no or abstain on a proposal without options; on one
    with options it is `approve`, with the indices of the options approved in `approve`, or
    abstain.
    """

    KIND: ClassVar[str] = "vote"

    revision: int = spec(UInt(MAX_REVISION))
    # The proposal's project, so that the vote travels on its work shard without a look-up.
    project_id: bytes = spec(Blob(HASH_SIZE))
    proposal_id: bytes = spec(Blob(HASH_SIZE))
    choice: str = spec(Choice("yes", "no", "abstain", "approve"))
    approve: tuple[int, ...] = spec(SortedSet(UInt(MAX_OPTIONS - 1), MAX_OPTIONS))
    reason: str = spec(Text(2000, multiline=True))

    def check(self) -> None:
        if (self.choice == "approve") != bool(self.approve):
            raise InvalidField(
                self.KIND, "approve", "lists options when the choice is approve, and only then"
            )


@_register
@dataclass(frozen=True, slots=True)
class Decision(Body):
    """The final tally of a proposal, signed by its project's owner once the window closed.

    `ballots` are the ids of the votes counted (one per author, sorted) and `powers` the power
    each carried, in the same order; `total` is the power of every member at the snapshot. The
    figures (`yes`, `no`, `abstain`, `approvals`, `winners`, `outcome`) follow from them and the
    settings by `protocol.tally`'s rules, which `protocol.validate.check_decision` recomputes, so
    a decision whose figures do not add up is invalid for good. Whether each power is the
    power the chain's anchored epochs give is checked by every reader against its records
    (`node.decisions`) and by `workwork audit`. Once stored, the decision is the proposal's
    result: votes arriving later change nothing. Of several decisions of one proposal (an
    owner that signed twice), the lowest (created_at, id) holds
    (`protocol.validate.first_decision`).
    """

    KIND: ClassVar[str] = "decision"

    project_id: bytes = spec(Blob(HASH_SIZE))
    proposal_id: bytes = spec(Blob(HASH_SIZE))
    ballots: tuple[bytes, ...] = spec(SortedSet(Blob(HASH_SIZE), MAX_BALLOTS))
    powers: tuple[int, ...] = spec(Array())
    total: int = spec(UInt())
    quorum: int = spec(UInt(PER_MILLE))
    threshold: int = spec(UInt(PER_MILLE))
    half_life: int = spec(UInt(MAX_EPOCH))
    yes: int = spec(UInt())
    no: int = spec(UInt())
    abstain: int = spec(UInt())
    approvals: tuple[int, ...] = spec(Array())
    winners: tuple[int, ...] = spec(Unique(UInt(MAX_OPTIONS - 1), MAX_OPTIONS))
    outcome: str = spec(Choice(*OUTCOMES))

    def check(self) -> None:
        if len(self.powers) != len(self.ballots):
            raise InvalidField(self.KIND, "powers", "one power for each ballot, in its order")
        if len(self.approvals) > MAX_OPTIONS:
            raise InvalidField(self.KIND, "approvals", f"at most {MAX_OPTIONS} options")
        number = UInt()
        for i, power in enumerate(self.powers):
            number(self.KIND, f"powers.{i}", power)
        for i, power in enumerate(self.approvals):
            number(self.KIND, f"approvals.{i}", power)
        if sum(self.powers) > self.total:
            raise InvalidField(self.KIND, "total", "is below the power of the ballots")
