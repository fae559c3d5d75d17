"""Order does not matter: any order and any split into calls gives the same store."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import Record
from protocol.validate import MAX_SKEW, latest
from storage import Store, keys
from tests import factories as f
from tests.factories import T0


def _pool() -> list[Record]:
    """Records that exercise every rule, revision and orphan path, valid or not.

    Rules that judge a record against the project revision in force (reviewers, closing) make
    the outcome depend on arrival order when a revision changes them (see docs/STORAGE.md), so
    here every revision of a project keeps its reviewers and closes after all its work.
    """
    carol = (f.pub("carol"),)
    w1 = f.contribution("bob", summary="w1")
    w2 = f.contribution("carol", summary="w2")
    w3 = f.contribution("dave", "bob", "code", summary="w3")
    w4 = f.contribution("bob", "bob", "code", summary="w4")
    ghost = f.contribution("bob", "alice", "ghost", summary="never posted")
    return [
        f.project(reviewers=carol),
        f.project(revision=1, title="Docs, revised", reviewers=carol),
        f.project(revision=1, title="Docs, revised again", reviewers=carol),
        f.project(revision=2, status="closed", created_at=T0 + 1000, reviewers=carol),
        f.project("bob", "code"),
        w1,
        w2,
        w3,
        w4,
        ghost,
        f.acceptance(w1, weight=10),
        f.acceptance(w1, "carol", revision=1, epoch=1, weight=5),
        f.acceptance(w1, revision=2, epoch=1, weight=0),
        f.acceptance(w2, epoch=0, weight=3),
        f.acceptance(w2, "carol", epoch=0, weight=4),
        f.acceptance(w3, "bob", epoch=2, weight=1),
        f.acceptance(w3, "mallory"),  # not authorized
        f.acceptance(w4, "alice"),  # alice does not own "code"
        f.acceptance(w3, project_id=f.pid()),  # names docs, but w3 is code's
        f.acceptance(ghost),  # waits forever
        f.epoch_root(),
        f.epoch_root("bob", "code", epoch=2),
        f.epoch_root("bob", project_id=f.pid()),  # not the owner
        f.profile("bob"),
        f.profile("bob", revision=1, name="Robert"),
        f.profile("carol", rate="a"),
        f.profile("carol", rate="b"),
        f.profile("dave", created_at=NOW + MAX_SKEW + 1),  # from the future
    ]


NOW = T0 + 1000
POOL = _pool()


def state(store: Store) -> tuple[dict[bytes, bytes], set[bytes]]:
    """Everything in the store, except orphans' arrival numbers, which follow arrival order."""
    rows = dict(store._db.iterator())
    arrivals = {k[9:] for k in rows if k[:1] == keys.ARRIVAL}
    return {k: v for k, v in rows.items() if k[:1] != keys.ARRIVAL}, arrivals


def ingest_in_calls(path: Path, records: list[Record], sizes: list[int]) -> Store:
    store = Store.open(path)
    start = 0
    for size in sizes:
        store.ingest(records[start : start + size], now=NOW)
        start += size
    store.ingest(records[start:], now=NOW)
    return store


def reference(records: list[Record]) -> tuple[dict[bytes, bytes], set[bytes]]:
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp)) as store:
        store.ingest(sorted(set(records), key=POOL.index), now=NOW)
        assert store.check() == ()
        return state(store)


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(st.sampled_from(POOL), max_size=40),
    sizes=st.lists(st.integers(0, 10), max_size=8),
)
def test_any_order_and_split_give_the_same_store(records: list[Record], sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = ingest_in_calls(Path(tmp), records, sizes)
        with store:
            assert store.check() == ()
            after = state(store)
            assert after == reference(records)
            # Ingesting everything again changes nothing.
            store.ingest(records, now=NOW)
            assert state(store) == after


def test_the_whole_pool(store: Store) -> None:
    result = store.ingest(reversed(POOL), now=NOW)
    assert len(result.rejected) == 5
    assert result.orphaned == (POOL[19].id, POOL[9].id)
    stored = [r for r in POOL if store.has(r.id)]
    assert len(stored) == len(POOL) - 5 - 2
    # What is in force is what protocol.validate.latest says of the stored records.
    for (kind, subject), record in latest(stored).items():
        found = {
            "project": store.project,
            "profile": store.profile,
            "acceptance": store.acceptance_of,
        }[kind](subject)
        assert found == record
    assert [r.id for r in store.acceptances(f.pid(), 0).items] == [
        max(POOL[13:15], key=lambda r: r.id).id
    ]
    assert store.acceptances(f.pid(), 1).items == ()
    assert store.check() == ()
