"""Range-based set reconciliation: which record ids two peers hold that the other lacks.

Theory of operation
===================

This is Nostr's negentropy (Aljoscha Meyer's range-based set reconciliation) with our canonical
msgpack framing. Each peer holds a set of items `(created_at, id)` for a topic, ordered by
`created_at` and then by `id`. The *initiator* wants to learn `have` (its ids the peer lacks)
and `need` (the peer's ids it lacks); the *responder* only answers.

Ranges and bounds. A range is the half-open interval `[lower, upper)` of the item order. A
`Bound` is a `created_at` and an id prefix that stands for the prefix padded with zero bytes;
`MIN_BOUND` is below every item and `MAX_BOUND` ("infinity") above every item. A bound placed
between two neighbouring items carries the shortest prefix that separates them (none at all when
their `created_at` differ), so bounds cost a few bytes whatever the ids look like.

Messages. A message is a list of ranges that tile the whole universe `[MIN_BOUND, MAX_BOUND)`:
each range sends only its upper bound (its lower bound is the previous upper bound), and a mode:

- `Skip`: nothing more to do here.
- `Fingerprint`: a 16-byte digest of the sender's items in the range (sum of the ids as
  256-bit integers and their count, hashed: negentropy's definition, so equal sets give equal
  fingerprints whatever order or storage produced them).
- `IdList`: every id the sender holds in the range.

Rounds. The initiator opens with one fingerprint of its whole set when it holds more than
`buckets` items, else with the fingerprints of its items one by one (an empty id list if its
set is empty). Peers that sync periodically are mostly in sync already: they then settle in one
round, and a backend that keeps a running sum of its ids (`storage.Store.topic_summary`)
answers it without reading a single item; peers that differ pay one round trip more. Whoever
receives a message answers each range:

- `Skip` with `Skip`;
- `Fingerprint` with `Skip` when it equals its own fingerprint of the range. Otherwise it
  *splits* its own items of the range into `Fingerprint` sub-ranges of equal count that tile
  the range: `buckets` of them, or one per item when it holds fewer. But the responder answers
  with an `IdList` when it holds at most `id_list_threshold` items there, and the initiator
  when it holds none (an empty `IdList`: "send me yours");
- `IdList`: the responder answers with its own `IdList` of the range. The initiator, which now
  knows both sides of the range, reports `have` and `need` and answers `Skip`.

The initiator never sends the ids it holds: the responder answers an `IdList` with its own ids
either way, so the initiator's would be spent for nothing, and fingerprints of single items
cost less (16 bytes and a bound, against 32 bytes an id) and take as many rounds. The initiator
may echo a range holding one item of its own as a single fingerprint of the same range, but the
responder never does: each of its answers divides a differing range by `buckets` or settles it,
so no range bounces between the two forever.

Adjacent `Skip` ranges merge. The initiator stops when its answer would be all `Skip`. Both sides
split, so a round trip narrows a difference by up to `buckets**2` (256 by default): two sets of
a million items that differ by one item settle in three round trips, and differences in
distinct ranges narrow in parallel.

Frame limit. No message exceeds the smaller of the two peers' frame limits (each message carries
its sender's limit, so peers with different settings still agree). When the answer to the next
range would not fit, the sender stops there and ends its message with one `Fingerprint` of all
its items from that point to `MAX_BOUND`; the peer finds it differs and splits it again, so the
rest is deferred to later rounds, never dropped. A long `IdList` is cut between two items the
same way. The first message fits `MIN_FRAME_LIMIT`, which every peer accepts. A fresh node
receives ids at the rate of about `frame_limit / 32` per round trip.

Invariants:

- A responder keeps no state between messages: everything an answer needs is in the message it
  answers, so a responder serves any number of peers with no per-peer memory. The initiator
  keeps only the set of ids it has reported.
- The ranges of a message strictly increase and tile the universe, and an answer covers every
  range it was asked about. The initiator reports the ids of a range when the responder's
  `IdList` for it arrives, and never an id twice: a deferred remainder can re-open ranges
  settled in earlier rounds (bounded frames cannot carry every settled range along), and their
  ids, already reported, are then left out.
- When either set changes during a reconciliation, the answer is still right for the ranges
  each step reports: a range that changed just differs again and is split again.
- Decoding is strict: one byte string per message, re-encoded and compared like records.

Cost for a hostile peer. A message is at most the receiver's frame limit (at most
`MAX_FRAME_LIMIT`, so at most `MAX_FRAME_LIMIT / 32` ids) and `MAX_RANGES` ranges. Because its
ranges are disjoint and ordered, answering it reads each stored item of the topic a small
constant number of times (a fingerprint, then a count, the split bounds and the bucket
fingerprints of a differing range, the ids of an id list's range, and the fingerprint of a
deferred remainder) plus a seek per range: whatever the peer sends, a message costs a few
passes over the set, so the node bounds a peer's cost by rate-limiting its messages. A hostile
responder can keep an initiator busy forever (by answering with fresh fingerprints): the node
bounds the rounds of a reconciliation.

Fingerprints are sums, as in negentropy: two different sets of a range that have the same size
and the same sum of ids look equal. Ids are sha256 digests, so this does not happen by chance,
but someone who can make two peers hold chosen sets of records could search for such sets (a
generalized birthday problem) to hide a difference between those two peers in that range.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise, repeat
from typing import Any, Literal, Protocol

from protocol.codec import pack, unpack
from protocol.errors import InvalidSyncMessage, SyncMessageTooLarge, UnsupportedSyncVersion

VERSION = 1
ID_SIZE = 32
FINGERPRINT_SIZE = 16
# The created_at of MAX_BOUND; items have smaller ones (negentropy reserves it the same way).
INFINITY = 2**64 - 1

MIN_FRAME_LIMIT = 4 * 1024
DEFAULT_FRAME_LIMIT = 1024 * 1024
# A message travels as the payload of a sync request or response (protocol.wire), at most 1 MiB.
MAX_FRAME_LIMIT = 1024 * 1024
# An honest sender merges skips, and its answer to a range is a handful of ranges, so this many
# ranges is far more than a frame of useful ranges needs; it bounds the seeks a message costs.
MAX_RANGES = 16 * 1024

DEFAULT_BUCKETS = 16
MAX_BUCKETS = 64
DEFAULT_ID_LIST_THRESHOLD = 32

# Bytes that a range can take besides its payload: array header, created_at delta (a uint64 at
# most), prefix (a bin 8 of up to 32 bytes), mode, and a payload header (a bin 32 at most).
_RANGE_OVERHEAD = 1 + 9 + 34 + 1 + 5
# What a writer keeps back for the end of a message: the header, a pending skip, and a
# fingerprint of the deferred remainder.
_RESERVE = 10 + 2 * _RANGE_OVERHEAD + FINGERPRINT_SIZE

Item = tuple[int, bytes]


# Bounds and fingerprints.


@dataclass(frozen=True, slots=True, order=True)
class Bound:
    """A point of the item order: `created_at`, then an id prefix padded with zero bytes.

    An item `(t, id)` is at or above `Bound(t', p)` exactly when `(t, id) >= (t', p)` as Python
    tuples, so a bound compares directly with items. The prefix has no trailing zero byte, so
    that every point has one `Bound`, and bounds order like the points they stand for.
    """

    created_at: int
    prefix: bytes = b""

    def __post_init__(self) -> None:
        if type(self.created_at) is not int or not 0 <= self.created_at <= INFINITY:
            raise ValueError(f"created_at {self.created_at!r} is outside [0, 2**64)")
        if type(self.prefix) is not bytes or len(self.prefix) > ID_SIZE:
            raise ValueError("a bound's prefix is at most 32 bytes")
        if self.prefix.endswith(b"\x00"):
            raise ValueError("a bound's prefix has no trailing zero byte")
        if self.created_at == INFINITY and self.prefix:
            raise ValueError("the infinite bound has no prefix")

    @property
    def key(self) -> tuple[int, bytes]:
        """The bound as a tuple that compares with `(created_at, id)` items."""
        return (self.created_at, self.prefix)

    @classmethod
    def between(cls, before: Item, after: Item) -> Bound:
        """Returns the shortest bound above `before` and at or below `after` (`before < after`)."""
        if before[0] != after[0]:
            return cls(after[0])
        a, b = before[1], after[1]
        if a >= b:
            raise ValueError("Bound.between needs two items in ascending order")
        n = 0
        while a[n] == b[n]:
            n += 1
        # b[n] > a[n] >= 0, so the prefix does not end in a zero byte.
        return cls(after[0], b[: n + 1])


MIN_BOUND = Bound(0)
MAX_BOUND = Bound(INFINITY)


def _varint(n: int) -> bytes:
    # Negentropy's varint: base 128, most significant digit first, high bit on all but the last.
    digits = [n & 0x7F]
    n >>= 7
    while n:
        digits.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(digits))


def fingerprint_of_sum(total: int, count: int) -> bytes:
    """Returns the fingerprint of `count` ids whose little-endian integer values sum to `total`.

    For backends that keep running sums: the sum is additive, so a range's total is the
    difference of two prefix sums.
    """
    digest = hashlib.sha256((total % 2**256).to_bytes(32, "little") + _varint(count))
    return digest.digest()[:FINGERPRINT_SIZE]


def fingerprint(ids: Iterable[bytes]) -> bytes:
    """Returns negentropy's fingerprint of a set of ids.

    That is `sha256(sum of the ids as little-endian uint256, mod 2**256 || varint(count))`,
    first 16 bytes: order-independent, and a range of a million ids takes one pass.
    """
    if not isinstance(ids, Sequence):
        ids = list(ids)
    little: Iterator[Literal["little"]] = repeat("little")
    return fingerprint_of_sum(sum(map(int.from_bytes, ids, little)), len(ids))


# Where the items come from.


class Items(Protocol):
    """The items of one topic, as a reconciler reads them; a storage backend implements this.

    Every method reads the half-open range `[lower, upper)` of the item order, and each can be
    served by one forward scan from `lower` (a LevelDB iterator seeked to the key of `lower`):
    no random access, no state between calls. Backends that keep counts or id sums per block
    (as negentropy's B-tree does) answer the same calls faster. An id appears once: it names
    one record, which has one `created_at`.
    """

    def count(self, lower: Bound, upper: Bound) -> int:
        """Returns the number of items in the range."""
        ...

    def fingerprint(self, lower: Bound, upper: Bound) -> bytes:
        """Returns `fingerprint(ids of the range)`, 16 bytes."""
        ...

    def items(self, lower: Bound, upper: Bound, limit: int | None = None) -> Iterator[Item]:
        """Yields the range's items in order, at most `limit` of them if given."""
        ...

    def bounds(self, lower: Bound, upper: Bound, offsets: Sequence[int]) -> list[Bound]:
        """Returns, for each offset k, `Bound.between` the range's items k - 1 and k.

        The offsets strictly increase and lie in `[1, count)`: one scan of the range, which can
        stop at the largest offset, returns the bounds that split it into buckets.
        """
        ...


class SortedItems:
    """Items in memory, in two parallel sorted lists: the reference `Items`, and small sets."""

    __slots__ = ("_ids", "_times")

    def __init__(self, items: Iterable[Item] = ()) -> None:
        """Stores `items`, any order, duplicates merged.

        Raises:
            ValueError: a created_at outside `[0, INFINITY)` or an id that is not 32 bytes.
        """
        pairs = sorted(set(items))
        for created_at, id_ in pairs:
            if type(created_at) is not int or not 0 <= created_at < INFINITY:
                raise ValueError(f"created_at {created_at!r} is outside [0, 2**64 - 1)")
            if type(id_) is not bytes or len(id_) != ID_SIZE:
                raise ValueError("an id is 32 bytes")
        self._times = [t for t, _ in pairs]
        self._ids = [i for _, i in pairs]

    def __len__(self) -> int:
        return len(self._ids)

    def _index(self, bound: Bound) -> int:
        # The index of the first item at or above the bound.
        if bound.created_at == INFINITY:
            return len(self._ids)
        lo = bisect_left(self._times, bound.created_at)
        if not bound.prefix:
            return lo
        hi = bisect_right(self._times, bound.created_at, lo)
        return bisect_left(self._ids, bound.prefix, lo, hi)

    def _span(self, lower: Bound, upper: Bound) -> tuple[int, int]:
        start = self._index(lower)
        return start, max(start, self._index(upper))

    def count(self, lower: Bound, upper: Bound) -> int:
        start, end = self._span(lower, upper)
        return end - start

    def fingerprint(self, lower: Bound, upper: Bound) -> bytes:
        start, end = self._span(lower, upper)
        return fingerprint(self._ids[start:end])

    def items(self, lower: Bound, upper: Bound, limit: int | None = None) -> Iterator[Item]:
        start, end = self._span(lower, upper)
        if limit is not None:
            end = min(end, start + max(limit, 0))
        return zip(self._times[start:end], self._ids[start:end], strict=True)

    def bounds(self, lower: Bound, upper: Bound, offsets: Sequence[int]) -> list[Bound]:
        start, end = self._span(lower, upper)
        out = []
        for k in offsets:
            if not 0 < k < end - start:
                raise ValueError(f"offset {k} is outside [1, {end - start})")
            i = start + k
            before = (self._times[i - 1], self._ids[i - 1])
            out.append(Bound.between(before, (self._times[i], self._ids[i])))
        return out


# Messages.


@dataclass(frozen=True, slots=True)
class Skip:
    """A range that needs nothing more."""

    upper: Bound


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A range and the fingerprint of the sender's items in it."""

    upper: Bound
    value: bytes


@dataclass(frozen=True, slots=True)
class IdList:
    """A range and every id the sender holds in it, in ascending byte order."""

    upper: Bound
    ids: tuple[bytes, ...]


Range = Skip | Fingerprint | IdList

_SKIP, _FINGERPRINT, _ID_LIST = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Message:
    """A reconciliation message: ranges that tile the universe, and the sender's frame limit.

    Wire format, canonical msgpack:

        message = [VERSION, frame_limit: int, [range, ...]]
        range   = [delta: int | nil, prefix: bin, 0]                  Skip
                | [delta: int | nil, prefix: bin, 1, fingerprint: bin 16]
                | [delta: int | nil, prefix: bin, 2, ids: bin 32*k]   IdList, ids ascending

    `delta` is the upper bound's created_at minus the previous range's (0 for the first range),
    or nil for `MAX_BOUND`, which the last range and only it has. `frame_limit` is the largest
    message the sender accepts, so the receiver answers within it.
    """

    ranges: tuple[Range, ...]
    frame_limit: int = DEFAULT_FRAME_LIMIT


def _pack_range(last: int, r: Range) -> bytes:
    # `last` is the created_at of the previous range's upper bound.
    upper = r.upper
    delta = None if upper.created_at == INFINITY else upper.created_at - last
    if isinstance(r, Skip):
        return pack((delta, upper.prefix, _SKIP))
    if isinstance(r, Fingerprint):
        return pack((delta, upper.prefix, _FINGERPRINT, r.value))
    return pack((delta, upper.prefix, _ID_LIST, b"".join(r.ids)))


def _header(frame_limit: int, ranges: int) -> bytes:
    # msgpack-python's own array headers, so that a message built range by range is byte for
    # byte what packing the whole value at once gives.
    count = bytes([0x90 | ranges]) if ranges <= 15 else b"\xdc" + ranges.to_bytes(2, "big")
    return b"\x93" + pack(VERSION) + pack(frame_limit) + count


def encode(message: Message) -> bytes:
    """Returns the canonical bytes of a message (what `decode` accepts back)."""
    parts = []
    last = 0
    for r in message.ranges:
        parts.append(_pack_range(last, r))
        last = r.upper.created_at
    return _header(message.frame_limit, len(parts)) + b"".join(parts)


def decode(data: bytes, *, max_size: int = MAX_FRAME_LIMIT) -> Message:
    """Decodes a message strictly.

    Args:
        data: the message as received.
        max_size: the longest message accepted: the receiver's frame limit.

    Raises:
        SyncMessageTooLarge: `data` is longer than `max_size`.
        UnsupportedSyncVersion: the message is of another protocol version.
        InvalidSyncMessage: anything else: not msgpack, wrong shape or types, a frame limit out
            of bounds, more than `MAX_RANGES` ranges, bounds that do not strictly increase or
            do not end at `MAX_BOUND`, a non-canonical prefix, adjacent skips, an unknown mode,
            a fingerprint that is not 16 bytes, ids out of order, or bytes that are not the
            canonical encoding of what they hold.
    """
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) > max_size:
        raise SyncMessageTooLarge(f"sync message is {len(data)} bytes, the limit is {max_size}")
    value = unpack(
        data, InvalidSyncMessage, "sync message", max_bin=max_size, max_str=0, max_array=MAX_RANGES
    )
    if type(value) is not tuple or not value or type(value[0]) is not int:
        raise InvalidSyncMessage("sync message: expected [version, frame limit, ranges]")
    if value[0] != VERSION:
        raise UnsupportedSyncVersion(f"sync message: unknown version {value[0]}")
    if len(value) != 3:
        raise InvalidSyncMessage("sync message: expected [version, frame limit, ranges]")
    _, frame_limit, raw = value
    if type(frame_limit) is not int or not MIN_FRAME_LIMIT <= frame_limit <= MAX_FRAME_LIMIT:
        raise InvalidSyncMessage(f"sync message: frame limit {frame_limit!r} is out of bounds")
    if type(raw) is not tuple or not raw:
        raise InvalidSyncMessage("sync message: expected at least one range")
    ranges = tuple(_decode_ranges(raw))
    if ranges[-1].upper != MAX_BOUND:
        raise InvalidSyncMessage("sync message: the last range must end at infinity")
    if pack(value) != data:
        raise InvalidSyncMessage("sync message: not in canonical encoding")
    return Message(ranges, frame_limit)


def _decode_ranges(raw: tuple[Any, ...]) -> Iterator[Range]:
    previous: Bound | None = MIN_BOUND
    last = 0
    skipped = False
    for r in raw:
        if type(r) is not tuple or len(r) not in (3, 4):
            raise InvalidSyncMessage("sync range: expected [delta, prefix, mode, payload?]")
        if previous is None:
            raise InvalidSyncMessage("sync range: a range follows the one ending at infinity")
        delta, prefix, mode = r[:3]
        if type(prefix) is not bytes or len(prefix) > ID_SIZE or prefix.endswith(b"\x00"):
            raise InvalidSyncMessage("sync range: a prefix is at most 32 bytes, no trailing zero")
        if delta is None:
            if prefix:
                raise InvalidSyncMessage("sync range: the infinite bound has no prefix")
            upper = MAX_BOUND
        elif type(delta) is not int or not 0 <= delta < INFINITY - last:
            raise InvalidSyncMessage(f"sync range: bad created_at delta {delta!r}")
        else:
            last += delta
            upper = Bound(last, prefix)
        if upper <= previous:
            raise InvalidSyncMessage("sync range: bounds must strictly increase")
        previous = None if upper == MAX_BOUND else upper
        if type(mode) is not int or mode not in (_SKIP, _FINGERPRINT, _ID_LIST):
            raise InvalidSyncMessage(f"sync range: unknown mode {mode!r}")
        if len(r) != (3 if mode == _SKIP else 4):
            raise InvalidSyncMessage(f"sync range: wrong length for mode {mode}")
        if mode == _SKIP:
            if skipped:
                raise InvalidSyncMessage("sync range: adjacent skips must be merged")
            skipped = True
            yield Skip(upper)
            continue
        skipped = False
        payload = r[3]
        if type(payload) is not bytes:
            raise InvalidSyncMessage("sync range: a payload is bin")
        if mode == _FINGERPRINT:
            if len(payload) != FINGERPRINT_SIZE:
                raise InvalidSyncMessage("sync range: a fingerprint is 16 bytes")
            yield Fingerprint(upper, payload)
            continue
        if len(payload) % ID_SIZE:
            raise InvalidSyncMessage("sync range: an id list is a multiple of 32 bytes")
        ids = tuple(payload[i : i + ID_SIZE] for i in range(0, len(payload), ID_SIZE))
        if any(a >= b for a, b in pairwise(ids)):
            raise InvalidSyncMessage("sync range: ids must strictly ascend")
        yield IdList(upper, ids)


class _Writer:
    """Builds one message range by range, within a byte budget and `MAX_RANGES`.

    It merges adjacent skips, and keeps `_RESERVE` bytes back so that `finish` can always close
    the message with a pending skip and a deferred remainder.
    """

    def __init__(self, budget: int, frame_limit: int) -> None:
        self.frame_limit = frame_limit
        self.room = budget - _RESERVE
        self.parts: list[bytes] = []
        self.last = 0  # The created_at of the last upper bound written.
        self.lower = MIN_BOUND  # Where the next range starts.
        self.skipping = False  # Whether a skip up to `lower` is pending.
        self.settled = True  # Whether everything written is a skip.

    def skip(self, upper: Bound) -> None:
        self.lower = upper
        self.skipping = True

    def add(self, ranges: Sequence[Range]) -> bool:
        """Writes `ranges` (after any pending skip) if they all fit; returns whether they did."""
        parts = self._encode(ranges)
        size = sum(map(len, parts))
        # Two ranges stay free for `finish`, as `_RESERVE` bytes do.
        if size > self.room or len(self.parts) + len(parts) > MAX_RANGES - 2:
            return False
        self._write(ranges, parts)
        self.room -= size
        return True

    def _encode(self, ranges: Sequence[Range]) -> list[bytes]:
        parts = []
        last = self.last
        if self.skipping:
            parts.append(_pack_range(last, Skip(self.lower)))
            last = self.lower.created_at
        for r in ranges:
            parts.append(_pack_range(last, r))
            last = r.upper.created_at
        return parts

    def _write(self, ranges: Sequence[Range], parts: list[bytes]) -> None:
        self.parts += parts
        self.skipping = False
        if ranges:
            self.last = ranges[-1].upper.created_at
            self.lower = ranges[-1].upper
            self.settled = False

    def id_list(self, items: Items, lower: Bound, upper: Bound) -> bool:
        """Writes the ids of `items` in the range, cut short if they do not all fit.

        Returns:
            Whether the whole range was written. When not, `lower` is where the writer stopped.
        """
        fit = (self.room - 2 * _RANGE_OVERHEAD) // ID_SIZE
        if fit <= 0:
            return False
        got = list(items.items(lower, upper, fit + 1))
        if len(got) <= fit:
            return self.add([IdList(upper, tuple(sorted(i for _, i in got)))])
        cut = Bound.between(got[fit - 1], got[fit])
        self.add([IdList(cut, tuple(sorted(i for _, i in got[:fit])))])
        return False

    def finish(self, items: Items, stopped: bool) -> bytes:
        """Closes the message: with the deferred remainder if `stopped`, else a final skip.

        What it adds always fits, thanks to the bytes and ranges that `add` keeps back.
        """
        tail: list[Range] = []
        if stopped:
            tail.append(Fingerprint(MAX_BOUND, items.fingerprint(self.lower, MAX_BOUND)))
        self._write(tail, self._encode(tail))
        return _header(self.frame_limit, len(self.parts)) + b"".join(self.parts)


# The state machine.


@dataclass(frozen=True, slots=True)
class Step:
    """What the initiator learned from one answer, and what to send next.

    Attributes:
        have: ids we hold and the peer lacks, first found in this answer.
        need: ids the peer holds and we lack, first found in this answer.
        next: the next message to send, or None when the reconciliation is complete.
    """

    have: tuple[bytes, ...]
    need: tuple[bytes, ...]
    next: bytes | None


class Reconciler:
    """Both sides of a reconciliation over one set of items.

    As responder (`respond`) it keeps no state: one instance answers any number of peers,
    concurrently. As initiator (`initiate`, then `reconcile` for each answer) it remembers
    only the ids it has reported, so that each is reported once; use one instance per
    reconciliation you initiate.
    """

    def __init__(
        self,
        items: Items,
        *,
        frame_limit: int = DEFAULT_FRAME_LIMIT,
        buckets: int = DEFAULT_BUCKETS,
        id_list_threshold: int = DEFAULT_ID_LIST_THRESHOLD,
    ) -> None:
        """Sets up reconciliation over `items`.

        Args:
            items: the set, as a storage backend or `SortedItems` serves it.
            frame_limit: the largest message this side sends or accepts, in bytes, within
                `[MIN_FRAME_LIMIT, MAX_FRAME_LIMIT]`.
            buckets: how many sub-ranges a differing range splits into, in `[2, MAX_BUCKETS]`.
            id_list_threshold: as responder, a differing range where we hold at most this many
                items is answered with their ids rather than split; at least `buckets`.

        Raises:
            ValueError: a parameter out of its bounds.
        """
        if not MIN_FRAME_LIMIT <= frame_limit <= MAX_FRAME_LIMIT:
            raise ValueError(f"frame_limit must be in [{MIN_FRAME_LIMIT}, {MAX_FRAME_LIMIT}]")
        if not 2 <= buckets <= MAX_BUCKETS:
            raise ValueError(f"buckets must be in [2, {MAX_BUCKETS}]")
        if id_list_threshold < buckets:
            raise ValueError("id_list_threshold must be at least buckets")
        self.items = items
        self.frame_limit = frame_limit
        self.buckets = buckets
        self.id_list_threshold = id_list_threshold
        self._reported: set[bytes] = set()

    def initiate(self) -> bytes:
        """Starts a reconciliation: returns the first message, for the responder.

        It fits `MIN_FRAME_LIMIT`, since the responder's limit is not known yet.
        """
        self._reported = set()
        out = _Writer(MIN_FRAME_LIMIT, self.frame_limit)
        if self.items.count(MIN_BOUND, MAX_BOUND) > self.buckets:
            # One fingerprint of the whole set: see "Rounds" in the module's docstring.
            out.add([Fingerprint(MAX_BOUND, self.items.fingerprint(MIN_BOUND, MAX_BOUND))])
            return out.finish(self.items, False)
        return out.finish(self.items, not self._split(out, MIN_BOUND, MAX_BOUND, 0))

    def respond(self, message: bytes) -> bytes:
        """Returns the responder's answer to a message from an initiator.

        Raises:
            InvalidSyncMessage: the message is malformed, non-canonical or over the limits.
        """
        msg = decode(message, max_size=self.frame_limit)
        out = _Writer(min(self.frame_limit, msg.frame_limit), self.frame_limit)
        lower = MIN_BOUND
        for r in msg.ranges:
            if isinstance(r, IdList):
                # The initiator compares the ids with its own; it needs none of its own back.
                if not out.id_list(self.items, lower, r.upper):
                    return out.finish(self.items, True)
            elif not self._answer(out, lower, r, self.id_list_threshold):
                return out.finish(self.items, True)
            lower = r.upper
        return out.finish(self.items, False)

    def reconcile(self, message: bytes) -> Step:
        """Takes the responder's answer to our last message, as initiator.

        Returns:
            The ids this answer settled that no earlier answer did, and the next message
            (None when the reconciliation is complete).

        Raises:
            InvalidSyncMessage: the message is malformed, non-canonical or over the limits.
        """
        msg = decode(message, max_size=self.frame_limit)
        out = _Writer(min(self.frame_limit, msg.frame_limit), self.frame_limit)
        have: list[bytes] = []
        need: list[bytes] = []
        stopped = False
        lower = MIN_BOUND
        for r in msg.ranges:
            if isinstance(r, IdList):
                ours = [i for _, i in self.items.items(lower, r.upper)]
                theirs = set(r.ids)
                have += (i for i in ours if i not in theirs)
                theirs.difference_update(ours)
                need += (i for i in r.ids if i in theirs)
                out.skip(r.upper)
            # We send an id list only where we hold nothing: elsewhere, splitting into
            # fingerprints costs fewer bytes than our ids would and takes as many rounds, since
            # the responder answers both with its own ids.
            elif not self._answer(out, lower, r, 0):
                stopped = True
                break
            lower = r.upper
        data = out.finish(self.items, stopped)
        # A deferred remainder can cover ranges settled in earlier rounds, which then come back
        # as id lists: what was reported then is not reported again.
        have = [i for i in have if i not in self._reported]
        need = [i for i in dict.fromkeys(need) if i not in self._reported]
        self._reported.update(have, need)
        return Step(tuple(have), tuple(need), None if out.settled else data)

    def _answer(self, out: _Writer, lower: Bound, r: Skip | Fingerprint, threshold: int) -> bool:
        # Answers a skip or a fingerprint; returns False if the answer did not fit.
        if isinstance(r, Fingerprint) and self.items.fingerprint(lower, r.upper) != r.value:
            return self._split(out, lower, r.upper, threshold)
        out.skip(r.upper)
        return True

    def _split(self, out: _Writer, lower: Bound, upper: Bound, threshold: int) -> bool:
        # Sends our items of a differing range: their ids if at most `threshold`, else the
        # fingerprints of up to `buckets` sub-ranges of equal count (single items if fewer).
        # Returns False if that did not (all) fit.
        count = self.items.count(lower, upper)
        if count <= threshold:
            return out.id_list(self.items, lower, upper)
        parts = min(self.buckets, count)
        offsets = [count * i // parts for i in range(1, parts)]
        edges = [lower, *self.items.bounds(lower, upper, offsets), upper]
        return out.add([Fingerprint(b, self.items.fingerprint(a, b)) for a, b in pairwise(edges)])
