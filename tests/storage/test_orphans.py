"""The orphan area: records that wait for their parents, and its bounds."""

from __future__ import annotations

from pathlib import Path

from protocol import FromTheFuture, NotAuthorized
from protocol.topics import shard, work
from protocol.validate import MAX_SKEW
from storage import Store
from tests.support import factories as f
from tests.support.factories import T0


def test_parents_later_in_the_same_call(store: Store) -> None:
    posting = f.project()
    work_ = f.contribution()
    verdict = f.acceptance(work_)
    result = store.ingest([verdict, work_, posting], now=T0)
    assert result.added == (posting.id, work_.id, verdict.id)
    assert result.orphaned == ()
    assert store.orphans() == (0, 0)
    assert store.acceptance_of(work_.id) == verdict
    assert store.check() == ()


def test_a_chain_released_across_calls(store: Store) -> None:
    posting = f.project()
    work_ = f.contribution()
    verdict = f.acceptance(work_, epoch=2)

    first = store.ingest([verdict], now=T0)
    assert first.orphaned == (verdict.id,) and first.added == ()
    # An orphan is not a stored record: not returned, not in its topic.
    assert not store.has(verdict.id) and store.get(verdict.id) is None
    assert store.is_orphan(verdict.id)
    assert store.topic_count(work(shard(f.pid()))) == 0

    second = store.ingest([work_], now=T0)
    assert second.orphaned == (work_.id,) and store.orphans()[0] == 2
    assert store.check() == ()

    third = store.ingest([posting], now=T0)
    # The project releases the contribution, which releases the acceptance.
    assert third.added == (posting.id,)
    assert third.released == (work_.id, verdict.id)
    assert store.orphans() == (0, 0)
    assert [r.id for r in store.acceptances(f.pid(), 2).items] == [verdict.id]
    assert store.topic_count(work(shard(f.pid()))) == 2
    assert store.check() == ()


def test_an_orphan_offered_again_with_its_parent(store: Store) -> None:
    work_ = f.contribution()
    store.ingest([work_], now=T0)
    # Passed in again: it counts as this call's record, whether stored or rejected.
    result = store.ingest([work_, f.project()], now=T0)
    assert result.added == (f.project().id, work_.id) and result.released == ()


def test_offering_an_orphan_again_changes_nothing(store: Store) -> None:
    work_ = f.contribution()
    store.ingest([work_], now=T0)
    before = dict(store._db.iterator())
    again = store.ingest([work_], now=T0)
    assert again.orphaned == (work_.id,) and again.duplicates == ()
    assert dict(store._db.iterator()) == before


def test_a_released_orphan_can_still_be_rejected(store: Store) -> None:
    work_ = f.contribution()
    forged = f.acceptance(work_, "mallory")
    assert store.ingest([forged], now=T0).orphaned == (forged.id,)
    result = store.ingest([f.project(), work_], now=T0)
    # Not the fault of whoever sent the parents: reported apart from this call's records.
    assert result.rejected == ()
    assert [(rid, type(exc)) for rid, exc in result.discarded] == [(forged.id, NotAuthorized)]
    assert not store.has(forged.id) and store.orphans() == (0, 0)
    assert store.check() == ()


def test_an_orphan_from_the_future_is_rejected(store: Store) -> None:
    record = f.contribution(created_at=T0 + MAX_SKEW + 10)
    result = store.ingest([record], now=T0)
    # Checked on arrival: the orphan area does not keep what could never be applied.
    assert [type(exc) for _, exc in result.rejected] == [FromTheFuture]
    assert store.orphans() == (0, 0)


def test_the_area_is_bounded_oldest_out(tmp_path: Path) -> None:
    works = [f.contribution(summary=f"work {i}") for i in range(5)]
    with Store.open(tmp_path / "s", max_orphans=3) as store:
        assert store.ingest(works[:3], now=T0).evicted == ()
        result = store.ingest(works[3:], now=T0)
        assert result.evicted == (works[0].id, works[1].id)
        assert result.orphaned == (works[3].id, works[4].id)
        assert store.orphans()[0] == 3
        assert store.check() == ()
        # The evicted ones are gone; the others are released by their project.
        result = store.ingest([f.project()], now=T0)
        assert result.released == tuple(sorted(w.id for w in works[2:]))
    size = len(works[0].raw)
    with Store.open(tmp_path / "t", max_orphan_bytes=2 * size + size // 2) as store:
        result = store.ingest(works, now=T0)
        assert result.evicted == tuple(w.id for w in works[:3])
        assert result.orphaned == tuple(w.id for w in works[3:])
        assert store.orphans() == (2, 2 * size)
        assert store.check() == ()


def test_orphans_survive_reopening(tmp_path: Path) -> None:
    work_ = f.contribution()
    verdict = f.acceptance(work_)
    with Store.open(tmp_path / "s") as store:
        store.ingest([verdict, work_], now=T0)
    with Store.open(tmp_path / "s") as store:
        assert store.orphans()[0] == 2
        result = store.ingest([f.project()], now=T0)
        assert result.added == (f.project().id,)
        assert result.released == (work_.id, verdict.id)
        assert store.check() == ()
