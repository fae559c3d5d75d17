"""Proposals and votes in the store: dependencies, refusals, indexes, and the same tally on every
node whatever order the records reached it in (node/decisions.py reads them back)."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.decisions import credits_of, decide
from protocol import OutsideWindow, Proposal, Record, ReferenceMismatch
from protocol.tally import Credit
from storage import Store
from tests.support import factories as f

NOW = f.T0 + 10_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as opened:
        yield opened


def _all(page: Any) -> list[Record]:
    return list(page.items)


def history() -> tuple[list[Record], Record, Record]:
    """Two anchored epochs (bob: 10 then 5, carol: 20 in epoch 1, dave accepted but not
    anchored), a yes/no proposal and an approval one, and votes with revisions."""
    project = f.project()
    bob0, bob1 = f.contribution("bob"), f.contribution("bob", summary="more")
    carol1, dave = f.contribution("carol"), f.contribution("dave")
    a_bob0 = f.acceptance(bob0, weight=10, epoch=0)
    a_bob1 = f.acceptance(bob1, weight=5, epoch=1)
    a_carol1 = f.acceptance(carol1, weight=20, epoch=1)
    a_dave = f.acceptance(dave, weight=1000, epoch=2)
    epoch0 = f.anchoring([a_bob0], [bob0], epoch=0)
    epoch1 = f.anchoring([a_bob1, a_carol1], [bob1, carol1], epoch=1)
    question = f.proposal("carol", snapshot=1)
    options = f.proposal("bob", snapshot=0, options=("x", "y"))
    votes = [
        f.vote(question, "bob", "no", revision=0),
        f.vote(question, "bob", "yes", revision=1),
        f.vote(question, "carol", "yes"),
        f.vote(question, "dave", "no"),  # no anchored work: no power
        f.vote(options, "bob", "approve", approve=(1,)),
        f.vote(options, "carol", "approve", approve=(0, 1)),
    ]
    records = [
        project,
        bob0,
        bob1,
        carol1,
        dave,
        a_bob0,
        a_bob1,
        a_carol1,
        a_dave,
        *epoch0,
        *epoch1,
        question,
        options,
        *votes,
    ]
    return records, question, options


def test_a_tally_from_the_store(store: Store) -> None:
    records, question, options = history()
    result = store.ingest(records, now=NOW)
    assert not result.rejected and not result.orphaned
    assert not store.check()
    assert [r.id for r in _all(store.proposals(f.pid()))] == [
        r.id for r in sorted([question, options], key=lambda r: (r.body.created_at, r.id))
    ]
    assert len(_all(store.votes(question.id))) == 4
    found = decide(store, question, now=NOW)
    result_ = found.tally
    # bob 10 + 5 yes (his revision), carol 20 yes, dave 0 no; dave's epoch 2 is not anchored.
    assert (result_.total, result_.yes, result_.no, result_.passed) == (35, 35, 0, True)
    assert found.open
    assert {c.epoch for c in found.credits[f.pub("bob")]} == {0, 1}
    on_options = decide(store, options, now=question.expect(Proposal).closes_at).tally
    # Snapshot 0: only bob's first contribution counts.
    assert (on_options.total, on_options.approvals, on_options.winners) == (10, (0, 10), (1,))


def test_credits_stop_at_the_snapshot(store: Store) -> None:
    records, _, _ = history()
    store.ingest(records, now=NOW)
    project = store.project(f.pid())
    assert project is not None
    assert {(c.epoch, c.weight) for c in credits_of(store, project, 0)} == {(0, 10)}
    assert all(isinstance(c, Credit) for c in credits_of(store, project, 5))
    assert len(credits_of(store, project, 5)) == 3


def test_a_vote_waits_for_its_proposal_and_a_proposal_for_its_project(store: Store) -> None:
    question = f.proposal()
    ballot = f.vote(question)
    first = store.ingest([ballot, question], now=NOW)
    assert set(first.orphaned) == {ballot.id, question.id}
    second = store.ingest([f.project()], now=NOW)
    assert set(second.released) == {question.id, ballot.id}
    assert _all(store.votes(question.id)) == [ballot]
    assert not store.check()


def test_votes_that_do_not_fit_their_proposal_are_refused(store: Store) -> None:
    question = f.proposal()
    closes = question.expect(Proposal).closes_at
    late = f.vote(question, created_at=closes)
    wrong = f.vote(question, choice="approve", approve=(0,))
    result = store.ingest([f.project(), question, late, wrong], now=closes + 10)
    errors = dict(result.rejected)
    assert isinstance(errors[late.id], OutsideWindow)
    assert isinstance(errors[wrong.id], ReferenceMismatch)
    assert _all(store.votes(question.id)) == []
    assert not store.check()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(seeds=st.lists(st.integers(0, 2**32), min_size=2, max_size=3))
def test_every_arrival_order_gives_the_same_tally(seeds: list[int]) -> None:
    records, question, options = history()
    outcomes = []
    for seed in seeds:
        rng = random.Random(seed)
        shuffled = list(records)
        rng.shuffle(shuffled)
        with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "s") as store:
            # Split into calls, as gossip and sync deliver records in batches.
            while shuffled:
                size = rng.randint(1, 5)
                store.ingest(shuffled[:size], now=NOW)
                shuffled = shuffled[size:]
            assert store.orphans() == (0, 0)
            assert not store.check()
            outcomes.append(
                [
                    _view(decide(store, question, now=NOW)),
                    _view(decide(store, options, now=NOW)),
                ]
            )
    assert all(o == outcomes[0] for o in outcomes)
    assert outcomes[0][0][:4] == (35, 35, 0, True)


def _view(found: Any) -> tuple[Any, ...]:
    t = found.tally
    return (
        t.total,
        t.yes,
        t.no,
        t.passed,
        t.abstain,
        t.approvals,
        t.winners,
        tuple((b.vote.id, b.power) for b in t.ballots),
        tuple(sorted((k, v) for k, v in found.credits.items())),
    )


@pytest.mark.parametrize("revisions", [(0, 1), (1, 0)])
def test_vote_revisions_are_all_kept(store: Store, revisions: tuple[int, int]) -> None:
    question = f.proposal()
    votes = [
        f.vote(question, "bob", c, revision=r)
        for c, r in zip(("yes", "no"), revisions, strict=True)
    ]
    store.ingest([f.project(), question, *votes], now=NOW)
    assert {v.id for v in _all(store.votes(question.id))} == {v.id for v in votes}
