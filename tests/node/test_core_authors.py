"""Per-author rations without sockets: a key's burst and rate, its byte budget and total, the
newcomers' pool that fresh keys share, trust that grows with accepted work, and bounded memory.
Time is passed in (virtual seconds from T0), as the intake passes its clock's."""

from __future__ import annotations

import hashlib

import trio
import trio.testing

from node.net.core import authors as authors_module
from node.net.core.authors import (
    RATIONED_TTL,
    STANDING_TTL,
    Authors,
    Lately,
    Limits,
    Rationed,
)
from protocol.stamp import mint, work

T0 = 1_700_000_000.0
A, B = b"a" * 32, b"b" * 32


def admitted(authors: Authors, author: bytes, n: int, now: float, *, size: int = 100,
             standing: int = 0) -> int:  # fmt: skip
    return sum(authors.admit(author, size, standing, now) for _ in range(n))


def test_a_fresh_key_gets_its_burst_then_its_rate() -> None:
    authors = Authors(Limits(rate=2.0, burst=10, newcomers_burst=1000, newcomers_rate=1000))
    assert admitted(authors, A, 15, T0) == 10
    # Half a second refills one record at 2/s; 0.4 s more is not yet another.
    assert admitted(authors, A, 3, T0 + 0.5) == 1
    assert admitted(authors, A, 3, T0 + 0.9) == 0
    assert admitted(authors, A, 3, T0 + 1.0) == 1
    # Another key has its own ration.
    assert admitted(authors, B, 12, T0 + 1.0) == 10


def test_bytes_and_the_total_bound_a_key_of_large_records() -> None:
    limits = Limits(byte_burst=1000, byte_rate=100, total=1500, newcomers_burst=1e6)
    authors = Authors(limits)
    assert admitted(authors, A, 5, T0, size=400) == 2  # 800 of 1000 bytes
    assert admitted(authors, A, 5, T0 + 100, size=400) == 1  # refilled, but 1200 + 400 > 1500
    assert authors.stored(A) == 1200
    assert admitted(authors, A, 5, T0 + 10_000, size=400) == 0  # the total does not refill
    assert admitted(authors, A, 1, T0 + 10_000, size=300) == 1


def test_fresh_keys_share_one_pool_however_many_there_are() -> None:
    authors = Authors(Limits(burst=50, newcomers_burst=100, newcomers_rate=10))
    keys = [i.to_bytes(32, "big") for i in range(1000)]
    taken = sum(admitted(authors, k, 5, T0) for k in keys)
    assert taken == 100
    # The pool refills at its own rate, not per key.
    assert sum(admitted(authors, k, 1, T0 + 1.0) for k in keys) == 10


def test_a_key_with_accepted_work_is_not_held_by_the_newcomers() -> None:
    authors = Authors(Limits(burst=5, newcomers_burst=3, newcomers_rate=0.001))
    assert admitted(authors, B, 10, T0) == 3  # the pool is empty now
    # One accepted contribution: twice the ration, and no part of the pool.
    assert admitted(authors, A, 20, T0, standing=1) == 10


def test_trust_grows_with_standing_up_to_its_cap() -> None:
    authors = Authors(Limits(burst=5, trust_cap=3, newcomers_burst=1e6))
    assert [authors.trust(s) for s in (0, 1, 3, 50)] == [1, 2, 4, 4]
    assert admitted(authors, A, 100, T0, standing=50) == 20


def test_a_key_that_gains_standing_gets_the_larger_ration_at_once() -> None:
    authors = Authors(Limits(burst=5, rate=0.001, newcomers_burst=1e6))
    assert admitted(authors, A, 10, T0) == 5
    assert admitted(authors, A, 10, T0 + 1, standing=1) == 5  # 10 - 5 already taken


def test_standing_is_remembered_for_a_while() -> None:
    authors = Authors()
    assert authors.standing(A, T0) is None
    authors.learn(A, 7, T0)
    assert authors.standing(A, T0 + STANDING_TTL - 1) == 7
    assert authors.standing(A, T0 + STANDING_TTL) is None


def test_memory_is_bounded_and_refilled_authors_are_forgotten_first(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(authors_module, "MAX_AUTHORS", 3)
    authors = Authors(Limits(burst=2, rate=1.0, newcomers_burst=1e6, newcomers_rate=1e6))
    for key in (b"1", b"2", b"3"):
        assert authors.admit(key, 10, 0, T0)
    # Full, and nobody has refilled: a fourth author waits.
    assert not authors.admit(b"4", 10, 0, T0)
    # A second later every bucket is full again: they are forgotten, the newcomer comes in.
    assert authors.admit(b"4", 10, 0, T0 + 1.0)
    assert len(authors._authors) == 1


def test_a_flooding_key_gets_its_rate_over_virtual_time() -> None:
    """Driven by trio's MockClock: a key that offers ten records a second for a minute gets its
    burst and then exactly one a second."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    limits = Limits(rate=1.0, burst=20, newcomers_burst=1e6, newcomers_rate=1e6)

    async def flood() -> int:
        authors = Authors(limits)
        taken = 0
        start = trio.current_time()
        while trio.current_time() - start < 60:
            taken += authors.admit(A, 100, 0, T0 + trio.current_time() - start)
            await trio.sleep(0.1)
        return taken

    result: list[int] = []

    async def main() -> None:
        result.append(await flood())

    trio.run(main, clock=clock)
    # Offers at 0, 0.1, ... 59.9 s: the burst, then 59 refilled.
    assert result == [20 + 59]


def test_room_charges_nothing_and_knows_only_authors_it_has_looked_up() -> None:
    authors = Authors(Limits(burst=2, rate=0.001, newcomers_burst=1e6))
    # Unknown standing: only `admit`, after the signature check, may refuse.
    assert authors.room([(A, 100)] * 5, T0) == [True] * 5
    authors.learn(A, 0, T0)
    # Two fit in the burst, counting the batch's own; asking charges nothing.
    assert authors.room([(A, 100)] * 3, T0) == [True, True, False]
    assert authors.room([(A, 100)] * 3, T0) == [True, True, False]
    assert admitted(authors, A, 1, T0) == 1
    assert authors.room([(A, 100), (B, 100), (A, 100)], T0) == [True, True, False]


def test_room_sees_the_newcomers_pool_drain_within_a_batch() -> None:
    authors = Authors(Limits(newcomers_burst=3, newcomers_rate=0.001))
    keys = [i.to_bytes(32, "big") for i in range(5)]
    for key in keys:
        authors.learn(key, 0, T0)
    authors.learn(B, 1, T0)
    assert authors.room([(k, 100) for k in keys], T0) == [True, True, True, False, False]
    assert sum(authors.admit(k, 100, 0, T0) for k in keys) == 3
    assert authors.room([(keys[0], 100), (B, 100)], T0) == [False, True]


def test_ids_stored_lately_are_remembered_for_a_while_and_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(authors_module, "MAX_LATELY", 3)
    lately = Lately(30.0)
    ids = [bytes([i]) * 32 for i in range(5)]
    lately.add(ids[:2], T0)
    assert lately.recent(ids[0], T0 + 29)
    assert not lately.recent(ids[0], T0 + 30)
    assert not lately.recent(ids[4], T0)
    lately.add(ids[2:], T0 + 1)
    # The oldest gave way to the newest.
    assert len(lately) == 3
    assert not lately.recent(ids[0], T0 + 1) and not lately.recent(ids[1], T0 + 1)
    assert all(lately.recent(rid, T0 + 1) for rid in ids[2:])


def _ids(n: int, salt: bytes) -> list[bytes]:
    return [hashlib.sha256(salt + i.to_bytes(4, "big")).digest() for i in range(n)]


def test_a_floods_rationed_ids_are_all_remembered() -> None:
    """The table of rationed ids forgot the oldest past 262,144: a peer holding a million
    records past their rations had sync fetch the forgotten ones again at every round."""
    rationed = Rationed()
    flood = _ids(400_000, b"flood")
    rationed.add(flood, T0)
    assert all(rationed.recent(rid, T0 + 1) for rid in flood)
    # Few others look rationed (a false positive only delays a record).
    others = _ids(100_000, b"honest")
    assert sum(rationed.recent(rid, T0 + 1) for rid in others) < 300
    # Two generations of at most MAX_RATIONED ids: a few MiB, whatever comes.
    assert len(rationed) == 400_000


def test_rationed_ids_are_remembered_for_half_to_all_of_the_ttl() -> None:
    rationed = Rationed(capacity=1000)
    early, late = _ids(10, b"early"), _ids(10, b"late")
    rationed.add(early, T0)
    rationed.add(late, T0 + RATIONED_TTL / 2 - 1)
    # Until ttl/2 after it was added at least, and ttl at most.
    assert all(rationed.recent(rid, T0 + RATIONED_TTL - 1) for rid in early + late)
    assert not any(rationed.recent(rid, T0 + RATIONED_TTL) for rid in early + late)
    # A new generation begins ttl/2 after the last; the one before it is kept, no more.
    newer = _ids(10, b"newer")
    rationed.add(newer, T0 + RATIONED_TTL / 2)
    assert all(rationed.recent(rid, T0 + RATIONED_TTL - 1) for rid in early + late + newer)
    rationed.add(_ids(1, b"newest"), T0 + RATIONED_TTL)
    assert not any(rationed.recent(rid, T0 + RATIONED_TTL) for rid in early + late)
    assert all(rationed.recent(rid, T0 + RATIONED_TTL) for rid in newer)


def test_rationed_ids_past_the_capacity_start_a_generation_and_the_oldest_go() -> None:
    rationed = Rationed(capacity=100)
    batches = [_ids(100, b"%d" % k) for k in range(3)]
    for batch in batches:
        rationed.add(batch, T0)
    assert len(rationed) == 200
    assert all(rationed.recent(rid, T0) for rid in batches[1] + batches[2])
    assert sum(rationed.recent(rid, T0) for rid in batches[0]) < 5


def test_without_proof_of_work_fresh_keys_share_the_small_unstamped_pool() -> None:
    """Defect 6: a new identity costs nothing. With a difficulty, free keys cannot starve the
    newcomers who minted theirs."""
    limits = Limits(difficulty=8, newcomers_burst=5, unstamped_burst=2, unstamped_rate=0.001)
    authors = Authors(limits)
    counter = iter(range(10**6))
    stamped = [bytes(mint(8, seed=lambda: bytes([next(counter) % 256]) * 32).verify_key)]
    free = [i.to_bytes(32, "big") for i in range(100)]
    free = [k for k in free if work(k) < 8][:50]
    assert not authors.stamped(free[0]) and authors.stamped(stamped[0])
    assert sum(authors.admit(k, 100, 0, T0) for k in free) == 2
    assert admitted(authors, stamped[0], 10, T0) == 5
    # A key with accepted work needs no stamp.
    assert admitted(authors, free[0], 3, T0, standing=1) == 3
    assert authors.room([(free[1], 100), (stamped[0], 100)], T0) == [True, True]
    authors.learn(free[1], 0, T0)
    authors.learn(stamped[0], 0, T0)
    assert authors.room([(free[1], 100), (stamped[0], 100)], T0) == [False, False]


def test_a_refund_gives_back_what_a_record_the_node_did_not_keep_cost() -> None:
    """A write that failed (a full disk) or an orphan left out costs its author nothing: the
    records are taken when they come again, at once."""
    limits = Limits(burst=10, rate=0.001, byte_burst=1000, total=1000, newcomers_burst=10)
    authors = Authors(limits)
    assert admitted(authors, A, 10, T0, size=100) == 10
    assert admitted(authors, A, 1, T0, size=100) == 0
    for _ in range(10):
        authors.refund(A, 100, 0, T0)
    assert authors.stored(A) == 0
    # The author's records, bytes and total and the newcomers' pool all came back.
    assert admitted(authors, A, 10, T0, size=100) == 10
    # Never above the burst, and an author never charged is left alone.
    for _ in range(20):
        authors.refund(A, 100, 0, T0)
    authors.refund(B, 100, 0, T0)
    assert admitted(authors, A, 20, T0, size=10) == 10
