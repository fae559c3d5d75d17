"""Per-peer quotas and held records without sockets: replay allowances, orphan quotas that never
push out others' orphans, records from the near future held until valid; and the held records
under their ticker on MockClock, released at their exact virtual times."""

from __future__ import annotations

from collections.abc import Sequence

import trio
import trio.testing

from node.net.core.held import HOLD_SKEW, MAX_HELD, PEER_HELD, Held, Timing, judge
from node.net.core.quotas import (
    DUPLICATE_BURST,
    DUPLICATE_RATE,
    ORPHAN_GRACE,
    PEER_ORPHAN_BYTES,
    PEER_ORPHANS,
    Quotas,
)
from node.net.core.ticker import Ticker
from protocol import Record
from protocol.validate import MAX_SKEW
from tests.support import factories as f

T0 = float(f.T0)


def test_replays_are_allowed_up_to_a_burst_then_at_a_rate() -> None:
    quotas = Quotas()
    offences = [quotas.replay("a", T0) for _ in range(int(DUPLICATE_BURST) + 2)]
    assert offences == [False] * int(DUPLICATE_BURST) + [True, True]
    # Another peer has its own allowance.
    assert not quotas.replay("b", T0)
    # One more is allowed once the bucket refilled by one.
    assert quotas.replay("a", T0 + 0.5 / DUPLICATE_RATE)
    assert not quotas.replay("a", T0 + 1.6 / DUPLICATE_RATE)


def test_a_peer_parks_orphans_up_to_its_quota_and_is_let_off_as_they_leave() -> None:
    quotas = Quotas(max_orphans=10_000)
    room, over = quotas.orphan_room("a", [100] * (PEER_ORPHANS + 5), (0, 0), T0)
    assert (room, over) == (PEER_ORPHANS, False)  # nothing of a's has waited yet
    ids = [i.to_bytes(32, "big") for i in range(room)]
    quotas.parked("a", [(rid, 100) for rid in ids], T0)
    quotas.parked("a", [(ids[0], 100)], T0 + 1)  # waiting already: not charged twice
    assert quotas.orphans_of("a") == (PEER_ORPHANS, PEER_ORPHANS * 100)
    full = (room, room * 100)
    # Past the quota: refused; an offence only once a's orphans have waited the grace period
    # (an honest peer's orphans leave as soon as our sync brings their parents).
    assert quotas.orphan_room("a", [100], full, T0 + ORPHAN_GRACE - 1) == (0, False)
    assert quotas.orphan_room("a", [100], full, T0 + ORPHAN_GRACE) == (0, True)
    # Others are not held to a's quota.
    assert quotas.orphan_room("b", [100, 100], full, T0 + ORPHAN_GRACE) == (2, False)
    # Released, discarded or evicted: a may park again.
    quotas.settled(ids[:10])
    assert quotas.orphans_of("a") == (PEER_ORPHANS - 10, (PEER_ORPHANS - 10) * 100)
    assert quotas.orphan_room("a", [100] * 20, full, T0 + ORPHAN_GRACE) == (10, True)
    quotas.settled(ids)
    assert quotas.orphans_of("a") == (0, 0)


def test_a_peer_quota_counts_bytes_too() -> None:
    quotas = Quotas()
    big = 60_000
    room, over = quotas.orphan_room("a", [big] * 100, (0, 0), T0)
    assert not over and room == PEER_ORPHAN_BYTES // big


def test_a_full_orphan_area_refuses_newcomers_without_blame() -> None:
    """Newcomers never push out orphans waiting already; a peer within its quota is not to blame
    for the area being full (others filled it)."""
    quotas = Quotas(max_orphans=1000, max_orphan_bytes=10**9)
    assert quotas.orphan_room("a", [100] * 10, (995, 99_500), T0) == (5, False)
    assert quotas.orphan_room("a", [100], (1000, 100_000), T0) == (0, False)
    quotas = Quotas(max_orphans=1000, max_orphan_bytes=1000)
    assert quotas.orphan_room("a", [300] * 3, (0, 500), T0) == (1, False)


def early(seconds: int) -> Record:
    return f.profile(f"early{seconds}", created_at=f.T0 + seconds)


def test_records_from_the_future_are_valid_early_or_too_far() -> None:
    assert judge(early(MAX_SKEW), T0) is Timing.VALID
    assert judge(early(MAX_SKEW + 1), T0) is Timing.EARLY
    assert judge(early(int(MAX_SKEW + HOLD_SKEW)), T0) is Timing.EARLY
    assert judge(early(int(MAX_SKEW + HOLD_SKEW) + 1), T0) is Timing.TOO_FAR
    # A clock 10 s behind the forwarder's holds what the forwarder found valid.
    assert judge(early(298), T0 - 10) is Timing.EARLY


def test_held_records_are_released_when_valid_and_bounded() -> None:
    held = Held()
    records = [early(MAX_SKEW + s) for s in (30, 10, 20)]
    assert all(held.hold("a", r) for r in records)
    assert held.hold("a", records[0])  # held already
    assert len(held) == 3
    assert held.next_wakeup(T0) == T0 + 10
    assert held.due(T0 + 9) == []
    assert [r.id for _, r in held.due(T0 + 20)] == [records[1].id, records[2].id]
    assert held.due(T0 + 30) == [("a", records[0])]
    assert len(held) == 0 and held.next_wakeup(T0) == float("inf")
    # Per peer, and in all.
    many = [
        f.profile("x", created_at=f.T0 + MAX_SKEW + 5, revision=i) for i in range(PEER_HELD + 1)
    ]
    taken = [held.hold("flooder", r) for r in many]
    assert taken == [True] * PEER_HELD + [False]
    assert held.hold("honest", early(MAX_SKEW + 7))
    assert MAX_HELD > PEER_HELD


async def test_held_records_on_their_ticker_are_released_on_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The held records under the node's ticker: each is handed back when the clock reaches
    created_at - MAX_SKEW, to the virtual second."""
    held = Held()
    start = trio.current_time()

    def clock() -> float:
        return T0 + trio.current_time() - start

    released: list[tuple[float, bytes]] = []

    def apply(due: Sequence[tuple[str, Record]]) -> None:
        released.extend((round(clock() - T0, 6), r.id) for _, r in due)

    records = [early(MAX_SKEW + s) for s in (5, 60, 600)]
    ticker = Ticker(held.due, held.next_wakeup, apply, clock)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker.run)
        for record in records:
            held.hold("a", record)
        ticker.poke()
        await trio.sleep(1000)
        nursery.cancel_scope.cancel()
    assert released == [(5.0, records[0].id), (60.0, records[1].id), (600.0, records[2].id)]
