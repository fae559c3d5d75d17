"""The filter of stored ids: never a false "no", saved only by a clean close."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from storage import Store, keys
from storage.seen import BATCH_FROM, Seen
from tests.support import factories as f
from tests.support.factories import T0

CAPACITY = 1 << 16


def digest(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()


def test_no_false_negatives_as_it_grows() -> None:
    seen = Seen(CAPACITY)
    added = [digest(i) for i in range(4 * CAPACITY)]
    seen.update(added)
    assert len(seen) == len(added)
    assert all(rid in seen for rid in added)
    # Layers doubled twice: 1x, 2x, 4x the first capacity.
    assert seen.size == 7 * CAPACITY * 16 // 8
    others = [digest(10**9 + i) for i in range(20_000)]
    false_positives = sum(rid in seen for rid in others)
    # About 0.5% per full layer, and there are three.
    assert false_positives < 0.02 * len(others)


def test_dump_and_load() -> None:
    seen = Seen(CAPACITY)
    seen.update(digest(i) for i in range(CAPACITY + 5))
    copy = Seen.load(seen.dump())
    assert copy is not None and copy.dump() == seen.dump()
    assert all(digest(i) in copy for i in range(CAPACITY + 5))
    for broken in (b"", b"junk", seen.dump()[:-1], seen.dump() + b"\x00", seen.dump()[:20]):
        assert Seen.load(broken) is None


def test_saved_by_a_clean_close_only(tmp_path: Path) -> None:
    path = tmp_path / "s"
    posting, work_ = f.project(), f.contribution()
    with Store.open(path) as store:
        store.ingest([posting], now=T0)
    with Store.open(path) as store:
        # Loaded, and deleted from the database at once: it goes stale with the next write.
        assert store._db.get(keys.SEEN_KEY) is None
        assert posting.id in store._seen
        store.ingest([work_], now=T0)
        # A crash: the database is closed without the store saving its filter.
        store._handle.close()
        store._handle = None
    with Store.open(path) as store:
        # Rebuilt from the records.
        assert work_.id in store._seen and posting.id in store._seen
        assert store.ingest([work_, posting], now=T0).duplicates == (work_.id, posting.id)
        assert store.check() == ()


def test_a_filter_that_always_says_maybe_changes_nothing(store: Store) -> None:
    class Maybe(Seen):
        def __contains__(self, rid: object) -> bool:
            return True

        def probe(self, rids: Sequence[bytes]) -> list[bool]:
            return [True] * len(rids)

    store._seen = Maybe()
    work_ = f.contribution()
    result = store.ingest([f.project(), work_, work_], now=T0)
    assert result.added == (f.project().id, work_.id) and result.duplicates == (work_.id,)
    assert store.ingest([work_], now=T0).duplicates == (work_.id,)


def test_check_finds_a_filter_that_lost_an_id(store: Store) -> None:
    store.ingest([f.project()], now=T0)
    store._seen = Seen()
    assert any("missing from the filter" in p for p in store.check())


def test_one_layer_answers_like_several() -> None:
    # One layer is probed inline (the usual case), several through each layer: same answers.
    one, two = Seen(CAPACITY), Seen(CAPACITY // 4)
    added = [digest(i) for i in range(CAPACITY // 2)]
    one.update(added)
    two.update(added)
    assert one.size == CAPACITY * 16 // 8 and two.size > CAPACITY * 16 // 8 // 4
    assert all(rid in one for rid in added) and all(rid in two for rid in added)
    others = [digest(10**9 + i) for i in range(20_000)]
    assert sum(rid in one for rid in others) < 0.01 * len(others)


def layers(seen: Seen) -> list[tuple[int, int, bytes]]:
    return [(layer.capacity, layer.count, bytes(layer.bits)) for layer in seen._layers]


@pytest.mark.parametrize("width", [32, 12])
def test_the_batch_path_sets_and_reads_the_bits_of_the_one_at_a_time_path(width: int) -> None:
    rng = random.Random(width)
    one, many = Seen(1000), Seen(1000)
    for size in [BATCH_FROM, 700, 999, 1, 2500, BATCH_FROM - 1, 3000]:
        rids = [rng.randbytes(width) for _ in range(size)]
        # An id twice in one call sets its bits twice: both paths count it twice.
        rids += rids[:3]
        one.update(rids)
        many.update_many(rids)
        # Calls that fill a layer and go on in a new one of twice its capacity.
        assert layers(many) == layers(one)
    assert len(one._layers) > 2
    probes = [rng.randbytes(width) for _ in range(20_000)]
    assert many.probe(probes) == [rid in one for rid in probes]


def test_probe_never_says_no_for_an_id_it_holds() -> None:
    seen = Seen(CAPACITY)
    added = [digest(i) for i in range(3 * CAPACITY)]
    seen.update_many(added)
    assert len(seen._layers) == 2
    assert all(seen.probe(added))
    others = [digest(10**9 + i) for i in range(20_000)]
    assert sum(seen.probe(others)) < 0.02 * len(others)


def test_ids_the_batch_path_cannot_read_take_the_other_path() -> None:
    seen = Seen(CAPACITY)
    odd = [digest(i)[: 8 + i % 3] for i in range(200)]
    seen.update_many(odd)
    assert seen.probe(odd) == [True] * len(odd)
    assert all(rid in seen for rid in odd)


def test_maybe_stored_rules_out_what_is_not_stored(store: Store) -> None:
    posting = f.project()
    store.ingest([posting], now=T0)
    others = [digest(i) for i in range(BATCH_FROM * 2)]
    assert store.maybe_stored([posting.id]) == [True]
    assert store.maybe_stored([posting.id, *others])[0] is True
    # About 0.5% false positives: a handful at most of 128.
    assert sum(store.maybe_stored(others)) <= 3
    assert store.stored([posting.id, *others]) == {posting.id}
