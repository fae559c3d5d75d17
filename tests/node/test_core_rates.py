"""Per-peer request rates (node/net/core/rates.py), on trio's virtual clock."""

from __future__ import annotations

import trio
import trio.testing

from node.net.core.rates import PeerRates


def test_a_burst_then_the_rate() -> None:
    rates = PeerRates(rate=1.0, burst=3.0)
    assert [rates.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert rates.allow("b", 0.0)  # each peer has its own bucket
    assert not rates.allow("a", 0.5)
    assert rates.allow("a", 1.6) and not rates.allow("a", 1.6)


def test_the_table_is_bounded() -> None:
    rates = PeerRates(rate=1.0, burst=1.0, max_peers=2)
    assert rates.allow("a", 0.0) and rates.allow("b", 0.0)
    # Full, and no bucket has refilled: a third peer waits.
    assert not rates.allow("c", 0.5)
    assert len(rates) == 2
    # Once buckets refilled they are the same as none, and make room.
    assert rates.allow("c", 2.0)
    assert len(rates) == 1


async def test_on_the_virtual_clock(autojump_clock: trio.testing.MockClock) -> None:
    rates = PeerRates(rate=0.5, burst=2.0)
    allowed: list[float] = []
    start = trio.current_time()
    while len(allowed) < 5:
        if rates.allow("peer", trio.current_time()):
            allowed.append(trio.current_time() - start)
        else:
            await trio.sleep(0.25)
    # Two at once, then one every 2 s (0.5 per second), in virtual time.
    assert allowed == [0.0, 0.0, 2.0, 4.0, 6.0]
