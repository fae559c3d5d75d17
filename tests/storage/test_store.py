"""Ingest and queries: records, indexes, revisions in force, pages and topics."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import plyvel
import pytest

from protocol import (
    BadSignature,
    DecodeError,
    FromTheFuture,
    NotAuthorized,
    Record,
)
from protocol.topics import META, shard, work
from protocol.validate import MAX_SKEW
from storage import BadCursor, IngestResult, Page, StorageError, Store, StoreClosed
from storage.values import LevelStats, level_stats
from tests.support import factories as f
from tests.support.factories import T0


def ids(page: Page[Record]) -> list[bytes]:
    return [record.id for record in page.items]


def everything(store: Store) -> dict[bytes, bytes]:
    """Every key and value of the store's database, for before/after comparisons."""
    return dict(store._db.iterator())


def test_ingest_then_query(store: Store) -> None:
    posting, profile = f.project(), f.profile("bob")
    first = f.contribution("bob", created_at=T0 + 10)
    second = f.contribution("carol", created_at=T0 + 5)
    verdict = f.acceptance(first, epoch=3, weight=7)
    part, root = f.anchoring([verdict], [first], epoch=3)

    result = store.ingest([posting, profile, first, second, verdict, part, root], now=T0)

    assert result == IngestResult(
        added=(posting.id, profile.id, first.id, second.id, verdict.id, part.id, root.id)
    )
    assert store.check() == ()
    assert store.get(first.id) == first
    assert store.has(first.id) and not store.has(b"\x00" * 32)
    assert store.get(b"\x00" * 32) is None
    assert store.get_raw(first.id) == first.raw and store.get_raw(b"\x00" * 32) is None
    # A fetch's answer: stored bytes in the order asked, unknown ids skipped, within a budget.
    wanted = [second.id, b"\x00" * 32, first.id, posting.id]
    assert store.get_raws(wanted, 10**6) == [second.raw, first.raw, posting.raw]
    two = len(second.raw) + len(first.raw) + 2 * 8
    assert store.get_raws(wanted, two, 8) == [second.raw, first.raw]
    assert store.get_raws(wanted, two - 1, 8) == [second.raw]
    assert store.get_raws(wanted, 0) == []
    assert store.project(f.pid()) == posting
    assert store.profile(f.pub("bob")) == profile
    assert ids(store.projects()) == [posting.id]
    assert ids(store.profiles()) == [profile.id]
    # Oldest first, whoever signed them.
    assert ids(store.contributions(f.pid())) == [second.id, first.id]
    assert ids(store.contributions_by(f.pub("bob"))) == [first.id]
    assert ids(store.contributions_by(f.pub("carol"))) == [second.id]
    assert ids(store.acceptances(f.pid(), 3)) == [verdict.id]
    assert ids(store.acceptances(f.pid(), 0)) == []
    assert store.acceptance_of(first.id) == verdict
    assert store.acceptance_of(second.id) is None
    assert ids(store.epoch_roots(f.pid())) == [root.id]
    assert ids(store.epoch_roots(f.pid(), epoch=3)) == [root.id]
    assert ids(store.epoch_roots(f.pid(), epoch=4)) == []
    assert ids(store.contributions(f.pid("bob", "other"))) == []
    # The manifest the root names says what the anchored epoch pays.
    assert store.committed_of(first.id) == ((3, verdict.id),)
    assert store.committed_of(second.id) == ()
    assert store.anchored(f.pid(), 3) and not store.anchored(f.pid(), 2)


def test_values_are_frozen(store: Store) -> None:
    store.ingest([f.project()], now=T0)
    page = store.projects()
    with pytest.raises(dataclasses.FrozenInstanceError):
        page.cursor = b"x"  # type: ignore[misc]
    assert isinstance(page.items, tuple)
    result = store.ingest([f.project()], now=T0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.added = ()  # type: ignore[misc]


def test_ingesting_again_changes_nothing(store: Store) -> None:
    work_ = f.contribution()
    accepted = f.acceptance(work_)
    batch = [f.project(), work_, accepted, *f.anchoring([accepted], [work_]), f.profile()]
    store.ingest(batch, now=T0)
    before = everything(store)

    again = store.ingest(batch, now=T0)

    assert again.added == () and again.duplicates == tuple(r.id for r in batch)
    assert everything(store) == before
    # Twice within one call: the second is a duplicate of the first.
    posting = f.project(name="twice")
    result = store.ingest([posting, posting], now=T0)
    assert result.added == (posting.id,) and result.duplicates == (posting.id,)


def test_acceptances_seen_again_are_duplicates(store: Store) -> None:
    # Ingest skips the read for acceptances of contributions that have none yet; whatever the
    # history, an acceptance seen again must still be a duplicate.
    work_, other = f.contribution(summary="a"), f.contribution(summary="b")
    first, second = f.acceptance(work_), f.acceptance(work_, revision=1)
    late = f.acceptance(other, revision=3)
    low = f.acceptance(other, revision=1)
    store.ingest([f.project(), work_, other], now=T0)
    assert store.ingest([first], now=T0).added == (first.id,)
    assert store.ingest([first, second], now=T0).duplicates == (first.id,)
    assert store.ingest([late, low, late], now=T0).duplicates == (late.id,)
    assert store.ingest([low, second], now=T0).duplicates == (low.id, second.id)
    assert store.check() == ()


def test_one_write_per_call(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = []
    db = store._db
    real = db.write_batch

    def counting(**options: bool) -> object:
        writes.append(options)
        return real(**options)

    # plyvel's DB type is a C extension; wrap the handle rather than patching the class.
    class Handle:
        def __getattr__(self, name: str) -> object:
            return getattr(db, name)

        write_batch = staticmethod(counting)

    monkeypatch.setattr(store, "_handle", Handle())
    works = [f.contribution(summary=f"work {i}") for i in range(50)]
    result = store.ingest([f.project(), *works, *(f.acceptance(w) for w in works)], now=T0)
    assert len(result.added) == 101
    assert writes == [{"sync": False}]


def fail_writes(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes every write of the store fail as a full disk would, until monkeypatch.undo()."""
    db = store._db

    class Failing:
        def __init__(self, batch: Any) -> None:
            self.put, self.delete = batch.put, batch.delete

        def write(self) -> None:
            raise plyvel.IOError(b"IO error: No space left on device")

    class Handle:
        def __getattr__(self, name: str) -> object:
            return getattr(db, name)

        def write_batch(self, **options: bool) -> Failing:
            return Failing(db.write_batch(**options))

    monkeypatch.setattr(store, "_handle", Handle())


def test_a_failed_write_leaves_the_store_and_its_caches_as_they_were(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    posting, revised = f.project(), f.project(revision=1, status="closed", created_at=T0 + 5)
    work_, orphan = f.contribution(), f.contribution(name="later")
    store.ingest([posting], now=T0)
    before = everything(store)

    fail_writes(store, monkeypatch)
    with pytest.raises(StorageError, match="No space left on device") as caught:
        store.ingest([revised, work_, orphan], now=T0 + 10)
    assert caught.value.path == store.path
    monkeypatch.undo()

    assert everything(store) == before
    assert store.project(f.pid()) == posting and store.orphans() == (0, 0)
    # What the failed call would have done is done again, against the store as it is.
    result = store.ingest([work_, orphan, revised], now=T0 + 10)
    assert result.added == (work_.id, revised.id) and result.orphaned == (orphan.id,)
    assert store.project(f.pid()) == revised
    assert store.check() == ()


def test_rejected_records_are_not_stored_and_do_not_abort(store: Store) -> None:
    posting = f.project(reviewers=(f.pub("carol"),))
    work_ = f.contribution()
    by_mallory = f.acceptance(work_, "mallory")
    by_carol = f.acceptance(work_, "carol")
    future = f.profile("dave", created_at=T0 + MAX_SKEW + 1)
    part, _ = f.anchoring([by_carol], [work_])
    root_by_bob = f.epoch_root("bob", project_id=f.pid(), manifest=part.id)

    result = store.ingest([posting, work_, by_mallory, future, by_carol, part, root_by_bob], now=T0)

    assert result.added == (posting.id, work_.id, by_carol.id, part.id)
    # Mallory's acceptance is rejected at the end of the call: a revision later in the call
    # might have named her.
    assert [(rid, type(exc)) for rid, exc in result.rejected] == [
        (future.id, FromTheFuture),
        (root_by_bob.id, NotAuthorized),
        (by_mallory.id, NotAuthorized),
    ]
    # A part is stored, but no root names it: the epoch is not anchored.
    assert store.committed_of(work_.id) == () and not store.anchored(f.pid(), 0)
    assert not store.has(by_mallory.id) and not store.has(future.id)
    assert store.acceptance_of(work_.id) == by_carol
    assert store.check() == ()


def test_contribution_to_a_closed_project_is_stored(store: Store) -> None:
    # Whether it came before or after closing depends on arrival order, which must not decide
    # what nodes store (protocol.validate.check_open); the owner just does not accept it.
    store.ingest([f.project(status="closed", revision=1, created_at=T0 + 100)], now=T0 + 100)
    early = f.contribution(created_at=T0 + 50)
    late = f.contribution(created_at=T0 + 150)
    result = store.ingest([early, late], now=T0 + 200)
    assert result.added == (early.id, late.id)


def test_ingest_raw_verifies_and_names_bad_blobs_by_hash(store: Store) -> None:
    posting = f.project()
    # A well-formed profile, but not the one bob signed.
    forged = f.profile("bob").raw.replace(b"Bob", b"Rob")
    garbage = b"\x93not a record"

    result = store.ingest_raw([posting.raw, bytes(forged), garbage, posting.raw], now=T0)

    assert result.added == (posting.id,)
    assert result.duplicates == (posting.id,)
    assert [(rid, type(exc)) for rid, exc in result.rejected] == [
        (hashlib.sha256(forged).digest(), BadSignature),
        (hashlib.sha256(garbage).digest(), DecodeError),
    ]
    # Stored blobs are duplicates before being decoded again.
    assert store.ingest_raw([posting.raw], now=T0).duplicates == (posting.id,)


def test_revisions_in_force(store: Store) -> None:
    v0, v1, v2 = (f.project(revision=r, title=f"Docs v{r}") for r in range(3))
    bob0, bob1 = f.profile("bob"), f.profile("bob", revision=1, name="Robert")

    result = store.ingest([v1, bob1, v2, v0, bob0], now=T0)

    # Every revision is stored and synced; the highest is in force, whatever the order.
    assert set(result.added) == {v0.id, v1.id, v2.id, bob0.id, bob1.id}
    assert store.project(f.pid()) == v2
    assert store.profile(f.pub("bob")) == bob1
    assert ids(store.projects()) == [v2.id]
    assert store.topic_count(META) == 5
    # A tie on revision goes to the higher id (protocol.validate.supersedes).
    a, b = f.profile("carol", rate="a"), f.profile("carol", rate="b")
    store.ingest([a, b], now=T0)
    assert store.profile(f.pub("carol")) == max(a, b, key=lambda r: r.id)
    assert store.check() == ()


def test_acceptance_index_follows_the_revision_in_force(store: Store) -> None:
    work_ = f.contribution()
    first = f.acceptance(work_, epoch=1, weight=5)
    moved = f.acceptance(work_, epoch=2, weight=5, revision=1)
    withdrawn = f.acceptance(work_, epoch=2, weight=0, revision=2)
    stale = f.acceptance(work_, epoch=7, weight=9, revision=0, created_at=T0 + 30)
    store.ingest([f.project(), work_, first], now=T0)
    assert ids(store.acceptances(f.pid(), 1)) == [first.id]

    store.ingest([moved], now=T0)
    assert ids(store.acceptances(f.pid(), 1)) == []
    assert ids(store.acceptances(f.pid(), 2)) == [moved.id]

    # A lower revision arriving late is stored but changes nothing in force.
    store.ingest([stale], now=T0)
    assert store.has(stale.id)
    assert store.acceptance_of(work_.id) == moved
    assert ids(store.acceptances(f.pid(), 7)) == []

    store.ingest([withdrawn], now=T0)
    assert ids(store.acceptances(f.pid(), 2)) == []
    assert store.acceptance_of(work_.id) == withdrawn
    assert store.check() == ()


def test_acceptance_revisions_within_one_call(store: Store) -> None:
    work_ = f.contribution()
    revisions = [f.acceptance(work_, epoch=e, weight=1, revision=e) for e in range(4)]
    store.ingest(
        [f.project(), work_, revisions[2], revisions[0], revisions[3], revisions[1]], now=T0
    )
    assert [ids(store.acceptances(f.pid(), e)) for e in range(4)] == [[], [], [], [revisions[3].id]]
    assert store.check() == ()


def test_pages_walk_an_index_without_gaps(store: Store) -> None:
    works = [f.contribution(summary=f"work {i}", created_at=T0 + i % 7) for i in range(25)]
    store.ingest([f.project(), *works], now=T0)
    expected = [w.id for w in sorted(works, key=lambda w: (w.body.created_at, w.id))]

    seen: list[bytes] = []
    cursor = None
    pages = 0
    while True:
        page = store.contributions(f.pid(), cursor=cursor, limit=10)
        seen += ids(page)
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == expected and pages == 3
    # A page that ends exactly at the end has no cursor.
    assert store.contributions(f.pid(), limit=25).cursor is None
    assert store.contributions(f.pid(), limit=24).cursor is not None


def test_page_arguments_are_checked(store: Store) -> None:
    for limit in (0, 1001):
        with pytest.raises(ValueError, match="limit"):
            store.projects(limit=limit)
    with pytest.raises(BadCursor):
        store.projects(cursor=b"")
    with pytest.raises(ValueError, match="unknown topic"):
        store.topic_ids("work/99")


def test_topic_sets_in_sync_order(store: Store) -> None:
    posting = f.project()
    works = [f.contribution(summary=f"w{i}", created_at=T0 + 100 - i) for i in range(5)]
    accepted = f.acceptance(works[0])
    part, root = f.anchoring([accepted], works[:1])
    store.ingest([posting, *works, accepted, part, root, f.profile()], now=T0 + 100)
    shard_ = work(shard(f.pid()))
    expected = sorted((r.body.created_at, r.id) for r in [*works, accepted, part, root])

    assert store.topic_ids(shard_).items == tuple(expected)
    assert store.topic_count(shard_) == 8
    assert store.topic_count(META) == 2
    assert store.topic_count("work/0" if shard_ != "work/0" else "work/1") == 0
    # Ranges: [start, end), a bound's id may be a prefix.
    t, rid = expected[2]
    assert store.topic_ids(shard_, start=(t, rid)).items == tuple(expected[2:])
    assert store.topic_ids(shard_, end=(t, rid)).items == tuple(expected[:2])
    assert store.topic_ids(shard_, start=(T0 + 97, b""), end=(T0 + 99, b"")).items == tuple(
        e for e in expected if T0 + 97 <= e[0] < T0 + 99
    )
    page = store.topic_ids(shard_, start=(T0 + 97, b""), limit=2)
    rest = store.topic_ids(shard_, start=(T0 + 97, b""), cursor=page.cursor, limit=10)
    assert page.items + rest.items == tuple(e for e in expected if e[0] >= T0 + 97)


def summary_of(store: Store, name: str) -> tuple[int, int]:
    """(count, sum of ids mod 2**256) of a topic, read from its index."""
    ids = [rid for _, rid in store.topic_ids(name).items]  # a page holds all of these
    return len(ids), sum(int.from_bytes(rid, "little") for rid in ids) % 2**256


def test_topic_summary_follows_every_write(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    shard_, later = work(shard(f.pid())), work(shard(f.pid(name="later")))
    posting = f.project()
    store.ingest([posting, f.contribution(summary="first")], now=T0)
    assert store.topic_summary(shard_) == summary_of(store, shard_)
    assert store.topic_summary(shard_)[0] == 1
    assert store.topic_summary(META) == summary_of(store, META)
    assert store.topic_summary(later) == summary_of(store, later)
    # Kept up to date from here on: new records, duplicates, an orphan and then its release.
    orphan = f.contribution(name="later", summary="waits")
    store.ingest([f.contribution(summary="second"), posting, orphan], now=T0)
    store.ingest([f.project(name="later")], now=T0)
    for name in (shard_, later, META):
        assert store.topic_summary(name) == summary_of(store, name)
    assert store.topic_summary(later)[0] == 1 and store.topic_summary(META)[0] == 2
    # A write that fails changes nothing.
    before = store.topic_summary(shard_)

    fail_writes(store, monkeypatch)
    with pytest.raises(StorageError):
        store.ingest([f.contribution(summary="lost")], now=T0)
    monkeypatch.undo()
    assert store.topic_summary(shard_) == before == summary_of(store, shard_)


def test_compactions_count_the_tables_leveldb_wrote(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        store.ingest([f.project(), f.contribution()], now=T0)
        # Still in the write buffer: no table yet.
        assert sum(level.files for level in store.compactions()) == 0
    # Reopening writes the log into a level's table.
    with Store.open(tmp_path / "s") as store:
        levels = store.compactions()
        assert sum(level.files for level in levels) == 1
        assert all(0 <= level.level < 7 for level in levels)
    with pytest.raises(StoreClosed):
        store.compactions()


def test_level_stats_read_leveldb_rows_only() -> None:
    text = (
        "                               Compactions\n"
        "Level  Files Size(MB) Time(sec) Read(MB) Write(MB)\n"
        "--------------------------------------------------\n"
        "  0        4       39         8        0       393\n"
        "  2      130      257        11      557       568\n"
    )
    assert level_stats(text) == (
        LevelStats(0, 4, 39, 8, 0, 393),
        LevelStats(2, 130, 257, 11, 557, 568),
    )
    assert level_stats("") == ()


def test_closed_store(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s")
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(StoreClosed, match="closed"):
        store.get(b"\x00" * 32)
    with pytest.raises(StoreClosed):
        store.ingest([f.project()], now=T0)
    # Everything written before closing is there after reopening.
    with Store.open(tmp_path / "t") as first:
        first.ingest([f.project()], now=T0)
    with Store.open(tmp_path / "t") as second:
        assert second.project(f.pid()) == f.project()


def test_accepted_epochs_skip_to_each_epoch_with_leaves(store: Store) -> None:
    works = [f.contribution(summary=f"work {i}") for i in range(6)]
    epochs = [0, 0, 3, 3, 2**32 - 1, 9]
    verdicts = [f.acceptance(w, epoch=e) for w, e in zip(works, epochs, strict=True)]
    withdrawn = f.acceptance(works[5], epoch=9, weight=0, revision=1)
    store.ingest([f.project(), *works, *verdicts, withdrawn], now=T0)
    assert store.accepted_epochs(f.pid()) == [0, 3, 2**32 - 1]
    assert store.accepted_epochs(f.pid(), start=1) == [3, 2**32 - 1]
    assert store.accepted_epochs(f.pid(), limit=2) == [0, 3]
    assert store.accepted_epochs(f.pid("alice", "other")) == []
    with pytest.raises(ValueError, match="limit"):
        store.accepted_epochs(f.pid(), limit=0)


def test_a_read_that_fails_while_ingesting_is_a_storage_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error on a read in the middle of an ingest reaches the caller as a StorageError
    naming the store, not as LevelDB's own error, and the store stays as it was."""
    store.ingest([f.project()], now=T0)
    before = everything(store)
    db = store._db

    class Handle:
        def __getattr__(self, name: str) -> object:
            return getattr(db, name)

        def get(self, key: bytes, *args: Any, **kwargs: Any) -> object:
            raise plyvel.IOError(b"IO error: read error")

    monkeypatch.setattr(store, "_handle", Handle())
    with pytest.raises(StorageError, match="read error") as caught:
        store.ingest([f.contribution()], now=T0 + 10)
    assert caught.value.path == store.path
    monkeypatch.undo()
    assert everything(store) == before


def test_acceptance_ids_and_get_many_read_what_acceptances_and_get_read(store: Store) -> None:
    # The audit reads pages of ids from the index and records many at a time; both must give
    # exactly what the record-by-record queries give.
    works = [f.contribution("bob", created_at=T0 + i, summary=f"work {i}") for i in range(7)]
    verdicts = [f.acceptance(w, epoch=i % 2, weight=i) for i, w in enumerate(works)]
    result = store.ingest([f.project(), *works, *verdicts], now=T0)
    assert len(result.added) == 15
    for epoch in (0, 1):
        cursor, by_record, by_id = None, [], []
        while True:
            page = store.acceptances(f.pid(), epoch, cursor=cursor, limit=2)
            id_page = store.acceptance_ids(f.pid(), epoch, cursor=cursor, limit=2)
            assert id_page == Page(tuple(ids(page)), page.cursor)
            by_record += ids(page)
            by_id += id_page.items
            if page.cursor is None:
                break
            cursor = page.cursor
        # Weight 0 (work 0) is not in force.
        assert by_id == by_record and len(by_id) == 3
    missing = b"\x00" * 32
    wanted = [works[3].id, missing, verdicts[5].id, works[3].id]
    assert store.get_many(wanted) == [store.get(rid) for rid in wanted]
    assert store.get_many(wanted)[1] is None and store.get_many([]) == []
