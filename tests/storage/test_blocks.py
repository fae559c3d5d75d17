"""Block summaries of topics: every range's count, id sum and items at offsets, as a brute-force
scan of the index gives them, while records arrive in any order and blocks grow and split."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.net.serve import StoreItems
from protocol import Record
from protocol.reconcile import MAX_BOUND, MIN_BOUND, Reconciler, SortedItems
from protocol.topics import META
from storage import Store, blocks
from tests.support import factories as f

NOW = f.T0 + 10**6
# Profiles of 200 keys, each at a few revisions: 600 records on META with spread-out times.
RECORDS = [
    f.profile(f"k{i}", created_at=f.T0 + (i * 7919 + r * 104729) % 100_000, revision=r)
    for i in range(200)
    for r in range(3)
]


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blocks, "BLOCK", 8)


@pytest.fixture
def store(tmp_path: Path, small_blocks: None) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as opened:
        yield opened


def items_of(store: Store) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    cursor = None
    while True:
        page = store.topic_ids(META, cursor=cursor)
        out += page.items
        if page.cursor is None:
            return out
        cursor = page.cursor


def brute(
    items: list[tuple[int, bytes]], lo: tuple[int, bytes] | None, hi: tuple[int, bytes] | None
) -> list[tuple[int, bytes]]:
    return [i for i in items if (lo is None or i >= lo) and (hi is None or i < hi)]


def check_ranges(store: Store, rng: random.Random, rounds: int = 60) -> None:
    items = items_of(store)
    points = [None, (f.T0 + 50_000, b""), (0, b""), *(rng.choice(items) for _ in items[:10])]
    for _ in range(rounds):
        lo, hi = rng.choice(points), rng.choice(points)
        if lo is not None and hi is not None and hi < lo:
            lo, hi = hi, lo
        inside = brute(items, lo, hi)
        total = sum(int.from_bytes(i, "little") for _, i in inside) % 2**256
        assert store.topic_range(META, lo, hi) == (len(inside), total)
        if inside:
            offsets = sorted(rng.sample(range(len(inside)), min(5, len(inside))))
            assert store.topic_items_at(META, offsets, lo, hi) == [inside[o] for o in offsets]
            with pytest.raises(IndexError):
                store.topic_items_at(META, [len(inside)], lo, hi)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 6))
def test_ranges_match_the_index_while_records_arrive(
    tmp_path_factory: pytest.TempPathFactory, rng: random.Random, batches: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(blocks, "BLOCK", 8)
        records: list[Record] = rng.sample(RECORDS, len(RECORDS))
        with Store.open(tmp_path_factory.mktemp("s") / "store") as store:
            # Some records before the first question (built by a scan), the rest after (added).
            first = rng.randrange(len(records))
            store.ingest(records[:first], now=NOW)
            check_ranges(store, rng, 10)
            rest = records[first:]
            for k in range(batches):
                store.ingest(
                    rest[k * len(rest) // batches : (k + 1) * len(rest) // batches], now=NOW
                )
                check_ranges(store, rng, 10)
            built = store._blocks[META]
            assert sum(built.counts) == len(RECORDS) == store.topic_count(META)
            assert all(c <= 2 * blocks.BLOCK for c in built.counts)


def test_reconciliation_over_the_store_equals_one_over_memory(store: Store) -> None:
    rng = random.Random(5)
    mine = rng.sample(RECORDS, 450)
    theirs = rng.sample(RECORDS, 450)
    store.ingest(mine, now=NOW)
    ours = StoreItems(store, META)
    memory = SortedItems(items_of(store))
    assert ours.count(MIN_BOUND, MAX_BOUND) == len(memory) == 450
    assert ours.fingerprint(MIN_BOUND, MAX_BOUND) == memory.fingerprint(MIN_BOUND, MAX_BOUND)
    assert ours.bounds(MIN_BOUND, MAX_BOUND, [100, 200, 449]) == memory.bounds(
        MIN_BOUND, MAX_BOUND, [100, 200, 449]
    )
    # A whole reconciliation with a peer holding another sample finds exactly the difference.
    peer = Reconciler(SortedItems((r.body.created_at, r.id) for r in theirs))
    alice = Reconciler(ours)
    have: set[bytes] = set()
    need: set[bytes] = set()
    message: bytes | None = alice.initiate()
    while message is not None:
        step = alice.reconcile(peer.respond(message))
        have |= set(step.have)
        need |= set(step.need)
        message = step.next
    assert have == {r.id for r in mine} - {r.id for r in theirs}
    assert need == {r.id for r in theirs} - {r.id for r in mine}
