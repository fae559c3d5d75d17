"""Per-peer quotas on what a peer may make the node do, decided without I/O.

Theory of operation. A peer that sends what the node cannot refuse outright (records it has
already, records whose parents it has not seen) costs the node work or room without breaking a
rule. `Quotas` gives each peer an allowance of such things, takes `now` from its caller, and
says when a peer has gone past it: that is an offence (a strike in the peer book,
node/net/core/peers.py), and what went past is not taken.

Rules:
- Replays. A gossip batch whose records are all stored already costs the node the hashing of
  its records and nothing more, but an honest forwarder sends one now and then (a batch we got
  by sync first). Each peer has a bucket of DUPLICATE_BURST such batches, refilled at
  DUPLICATE_RATE per second; a replay with the bucket empty is an offence.
- Orphans. A record whose parent the node has not seen waits in the store's bounded orphan area.
  Orphans are charged to the peer that brought them until they leave the area (their parent
  came, or they were dropped): a peer may have at most PEER_ORPHANS orphans and
  PEER_ORPHAN_BYTES bytes waiting. Orphans beyond that are not taken. Whether that is an
  offence depends on how long the peer's orphans have waited: an honest peer passes on records
  whose parents it has and we do not have yet (we joined a moment ago and are still syncing),
  and those orphans leave the area as soon as our sync brings the parents. Only a peer whose
  oldest orphan has waited ORPHAN_GRACE seconds or more, so that its orphans look like ones
  nobody can complete, commits an offence by sending more. Orphans beyond the room left in the
  area as a whole (its bounds, less what is waiting) are not taken either, but that is nobody's
  offence: the orphans already waiting are never pushed out by newcomers, and what was not
  taken comes again by sync once its parent is here.
- Memory. Buckets are kept for at most MAX_BUCKETS peers (one that has refilled is the same as
  none, and is forgotten first); orphans charged are bounded by the orphan area itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

DUPLICATE_BURST = 10.0
DUPLICATE_RATE = 0.1
PEER_ORPHANS = 500
PEER_ORPHAN_BYTES = 4 * 1024 * 1024
ORPHAN_GRACE = 120.0
MAX_BUCKETS = 1024


@dataclass(slots=True)
class Bucket:
    """A token bucket: `burst` tokens, refilled at `rate` per second."""

    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Takes `cost` tokens if there are that many; returns whether it did."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def full(self, now: float) -> bool:
        return self.tokens + max(0.0, now - self.at) * self.rate >= self.burst


@dataclass
class Quotas:
    """Allowances per peer; see the module's theory of operation.

    Args:
        max_orphans: the orphan area's bound on records (the store's).
        max_orphan_bytes: its bound on bytes.
    """

    max_orphans: int = 10_000
    max_orphan_bytes: int = 64 * 1024 * 1024
    _replays: dict[str, Bucket] = field(default_factory=dict, init=False)
    # Orphans charged: id -> (peer, size, since when); and per peer, (count, bytes).
    _orphans: dict[bytes, tuple[str, int, float]] = field(default_factory=dict, init=False)
    _charged: dict[str, tuple[int, int]] = field(default_factory=dict, init=False)

    def replay(self, peer: str, now: float) -> bool:
        """`peer` sent a batch of records that are all stored here; returns True if that went
        past its allowance (an offence)."""
        bucket = self._replays.get(peer)
        if bucket is None:
            if len(self._replays) >= MAX_BUCKETS:
                self._replays = {p: b for p, b in self._replays.items() if not b.full(now)}
            bucket = self._replays[peer] = Bucket(
                DUPLICATE_RATE, DUPLICATE_BURST, DUPLICATE_BURST, now
            )
        return not bucket.take(now)

    def orphan_room(
        self, peer: str, sizes: Sequence[int], waiting: tuple[int, int], now: float
    ) -> tuple[int, bool]:
        """How many of the would-be orphans of sizes `sizes` (in order) `peer` may park now.

        Args:
            peer: who brought them.
            sizes: their sizes in bytes.
            waiting: the orphans waiting in the area now, (count, bytes).
            now: the time.

        Returns:
            How many of the first of them may be parked (the rest are not taken), and whether
            going past its quota was an offence of the peer (its orphans are stale).
        """
        count, size = self._charged.get(peer, (0, 0))
        area_count, area_bytes = waiting
        taken = 0
        for length in sizes:
            if count + 1 > PEER_ORPHANS or size + length > PEER_ORPHAN_BYTES:
                return taken, self._stale(peer, now)
            if area_count + 1 > self.max_orphans or area_bytes + length > self.max_orphan_bytes:
                return taken, False
            count, size = count + 1, size + length
            area_count, area_bytes = area_count + 1, area_bytes + length
            taken += 1
        return taken, False

    def parked(self, peer: str, orphans: Iterable[tuple[bytes, int]], now: float) -> None:
        """These orphans (id, size) of `peer` now wait in the area: they are charged to it."""
        count, size = self._charged.get(peer, (0, 0))
        for rid, length in orphans:
            if rid in self._orphans:
                continue
            self._orphans[rid] = (peer, length, now)
            count, size = count + 1, size + length
        if count:
            self._charged[peer] = (count, size)

    def settled(self, ids: Iterable[bytes]) -> None:
        """These orphans left the area (stored, dropped or evicted): their peers are let off."""
        for rid in ids:
            charged = self._orphans.pop(rid, None)
            if charged is None:
                continue
            peer, length, _ = charged
            count, size = self._charged[peer]
            if count <= 1:
                del self._charged[peer]
            else:
                self._charged[peer] = (count - 1, size - length)

    def orphans_of(self, peer: str) -> tuple[int, int]:
        """The orphans charged to `peer`: (count, bytes)."""
        return self._charged.get(peer, (0, 0))

    def _stale(self, peer: str, now: float) -> bool:
        """Whether the oldest orphan charged to `peer` has waited ORPHAN_GRACE or more."""
        oldest = min((t for p, _, t in self._orphans.values() if p == peer), default=now)
        return now - oldest >= ORPHAN_GRACE
