"""Decisions in the store: they wait for every ballot they list, bad figures are refused for
good, and the D index finds them by proposal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from protocol import BadDecision, Decision, NotAuthorized, Proposal, sign
from storage import Store
from tests.support import factories as f

POWER = {f.pub("bob"): 5, f.pub("carol"): 2}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as opened:
        yield opened


def test_a_decision_waits_for_its_ballots(store: Store) -> None:
    question = f.proposal()
    votes = [f.vote(question, "bob"), f.vote(question, "carol", "no")]
    made = f.decision(question, votes, POWER)
    now = question.expect(Proposal).closes_at + 10
    first = store.ingest([f.project(), question, votes[0], made], now=now)
    assert first.orphaned == (made.id,)
    assert store.decisions(question.id).items == ()
    second = store.ingest([votes[1]], now=now)
    assert made.id in second.released
    assert store.decisions(question.id).items == (made,)
    assert not store.check()


def test_bad_decisions_are_refused(store: Store) -> None:
    question = f.proposal()
    votes = [f.vote(question, "bob"), f.vote(question, "carol", "no")]
    made = f.decision(question, votes, POWER)
    forged = sign(replace(made.expect(Decision), yes=50), f.key("alice"))
    by_bob = sign(made.expect(Decision), f.key("bob"))
    now = question.expect(Proposal).closes_at + 10
    result = store.ingest([f.project(), question, *votes, forged, by_bob], now=now)
    errors = dict(result.rejected)
    assert isinstance(errors[forged.id], BadDecision)
    assert isinstance(errors[by_bob.id], NotAuthorized)
    assert store.decisions(question.id).items == ()
    assert not store.check()
