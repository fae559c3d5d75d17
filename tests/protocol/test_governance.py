"""Governance rules as pure functions: the project's optional governance field, the walk of
settings over time, and lazy-consensus verdicts (`protocol.governance`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgpack
import pytest

from protocol import InvalidField, NonCanonical, Project, Record, decode_body, encode_body, sign
from protocol.codec import pack
from protocol.governance import (
    DEFAULT_WINDOW,
    Governance,
    at,
    decided,
    stated,
    timeline,
    verdict,
)
from protocol.records import FORMAT_VERSION
from protocol.tally import Settings
from tests.support import factories as f

DAY = 86_400
WINDOW = 2 * DAY


def project_body(**changes: Any) -> Project:
    return replace(f.project().expect(Project), **changes)


# The optional field.


def test_a_project_without_governance_keeps_its_old_bytes() -> None:
    body = project_body()
    wire = encode_body(body)
    # The array holds the fields of before: none added at the end.
    assert len(msgpack.unpackb(wire)) == 2 + len(Project.SCHEMA) - 1
    assert decode_body(wire) == body and body.governance == ()


def test_a_project_with_governance_round_trips() -> None:
    body = project_body(governance=("lazy", 0, 1000, 2**32 - 1, 90 * DAY))
    assert decode_body(encode_body(body)) == body


def test_an_empty_governance_on_the_wire_is_not_canonical() -> None:
    body = project_body()
    wire = pack((FORMAT_VERSION, "project", *body.values()))  # with [] at the end
    with pytest.raises(NonCanonical):
        decode_body(wire)


@pytest.mark.parametrize(
    ("governance", "field"),
    [
        (("lazy", 200, 500, 0), "governance"),
        (("dao", 200, 500, 0, 0), "governance.mode"),
        (("owner", 1001, 500, 0, 0), "governance.quorum"),
        (("owner", 200, 500, 2**32, 0), "governance.half_life"),
        (("owner", 200, 500, 0, 90 * DAY + 1), "governance.window"),
        (("owner", 200, "500", 0, 0), "governance.threshold"),
    ],
)
def test_a_bad_governance_is_refused(governance: tuple[Any, ...], field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        project_body(governance=governance)
    assert caught.value.field == field


def test_a_field_too_many_is_refused() -> None:
    body = project_body(governance=("owner", 200, 500, 0, 0))
    wire = pack((FORMAT_VERSION, "project", *body.values(), 1))
    with pytest.raises(InvalidField):
        decode_body(wire)


# Settings over time.


def revision(at_time: int, mode: str = "owner", quorum: int = 200) -> Record:
    return f.project(created_at=at_time, governance=(mode, quorum, 500, 0, WINDOW))


def settings(at_time: int, quorum: int, *more: Any, who: str = "bob") -> Record:
    params = (quorum, 500, 0, 86_400, (), "open", *more)
    return f.proposal(
        who, action="settings", params=params, created_at=at_time, closes_at=at_time + DAY
    )


def walk(project: Record, proposals: list[Record], passing: set[bytes], now: int) -> Any:
    return timeline(project, proposals, lambda p, _: p.id in passing, now=now)


def test_the_record_alone_gives_the_defaults_it_states() -> None:
    line = walk(f.project(), [], set(), f.T0)
    assert line == (stated(f.project()),)
    assert (line[0].mode, line[0].settings, line[0].window) == ("owner", Settings(), DEFAULT_WINDOW)


def test_a_decision_takes_effect_at_close_and_only_if_it_passed() -> None:
    yes, no = settings(f.T0 + 10, 300), settings(f.T0 + 20, 400, who="carol")
    line = walk(revision(f.T0), [yes, no], {yes.id}, f.T0 + 2 * DAY)
    assert at(line, f.T0 + 10 + DAY - 1).quorum == 200
    assert at(line, f.T0 + 10 + DAY).quorum == 300
    assert at(line, f.T0 + 2 * DAY).quorum == 300
    # Not closed by `now`: not in effect.
    assert walk(revision(f.T0), [yes], {yes.id}, f.T0 + 10 + DAY - 1)[-1].quorum == 200


def test_at_equal_times_the_revision_comes_first_and_decisions_by_id() -> None:
    one, two = settings(f.T0 + 10, 300), settings(f.T0 + 10, 400, who="carol")
    closes = f.T0 + 10 + DAY
    line = walk(revision(closes, quorum=111), [one, two], {one.id, two.id}, closes)
    last = max([one, two], key=lambda p: p.id)
    assert at(line, closes).decision == last.id
    assert at(line, closes).quorum == last.body.params[0]


def test_owner_mode_lets_a_later_revision_win_lazy_mode_does_not() -> None:
    change = settings(f.T0 + 10, 300)
    later = f.T0 + 10 + DAY + 5
    owner = walk(revision(later, "owner", 111), [change], {change.id}, later)
    assert at(owner, later).quorum == 111
    lazy = walk(revision(later, "lazy", 111), [change], {change.id}, later)
    assert at(lazy, later).quorum == 300


def test_a_decision_to_lazy_mode_binds_a_later_owner_revision() -> None:
    change = settings(f.T0 + 10, 300, "lazy", WINDOW)
    later = f.T0 + 10 + DAY + 5
    # The owner revises back to owner mode with quorum 111: the decision made it lazy first.
    line = walk(revision(later, "owner", 111), [change], {change.id}, later)
    assert (at(line, later).mode, at(line, later).quorum) == ("lazy", 300)


def test_a_proposal_is_tallied_with_the_governance_of_its_creation() -> None:
    first = settings(f.T0 + 10, 1000)
    second = settings(f.T0 + 10 + DAY + 1, 300, who="carol")
    seen: dict[bytes, int] = {}

    def passes(proposal: Record, governance: Governance) -> bool:
        seen[proposal.id] = governance.quorum
        return True

    timeline(revision(f.T0), [second, first], passes, now=f.T0 + 3 * DAY)
    assert seen == {first.id: 200, second.id: 1000}


def test_decided_keeps_mode_and_window_unless_named() -> None:
    base = stated(revision(f.T0, "lazy"))
    assert decided(base, settings(f.T0, 300)).mode == "lazy"
    changed = decided(base, settings(f.T0, 300, "owner", 0))
    assert (changed.mode, changed.window, changed.since) == ("owner", 0, f.T0 + DAY)


# Lazy consensus.


LAZY = stated(revision(f.T0, "lazy"))
WORK = f.contribution("dave")


def acceptance(at_time: int, weight: int = 5) -> Record:
    return f.acceptance(WORK, weight=weight, epoch=1, created_at=at_time)


def accepting(at_time: int, weight: int = 50, work: Record = WORK) -> Record:
    return f.proposal(
        "carol",
        action="accept",
        params=(work.id, 1, weight),
        created_at=at_time,
        closes_at=at_time + DAY,
    )


def test_an_acceptance_stands_without_decisions() -> None:
    held = acceptance(f.T0 + 100)
    found = verdict(LAZY, WORK.id, held, [])
    assert found is not None and (found.weight, found.acceptance) == (5, held)


@pytest.mark.parametrize(
    ("proposed", "counts"),
    [(0, True), (WINDOW - 1, True), (WINDOW, False), (-(DAY - 1), True), (-DAY, False)],
)
def test_the_window_bounds_an_overturn(proposed: int, counts: bool) -> None:
    # Proposed `proposed` seconds after the acceptance; it closes a day after it was proposed,
    # and counts only if it closed after the acceptance was made.
    held = acceptance(f.T0 + 10 * DAY)
    found = verdict(LAZY, WORK.id, held, [accepting(f.T0 + 10 * DAY + proposed)])
    assert found is not None
    assert found.weight == (50 if counts else 5)


def test_the_latest_decision_that_counts_wins() -> None:
    held = acceptance(f.T0 + 100)
    early, later = accepting(f.T0 + 200, 7), accepting(f.T0 + 300, 9)
    for order in ([early, later], [later, early]):
        found = verdict(LAZY, WORK.id, held, order)
        assert found is not None and (found.weight, found.decision) == (9, later)


def test_decisions_about_other_work_or_in_owner_mode_do_not_count() -> None:
    held = acceptance(f.T0 + 100)
    other = accepting(f.T0 + 200, 9, work=f.contribution("erin"))
    found = verdict(LAZY, WORK.id, held, [other])
    assert found is not None and found.weight == 5
    owner = replace(LAZY, mode="owner")
    found = verdict(owner, WORK.id, held, [accepting(f.T0 + 200)])
    assert found is not None and found.weight == 5


def test_without_an_acceptance_any_passed_decision_accepts() -> None:
    assert verdict(LAZY, WORK.id, None, []) is None
    found = verdict(LAZY, WORK.id, None, [accepting(f.T0 + 90 * DAY)])
    assert found is not None and (found.epoch, found.weight) == (1, 50)


def test_a_signed_project_with_governance_round_trips_as_a_record() -> None:
    record = sign(project_body(governance=("lazy", 1, 2, 3, 4)), f.key("alice"))
    assert stated(record).window == 4


def test_in_vote_mode_only_decisions_count_and_an_acceptance_carries_one_out() -> None:
    vote = replace(LAZY, mode="vote")
    held = acceptance(f.T0 + 100, weight=5)
    assert verdict(vote, WORK.id, held, []) is None
    # No window: a decision proposed long after the acceptance still decides.
    late = accepting(f.T0 + 100 + 60 * DAY, weight=5)
    found = verdict(vote, WORK.id, held, [late])
    assert found is not None and (found.decision, found.acceptance) == (late, held)
    other = accepting(f.T0 + 100 + 60 * DAY, weight=6)
    found = verdict(vote, WORK.id, held, [other])
    assert found is not None and (found.weight, found.acceptance) == (6, None)
