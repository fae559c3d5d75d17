"""Records that are not valid yet: held, and offered to the store again when they are, without I/O.

Theory of operation. A record may be dated at most MAX_SKEW (300 s) after the clock of the node
that checks it. Clocks differ, so a record that an honest peer found valid by its clock may be
ahead of ours: the peer did nothing wrong by passing it on, and the record will be valid here
soon. `judge` sorts a record from the future into one of three cases:

- within MAX_SKEW of `now`: valid now (`VALID`);
- at most HOLD_SKEW beyond that: not valid *yet* (`EARLY`): held, not an offence of the peer;
- further still: `TOO_FAR`: the peer's clock would have to run more than HOLD_SKEW ahead of ours
  for it to have found the record valid, so it could have known: an offence.

`Held` keeps early records until the node's clock makes them valid: `due(now)` returns those
whose time has come (with the peer that brought them), `next_wakeup(now)` when the next one
will; node/net/intake.py stores what `due` returns, as the node's ticker says. What is held is
bounded: at most MAX_HELD records and MAX_HELD_BYTES bytes, PEER_HELD records per peer. A record
that finds no room is not held (it is dropped, not an offence): sync brings it again later,
when it is valid here.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from enum import Enum

from protocol import Record
from protocol.validate import MAX_SKEW

# How far beyond MAX_SKEW a record may be dated and still be held rather than held against the
# peer: nodes whose clocks differ by less than this never strike each other over a timestamp.
HOLD_SKEW = 600.0
MAX_HELD = 2_000
MAX_HELD_BYTES = 16 * 1024 * 1024
PEER_HELD = 256


class Timing(Enum):
    """Where a record's date stands against the node's clock."""

    VALID = "valid"
    EARLY = "early"
    TOO_FAR = "too far"


def judge(record: Record, now: float) -> Timing:
    """Returns whether `record` is valid now, early (to hold), or too far in the future."""
    ahead = record.body.created_at - now
    if ahead <= MAX_SKEW:
        return Timing.VALID
    if ahead <= MAX_SKEW + HOLD_SKEW:
        return Timing.EARLY
    return Timing.TOO_FAR


def valid_from(record: Record) -> float:
    """The time from which `record` is valid by the clock rule."""
    return float(record.body.created_at - MAX_SKEW)


@dataclass
class Held:
    """Early records, until they are valid; see the module's theory of operation."""

    _queue: list[tuple[float, bytes]] = field(default_factory=list, init=False)
    _records: dict[bytes, tuple[str, Record]] = field(default_factory=dict, init=False)
    _per_peer: dict[str, int] = field(default_factory=dict, init=False)
    _bytes: int = field(default=0, init=False)

    def hold(self, peer: str, record: Record) -> bool:
        """Holds an early `record` that `peer` brought; returns False if there was no room."""
        if record.id in self._records:
            return True
        size = len(record.raw)
        if (
            len(self._records) >= MAX_HELD
            or self._bytes + size > MAX_HELD_BYTES
            or self._per_peer.get(peer, 0) >= PEER_HELD
        ):
            return False
        self._records[record.id] = (peer, record)
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
        self._bytes += size
        heapq.heappush(self._queue, (valid_from(record), record.id))
        return True

    def due(self, now: float) -> list[tuple[str, Record]]:
        """Returns the held records that are valid at `now`, with their peers, and lets them go."""
        out: list[tuple[str, Record]] = []
        while self._queue and self._queue[0][0] <= now:
            _, rid = heapq.heappop(self._queue)
            peer, record = self._records.pop(rid)
            left = self._per_peer[peer] - 1
            if left:
                self._per_peer[peer] = left
            else:
                del self._per_peer[peer]
            self._bytes -= len(record.raw)
            out.append((peer, record))
        return out

    def next_wakeup(self, now: float) -> float:
        """When the next held record becomes valid (inf: none is held)."""
        return self._queue[0][0] if self._queue else float("inf")

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, rid: object) -> bool:
        return rid in self._records
