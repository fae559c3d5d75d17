"""Signed outcomes from the store: the owner's decision fixes a proposal's result (a vote
backdated into the window after it changes nothing), and what the decision gets wrong by this
node's records (over-claimed power, a vote left out) is a finding that the node reports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from node.errors import Conflict
from node.keys import Identity
from node.outcomes import Pending, due, outcome, sign_decision
from protocol import Decision, Proposal, Record, sign
from storage import Store
from tests.node.test_decisions import history
from tests.support import factories as f


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as opened:
        yield opened


def owner() -> Identity:
    from eth_account import Account

    return Identity(f.key("alice"), Account.create())


def stored(store: Store) -> tuple[Record, int]:
    records, question, _ = history()
    closes = question.expect(Proposal).closes_at
    result = store.ingest(records, now=closes)
    assert not result.rejected and not result.orphaned
    return question, closes


def test_the_owners_decision_fixes_the_result(store: Store) -> None:
    question, closes = stored(store)
    before = outcome(store, question, now=closes)
    assert not before.final and before.decision.tally.yes == 35
    made = sign_decision(store, owner(), question, now=closes + 120)
    assert not store.ingest([made], now=closes + 120).rejected
    after = outcome(store, question, now=closes + 120)
    assert after.final and after.valid and after.findings == ()
    assert after.record == made
    t = after.decision.tally
    assert (t.total, t.yes, t.no, t.passed) == (35, 35, 0, True)
    # Carol changes her mind afterwards, dated back inside the window: the provisional tally
    # would follow her, the decision does not; the node reports the revision it left out.
    backdated = f.vote(question, "carol", "no", revision=1)
    assert not store.ingest([backdated], now=closes + 200).rejected
    late = outcome(store, question, now=closes + 200)
    assert (late.decision.tally.yes, late.decision.tally.no) == (35, 0)
    assert [x.code for x in late.findings] == ["superseded"]
    assert late.valid


def test_an_over_claimed_power_makes_a_decision_invalid(store: Store) -> None:
    question, closes = stored(store)
    honest = sign_decision(store, owner(), question, now=closes)
    body = honest.expect(Decision)
    bob = next(
        v
        for v in store.votes(question.id).items
        if v.author == f.pub("bob") and v.body.revision == 1
    )
    at = body.ballots.index(bob.id)
    powers = list(body.powers)
    powers[at] += 100
    forged = sign(
        replace(body, powers=tuple(powers), total=body.total + 100, yes=body.yes + 100),
        f.key("alice"),
    )
    # Its figures add up, so every node stores it; its powers are not what the chain gives.
    assert not store.ingest([forged], now=closes).rejected
    seen = outcome(store, question, now=closes)
    assert seen.final and not seen.valid
    assert {x.code for x in seen.findings} == {"power", "total"}
    assert any("over-claims" in x.detail for x in seen.findings)


def test_a_vote_the_decision_left_out_is_a_finding(store: Store) -> None:
    records, question, _ = history()
    closes = question.expect(Proposal).closes_at
    carol = next(r for r in records if r.kind == "vote" and r.author == f.pub("carol"))
    store.ingest([r for r in records if r.id != carol.id], now=closes)
    made = sign_decision(store, owner(), question, now=closes)
    store.ingest([made, carol], now=closes)
    seen = outcome(store, question, now=closes)
    assert [x.code for x in seen.findings] == ["omitted"]
    assert seen.decision.tally.yes == 15  # bob's alone, as decided


def test_only_the_owner_decides_and_only_after_the_window(store: Store) -> None:
    question, closes = stored(store)
    from eth_account import Account

    with pytest.raises(Conflict, match="owner"):
        sign_decision(store, Identity(f.key("bob"), Account.create()), question, now=closes)
    with pytest.raises(Conflict, match="open"):
        sign_decision(store, owner(), question, now=closes - 1)


def test_decisions_are_due_a_settle_time_after_the_window() -> None:
    items = [
        Pending(b"a" * 32, 1000, False),
        Pending(b"b" * 32, 1100, False),
        Pending(b"c" * 32, 500, True),
    ]
    assert due(items, 1059.0, 60.0).due == ()
    assert due(items, 1059.0, 60.0).wake == 1060.0
    plan = due(items, 1060.0, 60.0)
    assert (plan.due, plan.wake) == ((b"a" * 32,), 1160.0)
    assert due(items, 5000.0, 60.0) == due(list(reversed(items)), 5000.0, 60.0)
