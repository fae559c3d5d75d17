"""Block summaries of a topic's index: the count and id sum of every run of about BLOCK keys.

Range-based set reconciliation (`protocol.reconcile`) asks a topic for the count, the
fingerprint (the id sum with the count) and the items at given offsets of arbitrary ranges.
Scanning the topic's index for each costs O(n) reads per range, and a reconciliation asks about
ranges that tile the whole topic, level after level: a node serving sync for a topic of a
million records read it tens of times over. With the index cut into blocks of consecutive keys,
each with its count and id sum in memory, a range costs the sums of the whole blocks it covers
plus the scan of at most two partial blocks: O(n / BLOCK + BLOCK) instead of O(n).

A block is the keys from its edge up to the next block's edge; the first edge is b"", below
every key. Keys here are a topic index key without the topic prefix: created_at (8 bytes, big
endian) then the record id, which orders like the (created_at, id) items of reconciliation.
The store builds a topic's blocks by one scan the first time the topic is asked about, then
adds every key it stores (under its lock, after the write); a block that grows past
2 * BLOCK keys is read again and split. Nothing is stored on disk.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

# Keys per block when built or split; a block is split when it holds more than twice this.
BLOCK = 1024

MODULUS = 2**256


def id_value(key: bytes) -> int:
    """Returns the id in an index key (created_at, then id) as reconciliation sums it."""
    return int.from_bytes(key[8:], "little")


class Blocks:
    """The blocks of one topic: edges, and the count and id sum of each."""

    def __init__(self) -> None:
        self.edges: list[bytes] = [b""]
        self.counts: list[int] = [0]
        self.sums: list[int] = [0]

    @classmethod
    def build(cls, keys: Iterable[bytes]) -> Blocks:
        """Returns the blocks of a topic whose index keys (in order) are `keys`."""
        blocks = cls()
        edges, counts, sums = blocks.edges, blocks.counts, blocks.sums
        for key in keys:
            if counts[-1] >= BLOCK:
                edges.append(key)
                counts.append(0)
                sums.append(0)
            counts[-1] += 1
            sums[-1] += id_value(key)
        return blocks

    def index(self, key: bytes) -> int:
        """Returns the block that `key` falls in."""
        return bisect_right(self.edges, key) - 1

    def end(self, block: int) -> bytes | None:
        """Returns the edge above `block`, or None for the last block."""
        return self.edges[block + 1] if block + 1 < len(self.edges) else None

    def add(self, keys: Iterable[bytes]) -> list[int]:
        """Counts newly stored keys into their blocks; returns the blocks now too large."""
        grown = set()
        for key in keys:
            block = self.index(key)
            self.counts[block] += 1
            self.sums[block] += id_value(key)
            if self.counts[block] > 2 * BLOCK:
                grown.add(block)
        return sorted(grown, reverse=True)

    def split(self, block: int, keys: Sequence[bytes]) -> None:
        """Replaces `block` by blocks of BLOCK keys; `keys` are all the keys it holds."""
        parts = [keys[i : i + BLOCK] for i in range(0, len(keys), BLOCK)] or [[]]
        edges = [self.edges[block], *(part[0] for part in parts[1:])]
        self.edges[block : block + 1] = edges
        self.counts[block : block + 1] = [len(part) for part in parts]
        self.sums[block : block + 1] = [sum(map(id_value, part)) for part in parts]

    def whole(self, first: int, last: int) -> tuple[int, int]:
        """Returns the count and id sum of blocks first..last - 1."""
        return sum(self.counts[first:last]), sum(self.sums[first:last])

    def total(self) -> tuple[int, int]:
        """Returns the count and id sum (mod 2**256) of the whole topic."""
        count, total = self.whole(0, len(self.counts))
        return count, total % MODULUS
