"""Final outcomes of proposals from the store: the owner's signed decision, checked against what
this node holds, and the owner's side that signs it.

A proposal's tally from the votes a node holds (`node.decisions.decide`) is provisional: a vote
is dated by its signer, so one signed late and backdated into the window can still arrive. Once
the window has closed and a settle time for sync has passed, the project's owner signs a
`decision` (`protocol.records.Decision`) listing the ballots it counted and their powers; from
then on the proposal's result is the decision's, on every node, whatever votes arrive later.

The store admits a decision only if its figures follow from the ballots it lists
(`protocol.validate.check_decision`). What needs the anchored epochs is checked here, on read,
against this node's records: each ballot's power and the total must be what the credits up to
the snapshot give, and the settings what the project has. A decision that fails is shown with
its findings and is not `valid`: no node executes it, and `workwork audit` reports it. A vote
dated inside the window that the decision leaves out, or a later revision of a listed one, is a
finding too (the owner may have signed before it arrived), not a change of the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from node.decisions import Decision, _all, _project, decide
from node.errors import Conflict
from node.keys import Identity
from protocol import Decision as DecisionBody
from protocol import Proposal, Record
from protocol.records import MAX_BALLOTS
from protocol.tally import Settings, decayed, tally
from protocol.tally import decision as decision_body
from protocol.validate import first_decision
from storage import Store

# How long after a window closes the owner's node waits before signing its decision, so that
# votes made at the last moment reach it by gossip or sync (a setting: chain.settle).
DEFAULT_SETTLE = 120.0


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a decision gets wrong by this node's records.

    Attributes:
        code: `power` (a ballot claims another power than its credits give: over-claimed if
            more), `total`, `settings`, `omitted` (an in-window vote left out), `superseded`
            (a listed vote has a later in-window revision), `equivocation` (the owner signed
            more than one decision).
        detail: one sentence a person reads.
    """

    code: str
    detail: str


# The findings that make a decision invalid: its figures are not what the chain gives. The
# others say the owner decided before every vote arrived, which the protocol accepts.
INVALIDATING = frozenset({"power", "total", "settings"})


@dataclass(frozen=True, slots=True)
class Outcome:
    """A proposal's result as this node sees it.

    Attributes:
        decision: the tally: the signed decision's if there is one, else the provisional one
            from the stored votes (with the credits behind each power, from this node's view).
        record: the decision in force, or None.
        findings: what the decision gets wrong by this node's records.
    """

    decision: Decision
    record: Record | None
    findings: tuple[Finding, ...]

    @property
    def final(self) -> bool:
        """Whether a signed decision fixes the result."""
        return self.record is not None

    @property
    def valid(self) -> bool:
        """Whether the signed decision's powers, total and settings are what the chain gives."""
        return self.record is not None and not any(f.code in INVALIDATING for f in self.findings)


def decisions_of(store: Store, proposal_id: bytes) -> list[Record]:
    """Returns every stored decision of a proposal, oldest first."""
    return _all(store.decisions, proposal_id)


def outcome(store: Store, proposal: Record, *, now: float) -> Outcome:
    """Returns a proposal's result: its decision in force, checked, or its provisional tally.

    Raises:
        NotFound: the proposal's project is not in the store.
        StorageError: the store could not be read.
    """
    live = decide(store, proposal, now=now)
    found = decisions_of(store, proposal.id)
    held = first_decision(found)
    if held is None:
        return Outcome(live, None, ())
    body = held.expect(DecisionBody)
    _project(store, body.project_id)
    votes = _in_order((store.get(vid) for vid in body.ballots), body.ballots)
    # The settings the proposal is counted with: those in effect when it was made.
    findings = list(_check(held, votes, live, live.tally.settings))
    if len(found) > 1:
        findings.append(
            Finding(
                "equivocation",
                f"the owner signed {len(found)} decisions of this proposal; the first "
                f"({held.id.hex()[:16]}) holds",
            )
        )
    power = {v.author: p for v, p in zip(votes, body.powers, strict=True)}
    settings = Settings(body.quorum, body.threshold, body.half_life)
    final = tally(proposal, votes, power, settings, total=body.total)
    return Outcome(Decision(final, live.credits, False), held, tuple(findings))


def _in_order(votes: Iterable[Record | None], ids: tuple[bytes, ...]) -> list[Record]:
    """Returns the listed votes in the decision's order (the store admitted the decision with
    every one of them, so none is missing)."""
    by_id = {v.id: v for v in votes if v is not None}
    return [by_id[i] for i in ids]


def _check(
    held: Record, votes: list[Record], live: Decision, settings: Settings
) -> Iterable[Finding]:
    body = held.expect(DecisionBody)
    own = live.tally
    power = live_power(live)
    counted = {b.author: b.vote.id for b in own.ballots}
    claimed = (body.quorum, body.threshold, body.half_life)
    if claimed != (settings.quorum, settings.threshold, settings.half_life):
        yield Finding(
            "settings",
            f"the decision counts with (quorum, threshold, half-life) {claimed}, the project "
            f"has {(settings.quorum, settings.threshold, settings.half_life)}",
        )
    if body.total != own.total:
        yield Finding(
            "total",
            f"the decision says the total power is {body.total}, the chain gives {own.total}",
        )
    listed: dict[bytes, bytes] = {}
    for vote, claim in zip(votes, body.powers, strict=True):
        listed[vote.author] = vote.id
        have = power.get(vote.author, 0)
        if claim != have:
            word = "over-claims" if claim > have else "under-counts"
            yield Finding(
                "power",
                f"the decision {word} the power of {vote.author.hex()[:16]}: {claim}, where "
                f"the anchored epochs give {have}",
            )
    for author, vid in sorted(counted.items()):
        if author not in listed:
            yield Finding(
                "omitted",
                f"the decision leaves out the in-window vote {vid.hex()[:16]} of "
                f"{author.hex()[:16]}",
            )
        elif listed[author] != vid:
            yield Finding(
                "superseded",
                f"the decision counts vote {listed[author].hex()[:16]} of {author.hex()[:16]}, "
                f"whose in-window revision {vid.hex()[:16]} is later",
            )


def live_power(live: Decision) -> dict[bytes, int]:
    """Returns each key's power at the proposal's snapshot, from the credits of a tally."""
    half_life = live.tally.settings.half_life
    snapshot = live.tally.proposal.expect(Proposal).snapshot
    return {
        key: sum(decayed(c.weight, snapshot - c.epoch, half_life) for c in found)
        for key, found in live.credits.items()
    }


def sign_decision(store: Store, identity: Identity, proposal: Record, *, now: int) -> Record:
    """Returns the owner's decision of a proposal from the votes and anchored epochs stored.

    Raises:
        NotFound: the proposal's project is not in the store.
        Conflict: this identity does not own the project, the window is still open, or more
            voters than one decision can list (MAX_BALLOTS).
    """
    body = proposal.expect(Proposal)
    project = _project(store, body.project_id)
    if project.author != identity.public_key:
        raise Conflict("only the project's owner signs the decisions of its proposals")
    if now < body.closes_at:
        raise Conflict(f"the window of proposal {proposal.id.hex()[:16]} is still open")
    live = decide(store, proposal, now=now)
    if len(live.tally.ballots) > MAX_BALLOTS:
        raise Conflict(
            f"{len(live.tally.ballots)} ballots: one decision lists at most {MAX_BALLOTS}"
        )
    return identity.sign(decision_body(live.tally, created_at=now))


@dataclass(frozen=True, slots=True)
class Pending:
    """A proposal of a project this node owns, as decision signing sees it."""

    proposal_id: bytes
    closes_at: int
    decided: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """Which proposals to decide now, and when the next one is due (None if none will be)."""

    due: tuple[bytes, ...]
    wake: float | None


def due(pending: Iterable[Pending], now: float, settle: float) -> Plan:
    """Returns the undecided proposals whose window closed at least `settle` seconds ago."""
    found: list[bytes] = []
    wake: float | None = None
    for item in pending:
        if item.decided:
            continue
        at = item.closes_at + settle
        if at <= now:
            found.append(item.proposal_id)
        else:
            wake = at if wake is None else min(wake, at)
    return Plan(tuple(sorted(found)), wake)
