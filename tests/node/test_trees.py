"""The cache of epoch trees: a tree is reused only while the records it was built from hold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.chain.trees import stored_tree
from protocol import EmptyTree, Record
from protocol.epoch import tree
from storage import Store
from tests.support import factories as f

NOW = f.T0 + 3600


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as opened:
        yield opened


def fresh(store: Store, project: Record, epoch: int = 0) -> bytes:
    """The root built from the store without the cache."""
    acceptances = store.acceptances(f.pid(), epoch, limit=1000).items
    works = {w.id: w for w in (store.get(a.body.contribution_id) for a in acceptances) if w}
    return tree(project, acceptances, works, epoch)[0].root


def test_reused_while_nothing_changes_and_rebuilt_when_anything_does(store: Store) -> None:
    project = f.project(reviewers=(f.pub("carol"),))
    works = [f.contribution("bob", summary=f"work {i}") for i in range(3)]
    store.ingest(
        [project, *works, *(f.acceptance(w, weight=i + 1) for i, w in enumerate(works))], now=NOW
    )
    first = stored_tree(store, project, 0)
    assert stored_tree(store, project, 0) is first
    assert first.merkle.root == fresh(store, project)

    # A reviewer's acceptance of another contribution: a new leaf.
    late = f.contribution("dave", summary="late")
    store.ingest([late, f.acceptance(late, "carol", weight=5)], now=NOW)
    second = stored_tree(store, project, 0)
    assert second is not first and len(second.merkle) == 4
    assert second.merkle.root == fresh(store, project)

    # A revision that removes the reviewer takes that leaf out again, with no new work record.
    revised = f.project(reviewers=(), revision=1)
    store.ingest([revised], now=NOW)
    third = stored_tree(store, revised, 0)
    assert len(third.merkle) == 3 and third.merkle.root == first.merkle.root
    assert third.merkle.root == fresh(store, revised)

    # A withdrawal (weight 0) empties a leaf; another epoch is another tree.
    store.ingest([f.acceptance(works[0], weight=0, revision=1)], now=NOW)
    assert len(stored_tree(store, revised, 0).merkle) == 2
    with pytest.raises(EmptyTree):
        stored_tree(store, revised, 7)


def test_two_stores_do_not_share_trees(tmp_path: Path) -> None:
    project = f.project()
    work = f.contribution()
    with Store.open(tmp_path / "a") as a, Store.open(tmp_path / "b") as b:
        a.ingest([project, work, f.acceptance(work, weight=1)], now=NOW)
        b.ingest([project, work, f.acceptance(work, weight=2)], now=NOW)
        assert stored_tree(a, project, 0).summary.total_weight == 1
        assert stored_tree(b, project, 0).summary.total_weight == 2


def test_an_anchored_epoch_is_its_manifest_whatever_comes_after(store: Store) -> None:
    project = f.project(reviewers=(f.pub("carol"),))
    works = [f.contribution("bob", summary=f"work {i}") for i in range(3)]
    accepted = [f.acceptance(w, "carol", weight=i + 1) for i, w in enumerate(works)]
    store.ingest([project, *works, *accepted], now=NOW)
    before = stored_tree(store, project, 0)
    assert before.root is None and before.acceptances == tuple(sorted(a.id for a in accepted))
    store.ingest(f.anchoring(accepted, works), now=NOW)
    anchored = stored_tree(store, project, 0)
    assert anchored.root is not None and anchored.merkle.root == before.merkle.root
    # A reviewer's late acceptance, a re-weighing, a withdrawal, a removed reviewer: the
    # anchored epoch stays what its manifest lists.
    other = f.contribution("dave", summary="late")
    revised = f.project(reviewers=(), revision=1)
    store.ingest(
        [
            other,
            f.acceptance(other, "carol", weight=5),
            f.acceptance(works[0], revision=1, weight=50),
            f.acceptance(works[1], revision=1, weight=0),
            revised,
        ],
        now=NOW,
    )
    after = stored_tree(store, revised, 0)
    assert after.merkle.root == before.merkle.root and after.acceptances == before.acceptances
    # works[2] moved into epoch 1 is not paid twice: epoch 0 pays it, the move is late.
    store.ingest([f.acceptance(works[2], revision=1, epoch=1, weight=70)], now=NOW)
    with pytest.raises(EmptyTree):
        stored_tree(store, revised, 1)
