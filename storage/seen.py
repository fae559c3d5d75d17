"""An in-memory Bloom filter of the ids of stored records, which spares ingest most reads.

Theory of operation. Ingest must know whether each record it is given is stored already. In
LevelDB that is a point read which, for a new record, misses in every level: about 5-8 us at a
million records, more than writing the record. Record ids are sha256 digests, so their bytes
are uniform hashes already: three 32-bit slices of an id give the filter's three bit positions,
with no hashing. A miss is certain (the record is not stored); a hit (every stored record, and
about 0.5% of the others per layer) is confirmed by a LevelDB read.

The filter must hold every stored id, or ingest would take a stored record for a new one. So:

1. ids are added before the write that stores them (if it fails, the filter holds ids that
   are not stored, which only costs a read each);
2. the filter is saved in the database only by a clean `Store.close()`, under a meta key that
   `Store.open()` deletes (with sync) before it writes anything else. A store that was not
   closed cleanly (a crash, kill -9, a full disk at close) has no saved filter, and opening it
   rebuilds the filter from the R table (one to two seconds per million records).

The first layer has room for twice the ids stored at opening, and for a million at least (2
MiB); when it is full, a layer of twice its capacity is added (a scalable Bloom filter), so
adding never stops to rebuild, at the cost of one more probe per lookup. `Store.check()`
verifies that every stored id is in the filter.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import numpy as np

# Filters start with room for this many ids (2 MiB): a layer added later costs every lookup
# one more probe, so the first one is generous.
MIN_CAPACITY = 1 << 20

# 16 bits per id and 3 probes: about 0.5% false positives in a full layer. Each probe costs
# Python time on every record; a false positive costs one read, on 1 record in 200.
BITS_PER_ID = 16
# Calls of at least this many ids take numpy's path: a few passes over the whole call's ids
# instead of Python bit arithmetic per id (0.05 against 0.7 to 1.0 us per id at 1,000); below
# it, numpy's fixed cost per call is more than it saves.
BATCH_FROM = 64
_MAGIC = b"WWSEEN1\x00"
_LAYER = struct.Struct(">QQ")


def _bits(capacity: int) -> int:
    """Returns the number of bits of a layer for `capacity` ids: a power of two."""
    return 1 << max(16, (capacity * BITS_PER_ID - 1).bit_length())


class _Layer:
    __slots__ = ("bits", "capacity", "count", "mask")

    def __init__(self, capacity: int, bits: bytearray | None = None, count: int = 0) -> None:
        size = _bits(capacity)
        self.bits = bytearray(size >> 3) if bits is None else bits
        if len(self.bits) != size >> 3:
            raise ValueError("layer size does not match its capacity")
        self.mask = size - 1
        self.capacity = capacity
        self.count = count

    def add(self, rid: bytes) -> None:
        h, bits, mask = int.from_bytes(rid, "little"), self.bits, self.mask
        p = h & mask
        bits[p >> 3] |= 1 << (p & 7)
        p = (h >> 32) & mask
        bits[p >> 3] |= 1 << (p & 7)
        p = (h >> 64) & mask
        bits[p >> 3] |= 1 << (p & 7)
        self.count += 1

    def __contains__(self, rid: bytes) -> bool:
        h, bits, mask = int.from_bytes(rid, "little"), self.bits, self.mask
        p = h & mask
        if not bits[p >> 3] >> (p & 7) & 1:
            return False
        p = (h >> 32) & mask
        if not bits[p >> 3] >> (p & 7) & 1:
            return False
        p = (h >> 64) & mask
        return bits[p >> 3] >> (p & 7) & 1 == 1


class Seen:
    """A set of record ids that may answer "maybe" for ids it does not hold, never "no" for ids
    it holds."""

    def __init__(self, capacity: int = MIN_CAPACITY) -> None:
        self._layers = [_Layer(max(capacity, 1))]

    def add(self, rid: bytes) -> None:
        layer = self._layers[-1]
        if layer.count >= layer.capacity:
            layer = _Layer(2 * layer.capacity)
            self._layers.append(layer)
        layer.add(rid)

    def update(self, rids: Iterable[bytes]) -> None:
        # `add`, inlined: this runs for every stored record.
        layer = self._layers[-1]
        bits, mask = layer.bits, layer.mask
        for rid in rids:
            if layer.count >= layer.capacity:
                layer = _Layer(2 * layer.capacity)
                self._layers.append(layer)
                bits, mask = layer.bits, layer.mask
            h = int.from_bytes(rid, "little")
            p = h & mask
            bits[p >> 3] |= 1 << (p & 7)
            p = (h >> 32) & mask
            bits[p >> 3] |= 1 << (p & 7)
            p = (h >> 64) & mask
            bits[p >> 3] |= 1 << (p & 7)
            layer.count += 1

    def probe(self, rids: Sequence[bytes]) -> list[bool]:
        """Returns, for each of `rids`, whether the filter may hold it (`rid in self`)."""
        positions = self._positions(rids)
        if positions is None:
            return [rid in self for rid in rids]
        found = np.zeros(len(rids), dtype=bool)
        for layer in self._layers:
            p = positions & np.uint32(layer.mask)
            bits = np.frombuffer(layer.bits, dtype=np.uint8)
            found |= ((bits[p >> 3] >> (p & 7).astype(np.uint8)) & 1).all(axis=1)
        result: list[bool] = found.tolist()
        return result

    def update_many(self, rids: Sequence[bytes]) -> None:
        """`update` for a sequence: numpy's path for many ids."""
        positions = self._positions(rids)
        if positions is None:
            self.update(rids)
            return
        done = 0
        while done < len(rids):
            layer = self._layers[-1]
            if layer.count >= layer.capacity:
                layer = _Layer(2 * layer.capacity)
                self._layers.append(layer)
            if layer.mask >> 32:
                # A new layer of more than 2**32 bits: its positions take more than 4 bytes of an
                # id, which `update` reads (`_positions` refuses such a layer for the same reason).
                self.update(rids[done:])
                return
            take = min(len(rids) - done, layer.capacity - layer.count)
            p = (positions[done : done + take] & np.uint32(layer.mask)).ravel()
            bits = np.frombuffer(layer.bits, dtype=np.uint8)
            # ufunc.at: an index that comes twice gets both bits, where bits[i] |= x would not.
            np.bitwise_or.at(bits, p >> 3, np.left_shift(1, p & 7).astype(np.uint8))
            layer.count += take
            done += take

    def _positions(self, rids: Sequence[bytes]) -> np.ndarray | None:
        """Returns the three candidate positions of each of `rids`, unmasked (n x 3 uint32), or
        None where numpy's path does not apply: few ids, ids of unequal lengths or shorter than
        12 bytes, or a layer of more than 2**32 bits (whose positions take more bytes)."""
        n = len(rids)
        if n < BATCH_FROM or self._layers[-1].mask >> 32:
            return None
        joined = b"".join(rids)
        width = len(rids[0])
        if width < 12 or width % 4 or len(joined) != n * width:
            return None
        # The bytes of `int.from_bytes(rid, "little") >> 32 * k` below 2**32, k = 0, 1, 2.
        words: np.ndarray = np.frombuffer(joined, dtype="<u4").reshape(n, width // 4)[:, :3]
        return words.astype(np.uint32)

    def __contains__(self, rid: bytes) -> bool:
        # This runs for every record: one layer (the usual case) is probed here, without a call
        # per layer; several in a loop, not any(...), whose generator costs more than the probes.
        layers = self._layers
        if len(layers) == 1:
            layer = layers[0]
            h, bits, mask = int.from_bytes(rid, "little"), layer.bits, layer.mask
            p = h & mask
            if not bits[p >> 3] >> (p & 7) & 1:
                return False
            p = (h >> 32) & mask
            if not bits[p >> 3] >> (p & 7) & 1:
                return False
            p = (h >> 64) & mask
            return bits[p >> 3] >> (p & 7) & 1 == 1
        for layer in layers:  # noqa: SIM110
            if rid in layer:
                return True
        return False

    def __len__(self) -> int:
        """Returns how many ids were added (an id added twice counts twice)."""
        return sum(layer.count for layer in self._layers)

    @property
    def size(self) -> int:
        """Returns the memory the filter's bits take, in bytes."""
        return sum(len(layer.bits) for layer in self._layers)

    def dump(self) -> bytes:
        parts = [_MAGIC, struct.pack(">I", len(self._layers))]
        for layer in self._layers:
            parts += [_LAYER.pack(layer.capacity, layer.count), bytes(layer.bits)]
        return b"".join(parts)

    @classmethod
    def load(cls, data: bytes) -> Seen | None:
        """Returns the filter `dump` wrote, or None if `data` is not one."""
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 4:
            return None
        offset = len(_MAGIC)
        (count,) = struct.unpack_from(">I", data, offset)
        offset += 4
        layers = []
        try:
            for _ in range(count):
                capacity, added = _LAYER.unpack_from(data, offset)
                offset += _LAYER.size
                size = _bits(capacity) >> 3
                layers.append(_Layer(capacity, bytearray(data[offset : offset + size]), added))
                offset += size
        except (struct.error, ValueError):
            return None
        if not layers or offset != len(data):
            return None
        seen = cls.__new__(cls)
        seen._layers = layers
        return seen
