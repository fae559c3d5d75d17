"""Per-peer request rates, decided without I/O: a token bucket per peer, bounded in memory.

Theory of operation. Each peer may make `burst` requests at once, then `rate` per second on
average (`quotas.Bucket`). The caller passes `now` (trio's clock in the node, any number in
tests). At most `max_peers` buckets are kept: when a new peer comes and the table is full, the
buckets that have refilled (the same as none) are forgotten; if none has, the new peer is
refused until one does, so that many peer ids cannot grow the table without end.
"""

from __future__ import annotations

from collections.abc import Hashable

from node.net.core.quotas import Bucket

MAX_PEERS = 1024


class PeerRates:
    """Token buckets of request rates, one per peer."""

    def __init__(self, rate: float, burst: float, *, max_peers: int = MAX_PEERS) -> None:
        self.rate, self.burst, self.max_peers = rate, burst, max_peers
        self._buckets: dict[Hashable, Bucket] = {}

    def allow(self, peer: Hashable, now: float) -> bool:
        """Takes one request of `peer` at `now`; returns whether it is within its rate."""
        bucket = self._buckets.get(peer)
        if bucket is None:
            if len(self._buckets) >= self.max_peers:
                self._buckets = {p: b for p, b in self._buckets.items() if not b.full(now)}
                if len(self._buckets) >= self.max_peers:
                    return False
            bucket = self._buckets[peer] = Bucket(self.rate, self.burst, self.burst, now)
        return bucket.take(now)

    def forget(self, peer: Hashable) -> None:
        self._buckets.pop(peer, None)

    def __len__(self) -> int:
        return len(self._buckets)
