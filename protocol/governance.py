"""Governance: a project's settings as they stand, and which verdict on a contribution counts.

Theory of operation. Two sources decide a project's governance: the project record (its owner's
word, `Project.governance` with `epoch_length`, `reviewers` and `status`) and the `settings`
proposals that passed (the members' word). Two sources decide a contribution's acceptance: the
acceptance in force (the owner's or a reviewer's word, `protocol.validate.latest_authorized`)
and the `accept` proposals that passed. Everything here is a pure function of those records and
of `now`, so every node holding the same records computes the same governance and verdicts.

- **Settings** (`timeline`). Events in time order: the project revision in force, at its
  `created_at`, and each `settings` proposal that passed, at its `closes_at` (at equal times the
  revision first, then decisions by id). The state starts as the revision in force states it.
  A passed decision sets every setting its parameters name (all of them but, optionally, mode
  and window). The revision's event sets the settings back to the record's only while the mode
  in effect is `owner`: in `owner` mode the latest word wins, the owner's or the members';
  in `lazy` and `vote` modes only a decision changes settings, so an owner cannot undo a
  decision by revising the record (nor, by backdating a revision, since a decision sets all
  settings).
  Only the revision in force is an event; it stands for the earlier revisions too.
- **Which settings proposals passed**: closed by `now` (`closes_at <= now`), tallied with the
  settings in effect when the proposal was made (its `created_at`). Every earlier event is
  decided by then, since a decision takes effect only when its window closes, after its
  proposal was made: no circularity.
- **Acceptances** (`verdict`), per mode in effect now: in `owner` mode, the acceptance in force
  counts and `accept` decisions have no effect. In `vote` mode, only passed `accept` decisions
  accept: the latest (closes_at, id) of a contribution decides, and an acceptance that no
  decision backs counts for nothing. In `lazy` mode, a passed `accept` decision
  counts against the acceptance in force A if it closed after A was made and was proposed
  within `window` seconds of A (lazy consensus: A stands unless overturned in its window);
  with no acceptance in force, every passed decision counts. Of those that count, the latest
  (closes_at, id) wins and replaces A: its epoch and weight (0 withdraws). A later acceptance
  (the owner's node executing the decision, or the owner acting again) stands in turn, and may
  be overturned in its own window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from protocol.envelope import Record
from protocol.records import MODES, Acceptance, Project, Proposal
from protocol.tally import DEFAULT_HALF_LIFE, DEFAULT_QUORUM, DEFAULT_THRESHOLD, Settings

# The mode of a project whose record states no governance: the owner and reviewers decide.
DEFAULT_MODE = MODES[0]
# In lazy mode, how long after an acceptance a proposal to overturn it may be made.
DEFAULT_WINDOW = 7 * 86_400


@dataclass(frozen=True, slots=True)
class Governance:
    """A project's governance settings at some time.

    Attributes:
        mode: `owner`, `lazy` or `vote` (see the module).
        quorum, threshold: in thousandths; half_life: in epochs (`protocol.tally`).
        window: in lazy mode, seconds after an acceptance during which it may be overturned.
        epoch_length, reviewers, status: as in the project record.
        since: when these took effect (0 for the project record's, before any event).
        decision: the id of the `settings` proposal that set them, or None if the project
            record did.
    """

    mode: str
    quorum: int
    threshold: int
    half_life: int
    window: int
    epoch_length: int
    reviewers: tuple[bytes, ...]
    status: str
    since: int = 0
    decision: bytes | None = None

    @property
    def settings(self) -> Settings:
        """What a tally needs: quorum, threshold and half-life."""
        return Settings(self.quorum, self.threshold, self.half_life)


# What a project whose record states no governance has (with its own epoch length, reviewers
# and status).
DEFAULT_GOVERNANCE = Governance(
    mode=DEFAULT_MODE,
    quorum=DEFAULT_QUORUM,
    threshold=DEFAULT_THRESHOLD,
    half_life=DEFAULT_HALF_LIFE,
    window=DEFAULT_WINDOW,
    epoch_length=0,
    reviewers=(),
    status="open",
)


def stated(project: Record) -> Governance:
    """Returns the governance a project record states, with the defaults where it states none."""
    body = project.expect(Project)
    mode, quorum, threshold, half_life, window = body.governance or (
        DEFAULT_MODE,
        DEFAULT_QUORUM,
        DEFAULT_THRESHOLD,
        DEFAULT_HALF_LIFE,
        DEFAULT_WINDOW,
    )
    return Governance(
        mode=mode,
        quorum=quorum,
        threshold=threshold,
        half_life=half_life,
        window=window,
        epoch_length=body.epoch_length,
        reviewers=body.reviewers,
        status=body.status,
    )


def decided(current: Governance, proposal: Record) -> Governance:
    """Returns the governance after a passed `settings` proposal takes effect."""
    body = proposal.expect(Proposal)
    given = body.named_params()
    return replace(
        current,
        quorum=given["quorum"],
        threshold=given["threshold"],
        half_life=given["half_life"],
        epoch_length=given["epoch_length"],
        reviewers=given["reviewers"],
        status=given["status"],
        mode=given.get("mode", current.mode),
        window=given.get("window", current.window),
        since=body.closes_at,
        decision=proposal.id,
    )


def timeline(
    project: Record,
    proposals: Iterable[Record],
    passes: Callable[[Record, Governance], bool],
    *,
    now: float,
) -> tuple[Governance, ...]:
    """Returns the governance of a project over time, each state from its `since` on.

    Args:
        project: the project revision in force.
        proposals: proposals of the project, any actions (only `settings` ones count).
        passes: whether a closed proposal passed when tallied with the given governance (the
            caller's tally, from its records).
        now: only proposals closed by then (`closes_at <= now`) can take effect.
    """
    base = stated(project)
    decisions = sorted(
        (
            p
            for p in proposals
            if p.expect(Proposal).action == "settings" and p.expect(Proposal).closes_at <= now
        ),
        key=lambda p: (p.expect(Proposal).closes_at, p.id),
    )
    line = [base]
    revised = False
    for proposal in decisions:
        closes = proposal.expect(Proposal).closes_at
        if not revised and project.body.created_at <= closes:
            revised = True
            _revise(line, base, project)
        if passes(proposal, at(line, proposal.body.created_at)):
            line.append(decided(line[-1], proposal))
    if not revised:
        _revise(line, base, project)
    return tuple(line)


def _revise(line: list[Governance], base: Governance, project: Record) -> None:
    # The owner's revision changes settings only while the mode in effect is `owner`.
    if line[-1].mode == "owner" and line[-1] != base:
        line.append(replace(base, since=project.body.created_at))


def at(line: Sequence[Governance], when: float) -> Governance:
    """Returns the governance in effect at `when` from a `timeline`."""
    found = line[0]
    for state in line:
        if state.since <= when:
            found = state
    return found


@dataclass(frozen=True, slots=True)
class Verdict:
    """What counts of a contribution: its epoch and weight (0: not accepted), and by whom.

    Attributes:
        contribution_id, epoch, weight: the judgement.
        acceptance: the acceptance in force that states it (it stands, or carries out the
            decision), or None: a decision that no acceptance carries out yet.
        decision: the passed `accept` proposal that decides, or None.
    """

    contribution_id: bytes
    epoch: int
    weight: int
    acceptance: Record | None = None
    decision: Record | None = None


def verdict(
    governance: Governance,
    contribution_id: bytes,
    in_force: Record | None,
    decisions: Iterable[Record],
) -> Verdict | None:
    """Returns what counts of a contribution, or None if nothing judges it.

    Args:
        governance: the project's governance now (its mode and window).
        contribution_id: the contribution.
        in_force: its acceptance in force (by the owner or a reviewer the governance names),
            or None.
        decisions: passed `accept` proposals naming the contribution (closed by now).
    """
    counting: list[Record] = []
    if governance.mode != "owner":
        for proposal in decisions:
            body = proposal.expect(Proposal)
            if body.param("contribution_id") != contribution_id:
                continue
            if (
                governance.mode == "vote"
                or in_force is None
                or (
                    body.closes_at > in_force.body.created_at
                    and body.created_at < in_force.body.created_at + governance.window
                )
            ):
                counting.append(proposal)
    if counting:
        chosen = max(counting, key=lambda p: (p.expect(Proposal).closes_at, p.id))
        body = chosen.expect(Proposal)
        epoch, weight = body.param("epoch"), body.param("weight")
        # The acceptance in force carries the decision out if it states the same judgement
        # (the owner's node signs one: `node.governance.executions`).
        carrier = None
        if in_force is not None:
            accepted = in_force.expect(Acceptance)
            if (accepted.epoch, accepted.weight) == (epoch, weight):
                carrier = in_force
        return Verdict(contribution_id, epoch, weight, carrier, chosen)
    if in_force is None or governance.mode == "vote":
        return None
    accepted = in_force.expect(Acceptance)
    return Verdict(contribution_id, accepted.epoch, accepted.weight, in_force, None)
