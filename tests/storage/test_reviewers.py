"""Reviewers added and removed by project revisions: what is stored, what is in force.

The storage rule: an acceptance is stored if its author is the owner or a reviewer named by any
stored revision of the project. The counting rule: the acceptance in force of a contribution is
the highest (revision, id) among its stored acceptances whose author the project revision in
force authorizes. Neither depends on the order in which records arrive.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import Acceptance, NotAuthorized, Record
from storage import Store
from tests.support import factories as f
from tests.support.factories import T0


def keys_of(*names: str) -> tuple[bytes, ...]:
    return tuple(sorted(f.pub(name) for name in names))


WITH_CAROL = f.project(reviewers=keys_of("carol", "dave"))
WITHOUT_CAROL = f.project(revision=1, title="Carol left", reviewers=keys_of("dave"))
WORK = f.contribution()
BY_ALICE = f.acceptance(WORK, weight=10)
BY_CAROL = f.acceptance(WORK, "carol", revision=1, epoch=1, weight=20)
BY_DAVE = f.acceptance(WORK, "dave", revision=1, epoch=2, weight=30)


def ingest(path: Path, calls: list[list[Record]]) -> Store:
    store = Store.open(path)
    for call in calls:
        store.ingest(call, now=T0)
    return store


def everything(store: Store) -> dict[bytes, bytes]:
    return dict(store._db.iterator())


def ids(store: Store, epoch: int) -> list[bytes]:
    return [r.id for r in store.acceptances(f.pid(), epoch).items]


ORDERS = {
    "acceptance before the removal": [[WITH_CAROL, WORK, BY_ALICE], [BY_CAROL], [WITHOUT_CAROL]],
    "acceptance after the removal": [[WITH_CAROL, WORK, BY_ALICE], [WITHOUT_CAROL], [BY_CAROL]],
    "removal first, then everything": [[WITHOUT_CAROL], [WITH_CAROL, BY_CAROL, WORK, BY_ALICE]],
    "one call": [[BY_CAROL, WITHOUT_CAROL, BY_ALICE, WORK, WITH_CAROL]],
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_a_removed_reviewers_acceptance_is_stored_but_not_in_force(
    tmp_path: Path, order: str
) -> None:
    with ingest(tmp_path / "s", ORDERS[order]) as store:
        assert store.has(BY_CAROL.id) and store.has(BY_ALICE.id)
        # Carol's revision is higher, but carol is no reviewer of the revision in force.
        assert store.acceptance_of(WORK.id) == BY_ALICE
        assert ids(store, 0) == [BY_ALICE.id] and ids(store, 1) == []
        assert store.check() == ()
        state = everything(store)
    with ingest(tmp_path / "reference", ORDERS["acceptance before the removal"]) as reference:
        assert everything(reference) == state


def test_while_carol_is_a_reviewer_her_acceptance_is_in_force(store: Store) -> None:
    store.ingest([WITH_CAROL, WORK, BY_ALICE, BY_CAROL], now=T0)
    assert store.acceptance_of(WORK.id) == BY_CAROL
    assert ids(store, 0) == [] and ids(store, 1) == [BY_CAROL.id]
    assert store.check() == ()


def test_the_remaining_reviewer_or_nobody_is_in_force_instead(store: Store) -> None:
    other = f.contribution("erin")
    by_carol_alone = f.acceptance(other, "carol", weight=5)
    store.ingest([WITH_CAROL, WORK, other, BY_CAROL, BY_DAVE, by_carol_alone], now=T0)
    # Equal revisions: the higher id wins while both count.
    assert store.acceptance_of(WORK.id) == max(BY_CAROL, BY_DAVE, key=lambda r: r.id)
    assert store.acceptance_of(other.id) == by_carol_alone
    store.ingest([WITHOUT_CAROL], now=T0)
    assert store.acceptance_of(WORK.id) == BY_DAVE
    assert ids(store, 2) == [BY_DAVE.id] and ids(store, 1) == []
    # Nothing of carol's counts any more: no acceptance in force at all.
    assert store.acceptance_of(other.id) is None and ids(store, 0) == []
    assert store.has(by_carol_alone.id)
    assert store.check() == ()


def test_a_reviewer_added_later(store: Store) -> None:
    alone = f.project()
    adding = f.project(revision=1, reviewers=keys_of("carol"))
    store.ingest([alone, WORK, BY_ALICE], now=T0)
    # No stored revision names carol yet: rejected, and sync will offer it again.
    result = store.ingest([BY_CAROL], now=T0)
    assert [(rid, type(exc)) for rid, exc in result.rejected] == [(BY_CAROL.id, NotAuthorized)]
    assert not store.has(BY_CAROL.id) and store.orphans() == (0, 0)
    assert store.ingest([adding], now=T0).added == (adding.id,)
    assert store.ingest([BY_CAROL], now=T0).added == (BY_CAROL.id,)
    assert store.acceptance_of(WORK.id) == BY_CAROL
    assert ids(store, 0) == [] and ids(store, 1) == [BY_CAROL.id]
    assert store.check() == ()


def test_a_reviewer_added_later_in_the_same_call(store: Store) -> None:
    adding = f.project(revision=1, reviewers=keys_of("carol"))
    store.ingest([f.project(), WORK], now=T0)
    # The acceptance comes first: it waits for the end of the call, and the revision names her.
    result = store.ingest([BY_CAROL, BY_CAROL, adding], now=T0)
    assert result.added == (adding.id, BY_CAROL.id) and result.rejected == ()
    assert store.acceptance_of(WORK.id) == BY_CAROL
    assert store.check() == ()


def test_a_released_orphan_whose_reviewer_is_named_later_in_the_call(store: Store) -> None:
    adding = f.project(revision=1, reviewers=keys_of("carol"))
    assert store.ingest([BY_CAROL], now=T0).orphaned == (BY_CAROL.id,)
    result = store.ingest([f.project(), WORK, adding], now=T0)
    assert result.released == (BY_CAROL.id,) and result.discarded == ()
    assert store.acceptance_of(WORK.id) == BY_CAROL
    assert store.check() == ()


def test_reviewers_named_again_count_again(store: Store) -> None:
    # A superseded revision named carol, so her acceptance is stored though not in force; the
    # revision that names her again puts it in force without it being offered again.
    again = f.project(revision=2, reviewers=keys_of("carol"))
    store.ingest([WITH_CAROL, WITHOUT_CAROL, WORK, BY_ALICE, BY_CAROL], now=T0)
    assert store.acceptance_of(WORK.id) == BY_ALICE
    result = store.ingest([again], now=T0)
    assert result.added == (again.id,)
    assert store.acceptance_of(WORK.id) == BY_CAROL
    assert ids(store, 0) == [] and ids(store, 1) == [BY_CAROL.id]
    assert store.check() == ()


def test_the_index_follows_the_revision_in_force(store: Store) -> None:
    works = [f.contribution(who) for who in ("bob", "erin", "frank", "gina")]
    verdicts = [
        f.acceptance(works[0], "carol", weight=1, epoch=1),
        f.acceptance(works[1], "dave", weight=2, epoch=1),
        f.acceptance(works[1], "carol", revision=1, weight=3, epoch=2),
        f.acceptance(works[2], weight=4, epoch=1),
        f.acceptance(works[2], "dave", revision=1, weight=0),  # a withdrawal, by dave
        f.acceptance(works[3], "erin", weight=6, epoch=3),
    ]
    revisions = [
        WITH_CAROL,  # carol and dave
        WITHOUT_CAROL,  # dave
        f.project(revision=2, reviewers=keys_of("erin")),
        f.project(revision=3, reviewers=keys_of("carol", "erin")),
    ]
    store.ingest([revisions[0], *works, *verdicts], now=T0)
    rejected = verdicts[5]  # erin is not named yet
    assert not store.has(rejected.id)

    def leaves() -> dict[int, list[bytes]]:
        """The contributions in each epoch's tree."""
        found = {e: store.acceptances(f.pid(), e).items for e in range(4)}
        return {
            e: [r.expect(Acceptance).contribution_id for r in rs] for e, rs in found.items() if rs
        }

    w, v = works, verdicts
    assert leaves() == {1: [w[0].id], 2: [w[1].id]}
    assert store.acceptance_of(w[2].id) == v[4]  # withdrawn by dave
    store.ingest([revisions[1]], now=T0)
    # Carol removed: dave's acceptance of w1 is back, w0 has none in force.
    assert leaves() == {1: [w[1].id]}
    assert store.acceptance_of(w[0].id) is None
    store.ingest([revisions[2], rejected], now=T0)
    # Dave removed, erin added: alice's acceptance of w2 counts again, erin's of w3 counts.
    assert leaves() == {1: [w[2].id], 3: [w[3].id]}
    assert store.acceptance_of(w[1].id) is None
    # An older revision arriving late changes nothing in force.
    before = everything(store)
    store.ingest([f.project(revision=1, title="late", reviewers=keys_of("dave"))], now=T0)
    assert store.acceptance_of(w[1].id) is None and leaves() == {1: [w[2].id], 3: [w[3].id]}
    in_force = [(k, v) for k, v in everything(store).items() if k[:1] in (b"L", b"E")]
    assert in_force == [(k, v) for k, v in before.items() if k[:1] in (b"L", b"E")]
    store.ingest([revisions[3]], now=T0)
    # Carol named again: her acceptances of w0 and w1 count again.
    assert leaves() == {1: sorted([w[0].id, w[2].id]), 2: [w[1].id], 3: [w[3].id]}
    assert store.check() == ()
