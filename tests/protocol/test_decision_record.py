"""Decisions: the owner's signed final tally of a proposal, its strict decoding and its check."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from protocol import (
    BadDecision,
    Decision,
    InvalidField,
    NotAuthorized,
    OutsideWindow,
    ReferenceMismatch,
    decode,
    decode_body,
    encode_body,
    sign,
)
from protocol.records import Proposal
from protocol.topics import topic
from protocol.validate import Ref, check_decision, dependencies, first_decision
from tests.support import factories as f

POWER = {f.pub("bob"): 5, f.pub("carol"): 2, f.pub("dave"): 10}


def case() -> tuple[Any, list[Any], Any]:
    question = f.proposal()
    votes = [f.vote(question, "bob"), f.vote(question, "carol", "no")]
    return question, votes, f.decision(question, votes, POWER)


def test_a_decision_records_the_tally_and_checks() -> None:
    question, votes, made = case()
    body = made.expect(Decision)
    assert (body.total, body.yes, body.no, body.outcome) == (17, 5, 2, "passed")
    assert decode(made.raw) == made
    assert decode_body(encode_body(body)) == body
    check_decision(made, f.project(), question, votes)
    check_decision(made, f.project(), question, list(reversed(votes)))
    assert topic(made) == topic(question)
    assert dependencies(made) == (
        Ref("project", f.pid()),
        Ref("proposal", question.id),
        *(Ref("vote", vid) for vid in body.ballots),
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"yes": 6},
        {"no": 1},
        {"abstain": 1},
        {"outcome": "rejected"},
        {"total": 100},  # 7 of 100 voted: below the 20 % quorum, so not "passed"
        {"quorum": 800},  # likewise, with the owner's claimed settings
        {"threshold": 900},  # 5 of 7 is not above 90 %
        {"powers": (5, 20)},  # bob's and carol's powers swapped round: no wins
    ],
)
def test_figures_that_do_not_follow_from_the_ballots_are_refused(changes: dict[str, Any]) -> None:
    question, votes, made = case()
    body = made.expect(Decision)
    if "powers" in changes:
        # The ballots are sorted by vote id: give carol (the no) the higher power.
        carol = next(v for v in votes if v.author == f.pub("carol"))
        at = body.ballots.index(carol.id)
        powers = [5, 5]
        powers[at] = 20
        changes = {"powers": tuple(powers), "total": 30}
    forged = sign(replace(body, **changes), f.key("alice"))
    with pytest.raises(BadDecision):
        check_decision(forged, f.project(), question, votes)


def test_only_the_owner_decides_after_the_window() -> None:
    question, votes, made = case()
    by_bob = sign(made.expect(Decision), f.key("bob"))
    with pytest.raises(NotAuthorized):
        check_decision(by_bob, f.project(), question, votes)
    early = sign(
        replace(made.expect(Decision), created_at=question.expect(Proposal).closes_at - 1),
        f.key("alice"),
    )
    with pytest.raises(BadDecision, match="before"):
        check_decision(early, f.project(), question, votes)


def test_ballots_are_one_valid_vote_per_author() -> None:
    question, votes, _ = case()
    twice = [*votes, f.vote(question, "bob", "no", revision=1)]
    made = f.decision(question, votes, POWER)
    body = made.expect(Decision)
    both = replace(
        body,
        ballots=tuple(sorted(v.id for v in twice)),
        powers=(1, 1, 1),
    )
    with pytest.raises(BadDecision, match="two votes"):
        check_decision(sign(both, f.key("alice")), f.project(), question, twice)
    with pytest.raises(BadDecision, match="lists 2 votes, 1 given"):
        check_decision(made, f.project(), question, votes[:1])
    other = f.proposal(title="another")
    with pytest.raises(ReferenceMismatch):
        check_decision(made, f.project(), other, votes)
    late = f.vote(question, "bob", created_at=question.expect(Proposal).closes_at)
    lated = sign(replace(body, ballots=(late.id,), powers=(5,)), f.key("alice"))
    with pytest.raises(OutsideWindow):
        check_decision(lated, f.project(), question, [late])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"powers": (1,)}, "powers"),
        ({"powers": (1, -1)}, "powers.1"),
        ({"powers": (1, True)}, "powers.1"),
        ({"total": 1}, "total"),
        ({"approvals": (0,) * 17}, "approvals"),
        ({"outcome": "won"}, "outcome"),
        ({"winners": (1, 1)}, "winners"),
    ],
)
def test_bad_fields_are_refused(changes: dict[str, Any], field: str) -> None:
    _, _, made = case()
    with pytest.raises(InvalidField) as caught:
        replace(made.expect(Decision), **changes)
    assert caught.value.field == field


def test_the_first_decision_holds() -> None:
    question, votes, made = case()
    later = f.decision(question, votes[:1], POWER, created_at=made.body.created_at + 5)
    assert first_decision([later, made]) == made
    assert first_decision([]) is None
