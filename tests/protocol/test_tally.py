"""Voting power and tallies: the rules, and the same result from the same records in any order."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import Proposal, Record
from protocol.tally import (
    DEFAULTS,
    Credit,
    Settings,
    ballots,
    credits,
    decayed,
    powers,
    tally,
)
from tests.support import factories as f

VOTERS = ("bob", "carol", "dave", "erin", "frank")


def power(**by_name: int) -> dict[bytes, int]:
    return {f.pub(name): value for name, value in by_name.items()}


# Power.


def test_credits_name_the_contributions_author() -> None:
    work = f.contribution("bob")
    accepted = f.acceptance(work, weight=30, epoch=2)
    assert credits(2, [accepted], {work.id: work}) == (Credit(2, work.id, f.pub("bob"), 30),)


def test_power_sums_credits_up_to_the_snapshot() -> None:
    bob, carol = f.pub("bob"), f.pub("carol")
    found = [
        Credit(0, b"a" * 32, bob, 10),
        Credit(1, b"b" * 32, bob, 5),
        Credit(1, b"c" * 32, carol, 7),
        Credit(3, b"d" * 32, carol, 100),  # after the snapshot
    ]
    assert powers(found, 2) == {bob: 15, carol: 7}
    assert powers(found, 0) == {bob: 10}
    assert powers(found, 3) == {bob: 15, carol: 107}


def test_a_contribution_listed_twice_credits_once_in_the_lower_epoch() -> None:
    bob = f.pub("bob")
    found = [Credit(3, b"a" * 32, bob, 50), Credit(1, b"a" * 32, bob, 10)]
    assert powers(found, 5) == {bob: 10}
    assert powers(reversed(found), 5) == {bob: 10}
    assert powers(found, 2) == {bob: 10}


def test_decay_halves_per_half_life_and_rounds_down() -> None:
    assert decayed(100, 0, 2) == 100
    assert decayed(100, 1, 2) == 100
    assert decayed(100, 2, 2) == 50
    assert decayed(101, 4, 2) == 25
    assert decayed(100, 1000, 0) == 100
    bob = f.pub("bob")
    found = [Credit(0, b"a" * 32, bob, 8), Credit(4, b"b" * 32, bob, 8)]
    assert powers(found, 4, half_life=1) == {bob: 8 + 0}
    assert powers(found, 4, half_life=2) == {bob: 8 + 2}
    # Power that decays to nothing is no power: the key is not listed.
    assert powers([Credit(0, b"a" * 32, bob, 1)], 9, half_life=1) == {}


# Ballots and results.


def test_the_highest_revision_counts_then_the_highest_id() -> None:
    question = f.proposal()
    first = f.vote(question, "bob", "yes", revision=0)
    second = f.vote(question, "bob", "no", revision=1)
    assert ballots(question, [second, first]) == {f.pub("bob"): second}
    twins = [f.vote(question, "bob", c, revision=2) for c in ("yes", "no")]
    winner = max(twins, key=lambda r: r.id)
    assert ballots(question, [first, *twins])[f.pub("bob")] == winner
    assert ballots(question, [*reversed(twins), first])[f.pub("bob")] == winner


def test_votes_after_the_window_do_not_count_even_as_revisions() -> None:
    question = f.proposal()
    closes = question.expect(Proposal).closes_at
    inside = f.vote(question, "bob", "yes", revision=0)
    late = f.vote(question, "bob", "no", revision=5, created_at=closes)
    other = f.vote(f.proposal(title="another"), "bob", "no", revision=9)
    assert ballots(question, [inside, late, other]) == {f.pub("bob"): inside}
    result = tally(question, [inside, late], power(bob=10))
    assert (result.yes, result.no, result.passed) == (10, 0, True)


def test_a_key_without_accepted_work_has_no_power() -> None:
    question = f.proposal()
    votes = [f.vote(question, "mallory", "no"), f.vote(question, "bob", "yes")]
    result = tally(question, votes, power(bob=1))
    assert [(b.author, b.power) for b in result.ballots] == sorted(
        [(f.pub("mallory"), 0), (f.pub("bob"), 1)]
    )
    assert (result.yes, result.no, result.total, result.passed) == (1, 0, 1, True)


def test_quorum_counts_abstentions_and_is_a_share_of_all_power() -> None:
    question = f.proposal()
    everyone = power(bob=20, carol=80)  # quorum 200/1000 of 100: 20
    assert tally(question, [f.vote(question, "bob", "abstain")], everyone).quorum
    assert not tally(question, [f.vote(question, "bob", "abstain")], power(bob=19, carol=81)).quorum
    result = tally(question, [f.vote(question, "bob", "abstain")], everyone)
    assert (result.outcome, result.passed) == ("rejected", False)  # no yes above no
    assert tally(question, [], everyone).outcome == "no quorum"
    assert tally(question, [f.vote(question, "bob")], {}).outcome == "no quorum"


def test_threshold_is_strictly_above_its_share_of_yes_and_no() -> None:
    question = f.proposal()
    votes = [f.vote(question, "bob", "yes"), f.vote(question, "carol", "no")]
    assert not tally(question, votes, power(bob=50, carol=50)).passed
    assert tally(question, votes, power(bob=51, carol=50)).passed
    two_thirds = Settings(quorum=0, threshold=667)
    assert not tally(question, votes, power(bob=66, carol=34), two_thirds).passed
    assert tally(question, votes, power(bob=67, carol=33), two_thirds).passed


def test_approval_voting_ranks_the_options_that_pass() -> None:
    question = f.proposal(options=("docs", "api", "tests"))
    votes = [
        f.vote(question, "bob", "approve", approve=(0, 1)),
        f.vote(question, "carol", "approve", approve=(1, 2)),
        f.vote(question, "dave", "approve", approve=(0,)),
        f.vote(question, "erin", "abstain"),
    ]
    result = tally(question, votes, power(bob=30, carol=40, dave=30, erin=100))
    assert result.approvals == (60, 70, 40)
    # Above half of the 100 that took sides: api (70), then docs (60); not tests (40).
    assert result.winners == (1, 0)
    assert result.passed and result.voted == 200 and result.abstain == 100
    tie = tally(question, votes[:2], power(bob=10, carol=10))
    assert tie.winners == (1,)  # only api has more than half of 20
    even = tally(question, votes[:2], power(bob=10, carol=10), Settings(threshold=0))
    assert even.winners == (1, 0, 2)  # equal power: by index


# Any arrival order.


@st.composite
def scenes(draw: Any) -> tuple[Record, list[Record], dict[bytes, int], Settings]:
    """A proposal, votes on it (revisions, votes outside the window, votes on another proposal
    and by keys without power included), every member's power and the settings."""
    options = draw(st.sampled_from([(), ("a", "b"), ("a", "b", "c", "d")]))
    question = f.proposal(options=options)
    other = f.proposal(title="another", options=options)
    asked = question.expect(Proposal)
    choices = ["approve", "abstain"] if options else ["yes", "no", "abstain"]
    votes = []
    for _ in range(draw(st.integers(0, 12))):
        who = draw(st.sampled_from((*VOTERS, "mallory")))
        choice = draw(st.sampled_from(choices))
        approve: tuple[int, ...] = ()
        if choice == "approve":
            approve = tuple(sorted(draw(st.sets(st.integers(0, len(options) - 1), min_size=1))))
        when = draw(st.integers(asked.created_at - 5, asked.closes_at + 5))
        votes.append(
            f.vote(
                draw(st.sampled_from((question, question, question, other))),
                who,
                choice,
                revision=draw(st.integers(0, 3)),
                approve=approve,
                created_at=when,
                reason=draw(st.sampled_from(("", "because"))),
            )
        )
    members = draw(st.dictionaries(st.sampled_from(VOTERS), st.integers(1, 2**40), max_size=5))
    rules = Settings(draw(st.integers(0, 1000)), draw(st.integers(0, 1000)), 0)
    return question, votes, {f.pub(k): v for k, v in members.items()}, rules


def summary(result: Any) -> tuple[Any, ...]:
    return (
        result.total,
        tuple((b.vote.id, b.power) for b in result.ballots),
        result.yes,
        result.no,
        result.abstain,
        result.approvals,
        result.voted,
        result.quorum,
        result.winners,
        result.passed,
    )


@settings(max_examples=60, deadline=None)
@given(scene=scenes(), orders=st.lists(st.randoms(use_true_random=False), min_size=1, max_size=4))
def test_the_tally_does_not_depend_on_arrival_order(scene: Any, orders: list[Any]) -> None:
    question, votes, members, rules = scene
    expected = summary(tally(question, votes, members, rules))
    for rng in orders:
        shuffled = list(votes)
        rng.shuffle(shuffled)
        # Duplicates arrive too (gossip and sync both bring a record).
        shuffled += shuffled[: rng.randint(0, len(shuffled))]
        order = list(members.items())
        rng.shuffle(order)
        assert summary(tally(question, shuffled, dict(order), rules)) == expected


@settings(max_examples=60, deadline=None)
@given(scene=scenes())
def test_the_tally_adds_up(scene: Any) -> None:
    question, votes, members, rules = scene
    result = tally(question, votes, members, rules)
    asked = question.expect(Proposal)
    assert result.total == sum(members.values())
    assert result.voted == sum(b.power for b in result.ballots) <= result.total
    assert result.yes + result.no + result.abstain <= result.voted
    assert all(v <= result.voted - result.abstain for v in result.approvals)
    for ballot in result.ballots:
        body = ballot.vote.body
        assert ballot.vote.expect(type(body)).proposal_id == question.id
        assert asked.created_at <= body.created_at < asked.closes_at
        assert ballot.power == members.get(ballot.author, 0)
    assert result.passed <= result.quorum


@settings(max_examples=40, deadline=None)
@given(
    found=st.lists(
        st.builds(
            Credit,
            epoch=st.integers(0, 6),
            contribution_id=st.sampled_from([bytes([i]) * 32 for i in range(6)]),
            author=st.sampled_from([f.pub(n) for n in VOTERS]),
            weight=st.integers(1, 2**32 - 1),
        ),
        max_size=20,
    ),
    snapshot=st.integers(0, 6),
    half_life=st.integers(0, 3),
    rng=st.randoms(use_true_random=False),
)
def test_power_does_not_depend_on_order(
    found: list[Credit], snapshot: int, half_life: int, rng: Any
) -> None:
    expected = powers(found, snapshot, half_life)
    shuffled = list(found)
    rng.shuffle(shuffled)
    assert powers(shuffled, snapshot, half_life) == expected
    assert all(value > 0 for value in expected.values())


def test_defaults_are_the_documented_ones() -> None:
    assert Settings(quorum=200, threshold=500, half_life=0) == DEFAULTS
