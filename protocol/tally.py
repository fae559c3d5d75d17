"""Voting power and the tally of a proposal, as a pure function of records.

Theory of operation. A project's members decide by votes weighted by the work the project
accepted and anchored; nothing else gives power, so there is nothing to buy, and a key whose work
no anchored epoch lists has none.

- **Credits.** Every leaf of an anchored epoch's tree is a credit: (epoch, contribution,
  author of the contribution, weight). The leaf is in the root the chain holds, so a credit is
  proved by the Merkle proof that pays it (`protocol.merkle`), plus the signed contribution that
  names its author. A contribution that two anchored epochs list (which an honest owner never
  does) credits once, in the lower epoch, as it is paid once (`protocol.epoch.standing`).
- **Power.** A member's power for a proposal is the sum of their credits in epochs up to the
  proposal's `snapshot`, each halved once per `half_life` epochs of age (age = snapshot -
  epoch; integer halving, so every language computes the same number; `half_life` 0 means no
  decay). The total power is the same sum over every member.
- **Ballots.** Among the votes of one author on a proposal, only those dated inside its window
  `[created_at, closes_at)` and fitting its choices count (`protocol.validate.check_vote`, the
  same rule that admits them); of those, the highest (revision, id) is the author's ballot, as
  for every revisable record. The date is the signer's word: a vote backdated into the window
  counts like any other, so a tally computed from the votes a node holds is provisional: once
  the window has closed (and a settle time for sync passed) the project's owner signs a
  `decision` listing the ballots it counted and their powers, and from then on the decision is
  the result everywhere; votes signed later (backdated or not) change nothing.
  `protocol.validate.check_decision` checks its figures; readers check its powers against the
  anchored epochs, and the audit reports an in-window vote it left out.
- **Result.** With settings (quorum, threshold in thousandths, half-life), a proposal passes if
  the power that voted (abstentions included) is at least `quorum` of the total, and, without
  options, yes is above `threshold` of yes + no; with options, an option wins if the power
  approving it is above `threshold` of the power that voted other than abstaining, and the
  proposal passes if at least one option wins. Winners are ranked by approving power, then by
  option index.

Everything is a sum, a maximum or a sort over sets of records, so any arrival order of the same
records gives the same tally (tests/protocol/test_tally.py checks it with shuffled inputs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from protocol.envelope import Record
from protocol.errors import ProtocolError
from protocol.records import PER_MILLE, Acceptance, Contribution, Decision, Proposal, Vote
from protocol.validate import check_vote

# Defaults of the governance settings, until a project sets its own (a passed `settings`
# proposal, issue 13 item 4): a fifth of all power must take part, yes must beat no, and work
# does not lose power with age.
DEFAULT_QUORUM = 200
DEFAULT_THRESHOLD = 500
DEFAULT_HALF_LIFE = 0


@dataclass(frozen=True, slots=True)
class Settings:
    """How a project counts votes: quorum and threshold in thousandths, half-life in epochs."""

    quorum: int = DEFAULT_QUORUM
    threshold: int = DEFAULT_THRESHOLD
    half_life: int = DEFAULT_HALF_LIFE


DEFAULTS = Settings()


@dataclass(frozen=True, slots=True)
class Credit:
    """One leaf of an anchored epoch, with the key that signed its contribution."""

    epoch: int
    contribution_id: bytes
    author: bytes
    weight: int


def credits(
    epoch: int, acceptances: Iterable[Record], contributions: Mapping[bytes, Record]
) -> tuple[Credit, ...]:
    """Returns the credits of an anchored epoch from the acceptances its manifest lists.

    Raises:
        KeyError: a listed acceptance's contribution is not in `contributions`.
        UnknownKind: a record is not an acceptance or a contribution.
    """
    found = []
    for acceptance in acceptances:
        body = acceptance.expect(Acceptance)
        work = contributions[body.contribution_id]
        work.expect(Contribution)
        found.append(Credit(epoch, work.id, work.author, body.weight))
    return tuple(found)


def decayed(weight: int, age: int, half_life: int) -> int:
    """Returns what `weight` counts for `age` epochs later: halved (rounding down) once per
    `half_life` epochs, or unchanged if `half_life` is 0."""
    if half_life == 0 or age <= 0:
        return weight
    return weight >> (age // half_life)


def powers(credits: Iterable[Credit], snapshot: int, half_life: int = 0) -> dict[bytes, int]:
    """Returns the voting power of each key with any, at epoch `snapshot` (see the module)."""
    first: dict[bytes, Credit] = {}
    for credit in credits:
        held = first.get(credit.contribution_id)
        if held is None or _order(credit) < _order(held):
            first[credit.contribution_id] = credit
    power: dict[bytes, int] = {}
    for credit in first.values():
        if credit.epoch > snapshot:
            continue
        value = decayed(credit.weight, snapshot - credit.epoch, half_life)
        if value:
            power[credit.author] = power.get(credit.author, 0) + value
    return power


def _order(credit: Credit) -> tuple[int, bytes, int]:
    return (credit.epoch, credit.author, credit.weight)


@dataclass(frozen=True, slots=True)
class Ballot:
    """The vote that counts of one author, and the power it carries."""

    vote: Record
    power: int

    @property
    def author(self) -> bytes:
        return self.vote.author

    @property
    def choice(self) -> str:
        return self.vote.expect(Vote).choice

    @property
    def approve(self) -> tuple[int, ...]:
        return self.vote.expect(Vote).approve


@dataclass(frozen=True, slots=True)
class Tally:
    """The result of a proposal from the votes given (see the module for the rules).

    Attributes:
        total: the power of every member at the snapshot.
        ballots: the vote that counts of each author who voted, by author key.
        yes, no, abstain: the power behind each choice (approve counts on `approvals`).
        approvals: the power approving each option, in the proposal's order.
        voted: the power that took part, abstentions included.
        quorum: whether `voted` reaches the quorum.
        winners: options that pass, by approving power (highest first), then index.
        passed: whether the proposal passes.
    """

    proposal: Record
    settings: Settings
    total: int
    ballots: tuple[Ballot, ...]
    yes: int
    no: int
    abstain: int
    approvals: tuple[int, ...]
    voted: int
    quorum: bool
    winners: tuple[int, ...]
    passed: bool

    @property
    def outcome(self) -> str:
        """`passed`, `rejected`, or `no quorum`."""
        if not self.quorum:
            return "no quorum"
        return "passed" if self.passed else "rejected"


def ballots(proposal: Record, votes: Iterable[Record]) -> dict[bytes, Record]:
    """Returns the vote that counts of each author, by author key.

    Votes of other proposals, outside the window or with a choice the proposal does not offer
    are left out; then the highest (revision, id) of each author counts.
    """
    counted: dict[bytes, Record] = {}
    for vote in votes:
        try:
            check_vote(vote, proposal)
        except ProtocolError:
            continue
        held = counted.get(vote.author)
        if held is None or _rank(vote) > _rank(held):
            counted[vote.author] = vote
    return counted


def _rank(vote: Record) -> tuple[int, bytes]:
    return (vote.expect(Vote).revision, vote.id)


def tally(
    proposal: Record,
    votes: Iterable[Record],
    power: Mapping[bytes, int],
    settings: Settings = DEFAULTS,
    *,
    total: int | None = None,
) -> Tally:
    """Counts the votes on a proposal.

    Args:
        proposal: the proposal.
        votes: votes, of this proposal or not, in any order, revisions included.
        power: the voting power of every key that has any at the proposal's snapshot
            (`powers`); a key not in it has none.
        settings: the project's quorum, threshold and half-life (the half-life is already in
            `power`; it is kept here so that the tally says what it was computed with).
        total: the power of every member, when `power` holds only the voters' (a decision's
            check); by default the sum of `power`.
    """
    question = proposal.expect(Proposal)
    chosen = ballots(proposal, votes)
    counted = tuple(Ballot(chosen[author], power.get(author, 0)) for author in sorted(chosen))
    sums = {"yes": 0, "no": 0, "abstain": 0, "approve": 0}
    approvals = [0] * len(question.options)
    for ballot in counted:
        sums[ballot.choice] += ballot.power
        for index in ballot.approve:
            approvals[index] += ballot.power
    if total is None:
        total = sum(power.values())
    voted = sum(sums.values())
    quorum = voted > 0 and voted * PER_MILLE >= settings.quorum * total
    winners: tuple[int, ...] = ()
    if question.options:
        taking_sides = voted - sums["abstain"]
        winners = tuple(
            sorted(
                (
                    i
                    for i, v in enumerate(approvals)
                    if v * PER_MILLE > settings.threshold * taking_sides
                ),
                key=lambda i: (-approvals[i], i),
            )
        )
        passed = quorum and bool(winners)
    else:
        sides = sums["yes"] + sums["no"]
        passed = quorum and sums["yes"] * PER_MILLE > settings.threshold * sides
    return Tally(
        proposal=proposal,
        settings=settings,
        total=total,
        ballots=counted,
        yes=sums["yes"],
        no=sums["no"],
        abstain=sums["abstain"],
        approvals=tuple(approvals),
        voted=voted,
        quorum=quorum,
        winners=winners,
        passed=passed,
    )


def decision(result: Tally, *, created_at: int) -> Decision:
    """Returns the body of the decision that records a tally: its ballots (by vote id) and
    their powers, the total, the settings and the figures. The project's owner signs it once
    the window has closed (`protocol.validate.check_decision` is its check)."""
    question = result.proposal.expect(Proposal)
    ordered = sorted(result.ballots, key=lambda b: b.vote.id)
    return Decision(
        created_at=created_at,
        project_id=question.project_id,
        proposal_id=result.proposal.id,
        ballots=tuple(b.vote.id for b in ordered),
        powers=tuple(b.power for b in ordered),
        total=result.total,
        quorum=result.settings.quorum,
        threshold=result.settings.threshold,
        half_life=result.settings.half_life,
        yes=result.yes,
        no=result.no,
        abstain=result.abstain,
        approvals=result.approvals,
        winners=result.winners,
        outcome=result.outcome,
    )
