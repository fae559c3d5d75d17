"""Known peers: remembered in our store, redialed with backoff, exchanged, and penalized.

py-libp2p's own persistent peerstores are not used (its LevelDB one is broken, its SQLite one
dialed stale ports after a restart); every peer we have reached is kept in `storage.State` with
its addresses, last success and failures. While fewer than `target_peers` are connected, the
dial loop tries known peers whose backoff has passed (1 s doubling to 5 min; bootstrap nodes too,
since they are the way back in). Each new connection triggers a sync, and a peer exchange: the
peer's known peers are added to ours, so a node that knows one bootstrap node finds the others.

Penalties. A peer that sends invalid gossip or sync answers gets a strike; at MAX_STRIKES within
STRIKE_WINDOW it is banned for BAN_SECONDS: disconnected, blacklisted in pubsub, not dialed,
and hung up on if it connects again.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import msgpack
import multiaddr
import trio
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from node.config import NetworkConfig
from node.net.host import Stack
from storage import Store

if TYPE_CHECKING:
    # trio-typing's stubs (a py-libp2p dependency) shadow trio's own annotations for mypy.
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)

MAX_STRIKES = 3
STRIKE_WINDOW = 600.0
BAN_SECONDS = 3600.0
BACKOFF_MIN, BACKOFF_MAX = 1.0, 300.0
DIAL_TIMEOUT = 10.0
DIAL_INTERVAL = 1.0
MAX_KNOWN = 1000
MAX_ADDRS = 8


@dataclass(frozen=True, slots=True)
class KnownPeer:
    """What we remember of a peer between runs."""

    peer_id: str
    addrs: tuple[str, ...]
    last_seen: float = 0.0
    failures: int = 0
    banned_until: float = 0.0

    def encode(self) -> bytes:
        return msgpack.packb(  # type: ignore[no-any-return]
            (self.addrs, self.last_seen, self.failures, self.banned_until), use_bin_type=True
        )

    @classmethod
    def decode(cls, peer_id: str, data: bytes) -> KnownPeer | None:
        """Returns the peer stored under `data`, or None if the entry is unreadable."""
        try:
            addrs, last_seen, failures, banned_until = msgpack.unpackb(data, use_list=False)
            return cls(peer_id, tuple(map(str, addrs)), last_seen, failures, banned_until)
        except (ValueError, TypeError, msgpack.UnpackException):
            return None

    def next_dial(self) -> float:
        """Returns when this peer may be dialed again after its failures."""
        if not self.failures:
            return 0.0
        return self.last_seen + min(BACKOFF_MAX, BACKOFF_MIN * (1 << min(self.failures - 1, 16)))


OnConnected = Callable[[ID], Awaitable[None]]


class _Notifee(INotifee):
    def __init__(self, events: trio.MemorySendChannel[tuple[str, ID]]) -> None:
        self._events = events

    def _emit(self, event: str, conn: INetConn) -> None:
        # If the peer manager is behind or stopped the event is dropped: the dial loop looks at
        # the connections again anyway.
        with contextlib.suppress(
            trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError
        ):
            self._events.send_nowait((event, conn.muxed_conn.peer_id))

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._emit("connected", conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._emit("disconnected", conn)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass


class Peers:
    """Dials, remembers, exchanges and penalizes peers."""

    def __init__(
        self,
        stack: Stack,
        store: Store,
        config: NetworkConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stack = stack
        self._store = store
        self._config = config
        self._clock = clock
        self._strikes: dict[ID, list[float]] = {}
        self._nursery: trio.Nursery | None = None
        self._bootstrap = {
            str(info_from_p2p_addr(multiaddr.Multiaddr(a)).peer_id): a for a in config.bootstrap
        }
        self.banned: set[str] = set()

    @property
    def self_id(self) -> ID:
        return self._stack.host.get_id()

    def connected(self) -> list[ID]:
        return list(self._stack.host.get_connected_peers())

    def known(self) -> list[KnownPeer]:
        """Returns every peer in the store (bounded by MAX_KNOWN entries)."""
        out: list[KnownPeer] = []
        cursor = None
        while len(out) < MAX_KNOWN:
            page = self._store.state.peers(cursor=cursor, limit=200)
            out.extend(p for pid, data in page.items if (p := KnownPeer.decode(pid, data)))
            if page.cursor is None:
                break
            cursor = page.cursor
        return out

    def remember(self, peer_id: str, addrs: tuple[str, ...]) -> None:
        """Adds or refreshes a peer's addresses without touching its history."""
        if peer_id == str(self.self_id):
            return
        current = self._get(peer_id)
        merged = tuple(dict.fromkeys((*addrs, *(current.addrs if current else ()))))[:MAX_ADDRS]
        peer = replace(current, addrs=merged) if current else KnownPeer(peer_id, merged)
        self._put(peer)

    def learn_addrs(self, peer: ID) -> None:
        """Records the addresses a connected peer announced (identify fills the peerstore)."""
        addrs = self._addrs_of(str(peer))
        if addrs:
            self.remember(str(peer), addrs)

    def share(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Returns peers to tell others about: reachable recently, not banned."""
        now = self._clock()
        good = [p for p in self.known() if p.last_seen and p.banned_until <= now and p.addrs]
        good.sort(key=lambda p: -p.last_seen)
        return tuple((p.peer_id, p.addrs) for p in good[:32])

    def penalize(self, peer: ID, reason: str) -> None:
        """Counts a strike against `peer`; bans it at MAX_STRIKES within STRIKE_WINDOW."""
        now = self._clock()
        strikes = [t for t in self._strikes.get(peer, []) if now - t < STRIKE_WINDOW]
        strikes.append(now)
        self._strikes[peer] = strikes
        log.info("strike %d against %s: %s", len(strikes), peer, reason[:200])
        if len(strikes) >= MAX_STRIKES:
            self.ban(peer)

    def ban(self, peer: ID) -> None:
        key = str(peer)
        self.banned.add(key)
        self._stack.pubsub.add_to_blacklist(peer)
        current = self._get(key) or KnownPeer(key, ())
        self._put(replace(current, banned_until=self._clock() + BAN_SECONDS))
        log.warning("banned %s for %d s", peer, BAN_SECONDS)
        if self._nursery is not None:
            self._nursery.start_soon(self._hang_up, peer)

    def is_banned(self, peer: ID | str) -> bool:
        key = str(peer)
        if key in self.banned:
            return True
        known = self._get(key)
        return known is not None and known.banned_until > self._clock()

    async def dial(self, addr: multiaddr.Multiaddr) -> ID:
        """Connects to a peer by multiaddr and remembers it; raises on failure."""
        info = info_from_p2p_addr(addr)
        key = str(info.peer_id)
        if self.is_banned(key):
            raise ConnectionRefusedError(f"{key} is banned")
        base = str(addr).split("/p2p/")[0]
        self.remember(key, (base,))
        try:
            with trio.fail_after(DIAL_TIMEOUT):
                await self._stack.host.connect(info)
        except BaseException:
            current = self._get(key) or KnownPeer(key, (base,))
            self._put(replace(current, failures=current.failures + 1, last_seen=self._clock()))
            raise
        self._seen(key)
        return info.peer_id

    async def run(
        self,
        on_connected: OnConnected,
        *,
        task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        send, events = trio.open_memory_channel[tuple[str, ID]](256)
        self._stack.host.get_network().register_notifee(_Notifee(send))
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._events, events, on_connected)
            nursery.start_soon(self._dialer)
            task_status.started()

    async def _events(
        self, events: trio.MemoryReceiveChannel[tuple[str, ID]], on_connected: OnConnected
    ) -> None:
        assert self._nursery is not None
        async for event, peer in events:
            if event != "connected":
                continue
            if self.is_banned(peer):
                self._nursery.start_soon(self._hang_up, peer)
                continue
            self._seen(str(peer))
            self._nursery.start_soon(on_connected, peer)

    async def _dialer(self) -> None:
        assert self._nursery is not None
        dialing: set[str] = set()
        while True:
            connected = {str(p) for p in self.connected()}
            wanted = self._config.target_peers - len(connected)
            if wanted > 0:
                now = self._clock()
                candidates = [
                    p
                    for p in self._candidates()
                    if p.peer_id not in connected
                    and p.peer_id not in dialing
                    and p.next_dial() <= now
                    and p.banned_until <= now
                ]
                random.shuffle(candidates)
                for peer in candidates[:wanted]:
                    dialing.add(peer.peer_id)
                    self._nursery.start_soon(self._try_dial, peer, dialing)
            await trio.sleep(DIAL_INTERVAL)

    def _candidates(self) -> list[KnownPeer]:
        known = {p.peer_id: p for p in self.known()}
        for peer_id, addr in self._bootstrap.items():
            if peer_id not in known:
                known[peer_id] = KnownPeer(peer_id, (addr.split("/p2p/")[0],))
        return [p for p in known.values() if p.addrs]

    async def _try_dial(self, peer: KnownPeer, dialing: set[str]) -> None:
        try:
            for addr in peer.addrs:
                try:
                    await self.dial(multiaddr.Multiaddr(f"{addr}/p2p/{peer.peer_id}"))
                    return
                except Exception as exc:  # any dial failure: unreachable, refused, bad address
                    log.debug("dial %s at %s failed: %s", peer.peer_id, addr, exc)
        finally:
            dialing.discard(peer.peer_id)

    async def _hang_up(self, peer: ID) -> None:
        with trio.move_on_after(DIAL_TIMEOUT):
            try:
                await self._stack.host.disconnect(peer)
            except Exception as exc:  # already gone, or the swarm is closing
                log.debug("disconnect %s: %s", peer, exc)

    def _get(self, peer_id: str) -> KnownPeer | None:
        data = self._store.state.peer(peer_id)
        return KnownPeer.decode(peer_id, data) if data is not None else None

    def _put(self, peer: KnownPeer) -> None:
        self._store.state.put_peer(peer.peer_id, peer.encode())

    def _seen(self, peer_id: str) -> None:
        current = self._get(peer_id)
        if current is None:
            addrs = self._addrs_of(peer_id)
            current = KnownPeer(peer_id, addrs)
        self._put(replace(current, last_seen=self._clock(), failures=0))

    def _addrs_of(self, peer_id: str) -> tuple[str, ...]:
        try:
            addrs = self._stack.host.get_peerstore().addrs(ID.from_base58(peer_id))
        except Exception:  # the peerstore has no entry for it
            return ()
        return tuple(dict.fromkeys(str(a).split("/p2p/")[0] for a in addrs))[:MAX_ADDRS]
