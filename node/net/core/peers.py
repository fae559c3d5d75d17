"""The peer book: who the node knows, whom it dials, and whom it bans, decided without I/O.

Theory of operation. `PeerBook` takes what happened (a connection opened or closed, a dial that
failed, peers learned from an exchange, an offence, the time passing: `tick(now)`) and returns
what to do about it (`Dial`, `HangUp`, `Block`, `Unblock`, `Save`, `Forget`); node/net/peers.py
performs those actions on the libp2p host and the store. Time is only ever the `now` it is
given, seconds since 1970 (bans and backoff are kept across restarts, so they use wall time),
which is why a test can run hours of protocol time in microseconds.

Rules:
- Dialing. While fewer than `target` peers are connected, `tick` dials known peers (bootstrap
  nodes included) that are not connected, not being dialed, not banned, and whose backoff has
  passed; bootstrap nodes and peers it has reached before come first, at random among them,
  then peers it has only heard of, so that a table full of made-up peers cannot delay its
  real ones: after n failed dials in a row a peer waits BACKOFF_MIN * 2^(n-1) seconds, at most
  BACKOFF_MAX, from its last attempt, and then up to JITTER of that more, an amount each node
  draws for itself (`retry_at`): nodes that a full node refused at the same moments (a burst of
  joiners at the bootstrap nodes) do not all come back at once, to be refused at once again. A
  successful connection resets the count.
- Strikes and bans. An offence (invalid gossip, a bad sync answer) is a strike; MAX_STRIKES
  strikes within STRIKE_WINDOW ban the peer for BAN_SECONDS: it is hung up on, blocked in
  pubsub, not dialed, and hung up on again if it connects. When the ban ends (`tick` at or after
  its end), the peer is unblocked and may be dialed again, and its strikes are forgotten.
- The table. At most MAX_KNOWN peers are kept, judged by evidence of usefulness, not by when
  they arrived. A peer is *verified* once a connection to it succeeded. When the table is full,
  a peer learned from others (unverified) may only take the place of an unverified peer that
  was tried and failed (the one that failed most), else it is not kept: a flood of made-up peers
  can never push out peers the node has reached, nor the ones it has yet to try. A newly
  verified peer takes the place of the unverified peer that failed most, or else of the verified
  peer seen longest ago that is not connected. An exchange is read for at most MAX_LEARNED
  entries. Bootstrap nodes are always candidates to dial.
- Hung up on. A connection that closes within SHORT_LIVED seconds of opening counts as a failed
  dial of that peer (its backoff doubles from where it stood before the connection), as a
  dialer in devp2p treats "too many peers": a full node takes a newcomer in a spare slot,
  answers its peer exchange and hangs up (node/net/core/slots.py), and the newcomer must not
  come back every DIAL_INTERVAL for more.
- Where the node dials. An address a peer told of (by exchange, or identify of a connected
  peer) is kept only if its scope (`scope`: public, private or loopback) is one the node
  allows: public always; private and loopback only if the operator's own addresses (listen,
  announce, bootstrap) are of that scope, or the operator allows them (`network.dial_private`).
  So strangers cannot point the node at the machines of its LAN, or at itself.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import msgpack

MAX_STRIKES = 3
STRIKE_WINDOW = 600.0
BAN_SECONDS = 3600.0
BACKOFF_MIN, BACKOFF_MAX = 1.0, 300.0
# A peer's next dial waits its backoff stretched by up to this much of it, by an amount fixed
# for each (node, peer, failure count): nodes refused together do not all come back together.
JITTER = 0.5
# How often dialing is reconsidered while peers are wanted (connections come and go unseen).
DIAL_INTERVAL = 1.0
MAX_KNOWN = 1000
MAX_ADDRS = 8
# Entries of one peer exchange that are read; the rest are ignored.
MAX_LEARNED = 32
# Peers told to others in an exchange.
MAX_SHARED = 32
# A connection that closes sooner than this after it opened counts as a failed dial.
SHORT_LIVED = 60.0


@dataclass(frozen=True, slots=True)
class KnownPeer:
    """What the node remembers of a peer between runs.

    Attributes:
        peer_id: the peer id, base58.
        addrs: where it listens, without the /p2p/ part, newest first.
        last_seen: when a connection with it last succeeded (0: never: unverified).
        failures: dials that failed in a row since.
        banned_until: when its ban ends (0: never banned).
        tried_at: when it was last dialed.
    """

    peer_id: str
    addrs: tuple[str, ...]
    last_seen: float = 0.0
    failures: int = 0
    banned_until: float = 0.0
    tried_at: float = 0.0

    @property
    def verified(self) -> bool:
        return self.last_seen > 0

    def encode(self) -> bytes:
        return msgpack.packb(  # type: ignore[no-any-return]
            (self.addrs, self.last_seen, self.failures, self.banned_until, self.tried_at),
            use_bin_type=True,
        )

    @classmethod
    def decode(cls, peer_id: str, data: bytes) -> KnownPeer | None:
        """Returns the peer stored under `data`, or None if the entry is unreadable.

        Entries written before `tried_at` existed have four fields; they read as never tried.
        """
        try:
            fields = msgpack.unpackb(data, use_list=False)
            addrs, last_seen, failures, banned_until, *rest = fields
            tried_at = rest[0] if rest else last_seen
            if len(rest) > 1:
                return None
            return cls(
                peer_id,
                tuple(map(str, addrs)),
                float(last_seen),
                int(failures),
                float(banned_until),
                float(tried_at),
            )
        except (ValueError, TypeError, msgpack.UnpackException):
            return None

    def next_dial(self) -> float:
        """Returns when this peer may be dialed again after its failures."""
        if not self.failures:
            return 0.0
        return self.tried_at + min(BACKOFF_MAX, BACKOFF_MIN * (1 << min(self.failures - 1, 16)))


PUBLIC, PRIVATE, LOOPBACK = "public", "private", "loopback"


def scope(addr: str) -> str:
    """Returns where a multiaddr points: PUBLIC (a global IP, or a DNS name), LOOPBACK, or
    PRIVATE (any other IP: private ranges, link-local, shared, reserved, unspecified)."""
    parts = addr.split("/")
    if len(parts) < 3 or parts[1] not in ("ip4", "ip6"):
        return PUBLIC
    try:
        ip = ipaddress.ip_address(parts[2])
    except ValueError:
        return PRIVATE
    if ip.is_loopback:
        return LOOPBACK
    return PUBLIC if ip.is_global else PRIVATE


def scopes_for(own: Iterable[str], *, private: bool = False) -> frozenset[str]:
    """Returns the scopes others may point the node at: public, those of the operator's own
    addresses `own` (listen, announce, bootstrap; unspecified ones say nothing), and private
    and loopback too if `private`."""
    allowed = {PUBLIC}
    for addr in own:
        parts = addr.split("/")
        if len(parts) > 2 and parts[2] in ("0.0.0.0", "::"):
            continue
        allowed.add(scope(addr))
    if private:
        allowed |= {PRIVATE, LOOPBACK}
    return frozenset(allowed)


# Actions: what the book asks the I/O around it to do.


@dataclass(frozen=True, slots=True)
class Dial:
    """Dial `peer_id` at its addresses (each with /p2p/ appended), first that works."""

    peer_id: str
    addrs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HangUp:
    """Close every connection with `peer_id`."""

    peer_id: str


@dataclass(frozen=True, slots=True)
class Block:
    """Ignore `peer_id` in pubsub (its messages and control traffic) until unblocked."""

    peer_id: str


@dataclass(frozen=True, slots=True)
class Unblock:
    """Stop ignoring `peer_id` in pubsub."""

    peer_id: str


@dataclass(frozen=True, slots=True)
class Save:
    """Keep `peer` in the store (replacing what was kept of it)."""

    peer: KnownPeer


@dataclass(frozen=True, slots=True)
class Forget:
    """Drop `peer_id` from the store."""

    peer_id: str


Action = Dial | HangUp | Block | Unblock | Save | Forget


@dataclass
class PeerBook:
    """The node's decisions about peers; see the module's theory of operation.

    Args:
        self_id: this node's peer id (never kept, dialed or shared).
        bootstrap: peer id -> multiaddr (with /p2p/) of each bootstrap node, always dialable.
        target: connected peers below which known peers are dialed.
        rng: chooses among candidates to dial (seeded in tests).
        scopes: the scopes (`scope`) of addresses that others may tell the node to dial
            (node/net/peers.py passes the operator's, `scopes_for`).
    """

    self_id: str
    bootstrap: Mapping[str, str] = field(default_factory=dict)
    target: int = 8
    rng: random.Random = field(default_factory=random.Random)
    scopes: frozenset[str] = frozenset({PUBLIC, PRIVATE, LOOPBACK})
    _known: dict[str, KnownPeer] = field(default_factory=dict, init=False)
    _strikes: dict[str, list[float]] = field(default_factory=dict, init=False)
    _banned: dict[str, float] = field(default_factory=dict, init=False)
    _connected: set[str] = field(default_factory=set, init=False)
    _dialing: set[str] = field(default_factory=set, init=False)
    # Connected peer -> when its connection opened, and its failures before.
    _since: dict[str, tuple[float, int]] = field(default_factory=dict, init=False)
    # Keys this node's jitter (`retry_at`), so that it differs from every other node's.
    _salt: bytes = field(default=b"", init=False)

    def __post_init__(self) -> None:
        self._salt = self.rng.randbytes(16)

    # Inputs.

    def load(self, peers: Iterable[KnownPeer], now: float) -> list[Action]:
        """Takes the peers kept in the store at start; bans still running are blocked again.

        A store written by older code may hold more than MAX_KNOWN peers: the verified ones
        seen last are kept, and the rest forgotten.
        """
        ranked = sorted(peers, key=lambda p: (p.verified, p.last_seen, -p.failures), reverse=True)
        actions: list[Action] = []
        for peer in ranked:
            if peer.peer_id == self.self_id or len(self._known) >= MAX_KNOWN:
                actions.append(Forget(peer.peer_id))
                continue
            self._known[peer.peer_id] = peer
            if peer.banned_until > now:
                self._banned[peer.peer_id] = peer.banned_until
                actions.append(Block(peer.peer_id))
        return actions

    def connected(self, peer_id: str, now: float, addrs: Iterable[str] = ()) -> list[Action]:
        """A connection with `peer_id` opened (either way); `addrs` are where it listens."""
        self._dialing.discard(peer_id)
        if self.is_banned(peer_id, now):
            return [HangUp(peer_id)]
        self._connected.add(peer_id)
        current = self._known.get(peer_id) or KnownPeer(peer_id, ())
        self._since.setdefault(peer_id, (now, current.failures))
        seen = replace(current, addrs=_merge(addrs, current.addrs), last_seen=now, failures=0)
        return self._keep(seen, verified=True)

    def disconnected(self, peer_id: str, now: float) -> list[Action]:
        """Every connection with `peer_id` closed."""
        self._connected.discard(peer_id)
        since = self._since.pop(peer_id, None)
        current = self._known.get(peer_id)
        if since is None or current is None or now - since[0] >= SHORT_LIVED:
            return []
        # Hung up on soon after connecting (a full node's spare slot): a failed dial.
        failed = replace(current, failures=since[1] + 1, tried_at=now)
        self._known[peer_id] = failed
        return [Save(failed)]

    def dialing(self, peer_id: str, addrs: Iterable[str], now: float) -> list[Action]:
        """The user (or the node) dials `peer_id` directly: remember where, and that it is tried."""
        if peer_id == self.self_id:
            return []
        self._dialing.add(peer_id)
        current = self._known.get(peer_id) or KnownPeer(peer_id, ())
        return self._keep(
            replace(current, addrs=_merge(addrs, current.addrs), tried_at=now),
            verified=current.verified,
        )

    def dial_succeeded(self, peer_id: str, now: float) -> list[Action]:
        """A dial of `peer_id` ended with a connection (a new one, reported by `connected`, or
        one that was open already)."""
        self._dialing.discard(peer_id)
        return []

    def dial_failed(self, peer_id: str, now: float) -> list[Action]:
        """A dial of `peer_id` failed at every address."""
        self._dialing.discard(peer_id)
        current = self._known.get(peer_id)
        if current is None:
            return []
        failed = replace(current, failures=current.failures + 1, tried_at=now)
        self._known[peer_id] = failed
        return [Save(failed)]

    def learned_addrs(self, peer_id: str, addrs: Iterable[str]) -> list[Action]:
        """Identify told where a connected peer listens."""
        current = self._known.get(peer_id)
        if current is None or peer_id == self.self_id:
            return []
        merged = _merge(self._allowed(addrs), current.addrs)
        if merged == current.addrs:
            return []
        updated = replace(current, addrs=merged)
        self._known[peer_id] = updated
        return [Save(updated)]

    def learned(self, entries: Iterable[tuple[str, tuple[str, ...]]], now: float) -> list[Action]:
        """A peer exchange told us of these (peer id, addresses): unverified until reached."""
        actions: list[Action] = []
        for count, (peer_id, addrs) in enumerate(entries):
            if count >= MAX_LEARNED:
                break
            addrs = self._allowed(addrs)
            if peer_id == self.self_id or not addrs or self.is_banned(peer_id, now):
                continue
            current = self._known.get(peer_id)
            if current is None:
                actions += self._keep(KnownPeer(peer_id, _merge(addrs, ())), verified=False)
            elif not current.verified:
                # What others say cannot change what we found ourselves: only unverified entries
                # take new addresses from an exchange.
                merged = _merge(current.addrs, addrs)
                if merged != current.addrs:
                    actions += self._keep(replace(current, addrs=merged), verified=False)
        return actions

    def offence(self, peer_id: str, reason: str, now: float) -> list[Action]:
        """`peer_id` sent something it should have known was invalid: a strike."""
        strikes = [t for t in self._strikes.get(peer_id, []) if now - t < STRIKE_WINDOW]
        strikes.append(now)
        self._strikes[peer_id] = strikes
        if len(strikes) < MAX_STRIKES or self.is_banned(peer_id, now):
            return []
        return self.ban(peer_id, now)

    def ban(self, peer_id: str, now: float, seconds: float = BAN_SECONDS) -> list[Action]:
        """Bans `peer_id` for `seconds` from `now`."""
        until = now + seconds
        self._banned[peer_id] = until
        self._dialing.discard(peer_id)
        current = self._known.get(peer_id) or KnownPeer(peer_id, ())
        banned = replace(current, banned_until=until)
        self._known[peer_id] = banned
        return [Block(peer_id), HangUp(peer_id), Save(banned)]

    def tick(self, now: float, connected: Iterable[str] | None = None) -> list[Action]:
        """Time passed: ends bans that are over, and dials peers while fewer than wanted.

        Args:
            now: the time.
            connected: the peers the host says are connected, if the caller knows (events may
                have been missed); otherwise the book's own count from events.
        """
        if connected is not None:
            self._connected = set(connected) - {self.self_id}
            # Closed unseen, long ago: nothing more to learn from how long it lasted.
            for peer_id, (opened, _) in list(self._since.items()):
                if peer_id not in self._connected and now - opened >= SHORT_LIVED:
                    del self._since[peer_id]
        actions: list[Action] = []
        for peer_id in [p for p, until in self._banned.items() if until <= now]:
            del self._banned[peer_id]
            self._strikes.pop(peer_id, None)
            actions.append(Unblock(peer_id))
        wanted = self.target - len(self._connected) - len(self._dialing)
        if wanted > 0:
            candidates = [p for p in self._candidates() if self._dialable(p, now)]
            self.rng.shuffle(candidates)
            # Peers with evidence of use first: bootstrap nodes and peers reached before, then
            # those only heard of (sort is stable: random within each group).
            candidates.sort(key=lambda p: not (p.verified or p.peer_id in self.bootstrap))
            for peer in candidates[:wanted]:
                if peer.peer_id not in self._known:
                    # A bootstrap node tried for the first time: kept, so that its failures
                    # count towards its backoff like any other peer's.
                    actions += self._keep(replace(peer, tried_at=now), verified=True)
                self._dialing.add(peer.peer_id)
                actions.append(Dial(peer.peer_id, peer.addrs))
        return actions

    def next_wakeup(self, now: float) -> float:
        """Returns when `tick` has work next: a ban ending, or the next look for peers."""
        wake = min(self._banned.values(), default=float("inf"))
        if len(self._connected) + len(self._dialing) < self.target:
            wake = min(wake, now + DIAL_INTERVAL)
        return wake

    # Queries.

    def retry_at(self, peer: KnownPeer) -> float:
        """When `peer` may be dialed again: after its backoff (`KnownPeer.next_dial`), plus up
        to JITTER of the backoff, an amount this node draws for the peer and its failure count."""
        at = peer.next_dial()
        if not peer.failures:
            return at
        digest = hashlib.blake2b(
            f"{peer.peer_id}/{peer.failures}".encode(), key=self._salt, digest_size=8
        ).digest()
        return at + (at - peer.tried_at) * JITTER * int.from_bytes(digest) / 2**64

    def is_banned(self, peer_id: str, now: float) -> bool:
        until = self._banned.get(peer_id)
        return until is not None and until > now

    def known(self) -> list[KnownPeer]:
        """Every peer in the table."""
        return list(self._known.values())

    def get(self, peer_id: str) -> KnownPeer | None:
        return self._known.get(peer_id)

    def share(self, now: float) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Peers to tell others about: verified, not banned, most recently seen first."""
        good = [
            p
            for p in self._known.values()
            if p.verified and p.addrs and not self.is_banned(p.peer_id, now)
        ]
        good.sort(key=lambda p: -p.last_seen)
        return tuple((p.peer_id, p.addrs) for p in good[:MAX_SHARED])

    # The table.

    def _allowed(self, addrs: Iterable[str]) -> tuple[str, ...]:
        return tuple(a for a in addrs if scope(a) in self.scopes)

    def _candidates(self) -> list[KnownPeer]:
        known = dict(self._known)
        for peer_id, addr in self.bootstrap.items():
            if peer_id not in known:
                known[peer_id] = KnownPeer(peer_id, (addr.split("/p2p/")[0],))
        return [p for p in known.values() if p.addrs and p.peer_id != self.self_id]

    def _dialable(self, peer: KnownPeer, now: float) -> bool:
        return (
            peer.peer_id not in self._connected
            and peer.peer_id not in self._dialing
            and not self.is_banned(peer.peer_id, now)
            and self.retry_at(peer) <= now
        )

    def _keep(self, peer: KnownPeer, *, verified: bool) -> list[Action]:
        """Keeps `peer` in the table, evicting an unverified peer if it is full (see the rules)."""
        if peer.peer_id in self._known or len(self._known) < MAX_KNOWN:
            self._known[peer.peer_id] = peer
            return [Save(peer)]
        busy = self._connected | self._dialing | set(self._banned)
        failed = [
            p
            for p in self._known.values()
            if not p.verified and p.failures > 0 and p.peer_id not in busy
        ]
        if failed:
            victim = max(failed, key=lambda p: (p.failures, -p.tried_at))
        elif verified:
            others = [p for p in self._known.values() if p.peer_id not in busy]
            if not others:
                return []
            # Unverified peers not tried yet first, then the verified one seen longest ago.
            victim = min(others, key=lambda p: (p.verified, p.last_seen))
        else:
            return []  # full of peers worth more than this one
        del self._known[victim.peer_id]
        self._known[peer.peer_id] = peer
        return [Forget(victim.peer_id), Save(peer)]


def _merge(first: Iterable[str], then: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *then)))[:MAX_ADDRS]
