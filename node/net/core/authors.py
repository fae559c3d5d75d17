"""Per-author quotas: what one key may make this node store, decided without I/O.

Theory of operation. A key costs nothing to make, and every record a key signs validly is one
every node would store. Per-peer bans (node/net/core/peers.py) do not hold off an author: the
records of one key reach a node through any number of honest forwarders, and a fresh key is a
fresh author. So the node also rations what each *author* may make it store, the way Nostr
relays limit events per pubkey and Radicle nodes choose whom they seed, and lets the ration grow
with what the network has vouched for: contributions of the key that some project accepted.

Rules:
- Each author has two token buckets, one for records and one for bytes, of `burst` and
  `byte_burst` refilled at `rate` and `byte_rate` per second, and a total of `total` bytes it
  may make this node store since the node started. All four are multiplied by the author's
  trust, 1 + min(standing, trust_cap), where standing is the number of its contributions that
  an acceptance in force by another key accepted with weight > 0 (looked up by the caller, in
  the store, and told here with `learn`; remembered STANDING_TTL seconds, or until the caller
  says with `vouched` that one more of its contributions was accepted).
- Keys with no standing also share one pool, `newcomers_burst` records refilled at
  `newcomers_rate` per second, whoever signs them: ten thousand fresh keys get together what the
  pool allows, not ten thousand rations. This is the policy on records from keys with no
  accepted work (issue 15, defect 6). With a `difficulty`, only keys stamped with that much
  proof of work (protocol.stamp: about 2**difficulty key generations to make, a hash to check)
  draw on it; the others share the unstamped pool, `unstamped_burst` refilled at
  `unstamped_rate`, so that a flood of free keys cannot starve newcomers who paid for theirs.
- A record that goes past is not taken, and it is nobody's offence: the forwarder cannot know
  how much of an author this node has taken already (other forwarders brought the rest), and
  an honest node that took it did so within its own budget. It comes again by sync once the
  budget has refilled (sync goes through the same quotas: there is no back door).
- Before signatures. `room` says, charging nothing, whether each record of a batch could be
  admitted (counting the ones before it), from the author key its bytes claim: records of an author (or of newcomers) whose ration is spent
  are dropped before their signatures are checked, so a flood past its ration costs the node a
  hash and a look-up per record. A forged claim costs the named author nothing (it is charged
  only by `admit`, after the signature was checked).
- Sync does not fetch again, for RATIONED_TTL seconds (at least half of it), what it has just
  left out (`Rationed`): a peer holding a million records past their rations would otherwise
  send them all again at every periodic sync. Once that time has passed they are fetched, and
  taken if the rations have refilled. The table holds millions of ids in a few MiB (Bloom
  filters): one that forgot the oldest of a flood's ids had sync fetch those again.
- Local records (the node's own user) are not rationed: this is about what others make us keep.
- Memory. At most MAX_AUTHORS authors are remembered; when full, those whose buckets have
  refilled are forgotten (their totals with them: the newcomer pool still bounds what fresh
  keys add together), and if none has, a new author is refused until one has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from node.net.core.quotas import Bucket
from protocol.stamp import work
from storage.seen import Seen

MAX_AUTHORS = 100_000
STANDING_TTL = 600.0
# Ids of records left out for their authors' rations, that sync does not fetch again for a
# while (`Rationed`): at most this many per generation, two generations.
MAX_RATIONED = 2_097_152
RATIONED_TTL = 300.0
# Ids stored lately (`Lately`), by their first 8 bytes (a rare collision only errs lenient).
MAX_LATELY = 262_144


@dataclass(frozen=True, slots=True)
class Limits:
    """The ration of a key with no accepted work; a trusted key gets it times its trust.

    The defaults let a newcomer post a profile, projects and hundreds of contributions at once,
    then one record a second; and all newcomers together 50 records a second, which bounds what
    a flood of fresh keys adds to a node's disk to about 50 x 64 KiB/s at worst, 50 x ~400 B/s
    for typical records (docs/PROTOCOL.md, Network).
    """

    rate: float = 1.0
    burst: float = 500.0
    byte_rate: float = 16 * 1024.0
    byte_burst: float = 4 * 1024 * 1024.0
    total: int = 64 * 1024 * 1024
    newcomers_rate: float = 50.0
    newcomers_burst: float = 5_000.0
    trust_cap: int = 100
    # Bits of proof of work (protocol.stamp) a key with no accepted work needs to draw on the
    # newcomers' pool; keys with less share the far smaller unstamped pool. 0: every key has it.
    difficulty: int = 0
    unstamped_rate: float = 2.0
    unstamped_burst: float = 200.0


@dataclass(slots=True)
class _Author:
    records: Bucket
    size: Bucket
    stored: int = 0


@dataclass
class Authors:
    """Rations per author; see the module's theory of operation."""

    limits: Limits = field(default_factory=Limits)
    _authors: dict[bytes, _Author] = field(default_factory=dict, init=False)
    _standing: dict[bytes, tuple[int, float]] = field(default_factory=dict, init=False)
    _newcomers: Bucket | None = field(default=None, init=False)
    _unstamped: Bucket | None = field(default=None, init=False)

    def standing(self, author: bytes, now: float) -> int | None:
        """The standing of `author` as last learned, or None if unknown or older than
        STANDING_TTL (the caller then looks it up and calls `learn`)."""
        known = self._standing.get(author)
        if known is None or now - known[1] >= STANDING_TTL:
            return None
        return known[0]

    def learn(self, author: bytes, standing: int, now: float) -> None:
        """Remembers the standing of `author` (accepted contributions) as of `now`."""
        if len(self._standing) >= MAX_AUTHORS:
            self._standing = {a: s for a, s in self._standing.items() if now - s[1] < STANDING_TTL}
            if len(self._standing) >= MAX_AUTHORS:
                return  # looked up again next time
        self._standing[author] = (standing, now)

    def vouched(self, author: bytes) -> None:
        """A contribution of `author` was just accepted: its standing is looked up again."""
        self._standing.pop(author, None)

    def trust(self, standing: int) -> int:
        """How many rations a key of this standing gets."""
        return 1 + min(max(0, standing), self.limits.trust_cap)

    def admit(self, author: bytes, size: int, standing: int, now: float) -> bool:
        """Whether this node takes a record of `size` bytes by `author` now; if so, it is
        charged to the author's ration (and the newcomers' pool, for a key with no standing).
        """
        limits = self.limits
        trust = self.trust(standing)
        state = self._authors.get(author)
        if state is None:
            if len(self._authors) >= MAX_AUTHORS and not self._forget(now):
                return False
            state = _Author(
                Bucket(limits.rate * trust, limits.burst * trust, limits.burst * trust, now),
                Bucket(
                    limits.byte_rate * trust,
                    limits.byte_burst * trust,
                    limits.byte_burst * trust,
                    now,
                ),
            )
            self._authors[author] = state
        else:
            _scale(state.records, limits.rate * trust, limits.burst * trust)
            _scale(state.size, limits.byte_rate * trust, limits.byte_burst * trust)
        if state.stored + size > limits.total * trust:
            return False
        if not (_can(state.records, now, 1.0) and _can(state.size, now, float(size))):
            return False
        if standing <= 0:
            pool = self._pool(author, now)
            if not pool.take(now):
                return False
        state.records.take(now)
        state.size.take(now, float(size))
        state.stored += size
        return True

    def refund(self, author: bytes, size: int, standing: int, now: float) -> None:
        """Gives back what `admit` charged for a record of `size` bytes that the node then did
        not keep (its disk failed, or the record was left out as an orphan past its peer's
        quota): an author's ration pays only for what the node stores, so the record is taken
        when it comes again. `standing` is the one `admit` was given."""
        state = self._authors.get(author)
        if state is None:
            return
        _give(state.records, now, 1.0)
        _give(state.size, now, float(size))
        state.stored = max(0, state.stored - size)
        if standing <= 0:
            _give(self._pool(author, now), now, 1.0)

    def room(self, claims: Sequence[tuple[bytes, int]], now: float) -> list[bool]:
        """For records claimed to be (author, size), in order: whether each could be admitted
        now, given the ones before it in the list; charging nothing. True for an author whose
        standing is unknown (only `admit`, after the record's signature was checked, decides
        then). For dropping records before their signatures are checked: a forged record naming
        an author costs that author nothing."""
        limits = self.limits
        pools: dict[int, float] = {}
        used: dict[bytes, tuple[int, int]] = {}
        verdicts = []
        for author, size in claims:
            standing = self.standing(author, now)
            if standing is None:
                verdicts.append(True)
                continue
            trust = self.trust(standing)
            state = self._authors.get(author)
            count, length = used.get(author, (0, 0))
            pool = None
            if standing <= 0:
                pool = self._pool(author, now)
                if id(pool) not in pools:
                    pools[id(pool)] = _level(pool, now)
            ok = pool is None or pools[id(pool)] >= 1.0
            if ok and state is not None:
                _scale(state.records, limits.rate * trust, limits.burst * trust)
                _scale(state.size, limits.byte_rate * trust, limits.byte_burst * trust)
                ok = (
                    state.stored + length + size <= limits.total * trust
                    and _level(state.records, now) >= count + 1
                    and _level(state.size, now) >= length + size
                )
            elif ok:
                ok = count + 1 <= limits.burst * trust and length + size <= min(
                    limits.byte_burst * trust, limits.total * trust
                )
            if ok:
                used[author] = (count + 1, length + size)
                if pool is not None:
                    pools[id(pool)] -= 1.0
            verdicts.append(ok)
        return verdicts

    def stored(self, author: bytes) -> int:
        """Bytes of `author` taken since start (as far as it is remembered)."""
        state = self._authors.get(author)
        return 0 if state is None else state.stored

    def stamped(self, author: bytes) -> bool:
        """Whether `author` has the proof of work the newcomers' pool asks for."""
        return self.limits.difficulty <= 0 or work(author) >= self.limits.difficulty

    def _pool(self, author: bytes, now: float) -> Bucket:
        """The pool that `author`, a key with no standing, draws on."""
        limits = self.limits
        if self.stamped(author):
            if self._newcomers is None:
                self._newcomers = Bucket(
                    limits.newcomers_rate, limits.newcomers_burst, limits.newcomers_burst, now
                )
            return self._newcomers
        if self._unstamped is None:
            self._unstamped = Bucket(
                limits.unstamped_rate, limits.unstamped_burst, limits.unstamped_burst, now
            )
        return self._unstamped

    def _forget(self, now: float) -> bool:
        """Forgets authors whose buckets have refilled; returns whether any was."""
        before = len(self._authors)
        self._authors = {
            a: s for a, s in self._authors.items() if not (s.records.full(now) and s.size.full(now))
        }
        return len(self._authors) < before


def _level(bucket: Bucket, now: float) -> float:
    """The tokens `bucket` holds now (refilling it, taking none)."""
    bucket.tokens = min(bucket.burst, bucket.tokens + max(0.0, now - bucket.at) * bucket.rate)
    bucket.at = now
    return bucket.tokens


def _give(bucket: Bucket, now: float, amount: float) -> None:
    """Puts `amount` tokens back into `bucket`, up to its burst."""
    bucket.tokens = min(bucket.burst, _level(bucket, now) + amount)


def _can(bucket: Bucket, now: float, cost: float) -> bool:
    """Whether `bucket` holds `cost` tokens now (refilling it, taking none)."""
    bucket.tokens = min(bucket.burst, bucket.tokens + max(0.0, now - bucket.at) * bucket.rate)
    bucket.at = now
    return bucket.tokens >= cost


def _scale(bucket: Bucket, rate: float, burst: float) -> None:
    """Gives a bucket the rate and burst of the author's trust now; a key that gained standing
    gets the larger burst's difference at once."""
    if burst > bucket.burst:
        bucket.tokens += burst - bucket.burst
    bucket.rate, bucket.burst = rate, burst
    bucket.tokens = min(bucket.tokens, burst)


@dataclass
class Lately:
    """Ids seen in the last `ttl` seconds, at most MAX_LATELY of them, the oldest forgotten
    first: the ids stored lately (node/net/intake.py, replays), a short window."""

    ttl: float
    _at: dict[bytes, float] = field(default_factory=dict, init=False)

    def add(self, ids: Sequence[bytes], now: float) -> None:
        for rid in ids:
            key = rid[:8]
            self._at.pop(key, None)
            self._at[key] = now
        excess = len(self._at) - MAX_LATELY
        if excess > 0:
            # Oldest first: dicts keep insertion order.
            for key in list(self._at)[:excess]:
                del self._at[key]

    def recent(self, rid: bytes, now: float) -> bool:
        """Whether `rid` was added less than `ttl` seconds ago."""
        at = self._at.get(rid[:8])
        return at is not None and now - at < self.ttl

    def __len__(self) -> int:
        return len(self._at)


@dataclass
class _Generation:
    started: float
    ids: Seen
    count: int = 0


def _keyed(rid: bytes) -> bytes:
    """What the filter holds for `rid`: the first 8 bytes are its `hash`, SipHash under a key
    drawn at random for each process, so that a peer cannot grind records whose ids land on
    another record's positions; storage.seen takes its positions from 12 bytes."""
    return (hash(rid) & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little") + rid[8:12]


@dataclass
class Rationed:
    """Ids of records recently left out for their authors' rations (see the theory above).

    A flood holds millions of them, and a table that forgets the oldest would have sync fetch
    the forgotten ones again at every round, from the peer that holds them all. So they are
    kept in two Bloom filters (storage.seen's, 16 bits and 3 positions per id: at most 0.5%
    false positives, 2 MiB per million ids, 8 MiB at most by default), generations of at most
    `capacity` ids and ttl/2 seconds each, the current one and the one before. An id is recent
    for between ttl/2 and ttl seconds after it is added (less once more than `capacity` ids a
    generation come). A false positive only delays a record: sync leaves it for a later round,
    and gossip is not affected. Two of an id's three positions come from its keyed `hash`
    (`_keyed`), so a peer cannot grind ids that look rationed here.
    """

    ttl: float = RATIONED_TTL
    capacity: int = MAX_RATIONED
    _generations: list[_Generation] = field(default_factory=list, init=False)

    def add(self, ids: Sequence[bytes], now: float) -> None:
        for rid in ids:
            generation = self._current(now)
            generation.ids.add(_keyed(rid))
            generation.count += 1

    def _current(self, now: float) -> _Generation:
        generations = self._generations
        if (
            not generations
            or generations[-1].count >= self.capacity
            or now - generations[-1].started >= self.ttl / 2
        ):
            generations.append(_Generation(now, Seen(self.capacity)))
            del generations[:-2]
        return generations[-1]

    def recent(self, rid: bytes, now: float) -> bool:
        """Whether `rid` was added lately (see the class), or, rarely, a false positive."""
        key = _keyed(rid)
        return any(
            g.count and now - g.started < self.ttl and key in g.ids for g in list(self._generations)
        )

    def __len__(self) -> int:
        """Ids added to the generations kept (an id added twice counts twice)."""
        return sum(g.count for g in self._generations)
