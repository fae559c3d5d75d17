"""An epoch's tree from records: revisions in force, epochs, withdrawals and authority."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import EmptyTree, MissingRecord, ReferenceMismatch
from protocol.epoch import leaves, tree
from protocol.merkle import Leaf, verify
from tests.support import factories as f


def test_tree_of_an_epoch() -> None:
    posting = f.project(reviewers=(f.pub("carol"),))
    bob, dave, erin = (f.contribution(who) for who in ("bob", "dave", "erin"))
    works = {w.id: w for w in (bob, dave, erin)}
    acceptances = [
        f.acceptance(bob, weight=30),
        f.acceptance(dave, "carol", weight=10),
        f.acceptance(erin, weight=5, epoch=1),  # another epoch
    ]
    merkle, summary = tree(posting, acceptances, works, 0)
    assert summary.leaf_count == 2 and summary.total_weight == 40
    assert summary.root == merkle.root
    assert set(merkle.leaves) == {
        Leaf(bob.id, f.address("bob"), 30),
        Leaf(dave.id, f.address("dave"), 10),
    }
    for leaf in merkle.leaves:
        assert verify(summary.root, leaf, merkle.proof(leaf.contribution_id))


def test_revisions_move_and_withdraw() -> None:
    posting = f.project()
    bob, dave = f.contribution("bob"), f.contribution("dave")
    works = {bob.id: bob, dave.id: dave}
    acceptances = [
        f.acceptance(bob, weight=30),
        f.acceptance(bob, weight=40, revision=1, epoch=1),  # moved to epoch 1
        f.acceptance(dave, weight=10),
        f.acceptance(dave, weight=0, revision=1),  # withdrawn
    ]
    assert leaves(posting, acceptances, works, 0) == ()
    assert leaves(posting, acceptances, works, 1) == (Leaf(bob.id, f.address("bob"), 40),)
    with pytest.raises(EmptyTree):
        tree(posting, acceptances, works, 0)


def test_missing_contribution_and_stranger() -> None:
    posting = f.project()
    bob = f.contribution("bob")
    with pytest.raises(MissingRecord):
        leaves(posting, [f.acceptance(bob)], {}, 0)
    # A stranger's acceptance is ignored, not refused: it counts for nothing.
    stranger = f.acceptance(bob, "mallory", revision=5)
    assert leaves(posting, [stranger], {bob.id: bob}, 0) == ()
    assert leaves(posting, [stranger, f.acceptance(bob)], {bob.id: bob}, 0) == (
        Leaf(bob.id, f.address("bob"), 10),
    )
    with pytest.raises(ReferenceMismatch):
        leaves(posting, [f.acceptance(bob, project_id=f.pid("alice", "other"))], {bob.id: bob}, 0)


def test_the_revision_in_force_decides_whose_acceptances_count() -> None:
    carol = (f.pub("carol"),)
    bob = f.contribution("bob")
    works = {bob.id: bob}
    by_alice = f.acceptance(bob, weight=10)
    by_carol = f.acceptance(bob, "carol", revision=1, weight=20, epoch=1)
    acceptances = [by_carol, by_alice]
    named = f.project(reviewers=carol)
    removed = f.project(revision=1)
    assert leaves(named, acceptances, works, 1) == (Leaf(bob.id, f.address("bob"), 20),)
    assert leaves(named, acceptances, works, 0) == ()
    # Carol removed: her later revision no longer counts; alice's earlier one is in force.
    assert leaves(removed, acceptances, works, 0) == (Leaf(bob.id, f.address("bob"), 10),)
    assert leaves(removed, acceptances, works, 1) == ()
    # Carol's alone: nothing in force once she is removed.
    assert leaves(removed, [by_carol], works, 1) == ()


WORKS = [f.contribution(f"c{i}") for i in range(6)]
ACCEPTANCES = [
    f.acceptance(w, weight=(i * 7 + r) % 5, revision=r, epoch=(i + r) % 2)
    for i, w in enumerate(WORKS)
    for r in range(3)
]


@settings(max_examples=50)
@given(st.permutations(ACCEPTANCES))
def test_root_does_not_depend_on_order(order: list[object]) -> None:
    works = {w.id: w for w in WORKS}
    expected = tree(f.project(), ACCEPTANCES, works, 0)[1]
    assert tree(f.project(), order, works, 0)[1] == expected  # type: ignore[arg-type]
