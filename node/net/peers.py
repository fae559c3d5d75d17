"""Peers: the I/O around the peer book (node/net/core/peers.py), on the libp2p host and the store.

The book decides which peers the node knows, dials, blocks and bans; this module feeds it what
the host reports (connections opened and closed, dials that failed, addresses identify learned)
and what the rest of the node reports (offences, peers learned by exchange), and performs the
book's actions: dialing, hanging up, blocking in pubsub, and keeping the table in the store.

py-libp2p's own persistent peerstores are not used (its LevelDB one is broken, its SQLite one
dialed stale ports after a restart): the table lives in `storage.State`, written through the
node's gateway by one writer task, which coalesces what changed meanwhile, so that a burst of
connections costs one write per peer at most.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import multiaddr
import trio
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.rcmgr import Direction

from node.config import NetworkConfig
from node.gateway import Gateway
from node.net.core.peers import (
    MAX_ADDRS,
    Action,
    Block,
    Dial,
    Forget,
    HangUp,
    KnownPeer,
    PeerBook,
    Save,
    Unblock,
    scopes_for,
)
from node.net.core.slots import Slots
from node.net.core.ticker import Ticker
from node.net.host import Stack

if TYPE_CHECKING:
    # trio-typing's stubs (a py-libp2p dependency) shadow trio's own annotations for mypy.
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)

DIAL_TIMEOUT = 10.0
# Peers read from the store at start; the book keeps the best MAX_KNOWN and forgets the rest.
LOAD_AT_MOST = 20_000

Listener = Callable[[ID], None]
CircuitDialer = Callable[[multiaddr.Multiaddr], Awaitable[None]]


class _Notifee(INotifee):
    def __init__(self, peers: Peers) -> None:
        self._peers = peers

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        outbound = getattr(conn, "direction", None) == Direction.OUTBOUND
        self._peers._connected(conn.muxed_conn.peer_id, outbound=outbound)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._peers._disconnected(conn.muxed_conn.peer_id)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass


class Peers:
    """Dials, remembers, exchanges and penalizes peers, as the peer book decides."""

    def __init__(
        self,
        stack: Stack,
        gateway: Gateway,
        config: NetworkConfig,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._stack = stack
        self._gateway = gateway
        self._clock = clock
        bootstrap = {
            str(info_from_p2p_addr(multiaddr.Multiaddr(a)).peer_id): a for a in config.bootstrap
        }
        own = (*config.listen, *config.announce, *config.bootstrap)
        self.book = PeerBook(
            str(stack.host.get_id()),
            bootstrap,
            # A node does not dial past its own limit: it would only trim what it dialed.
            min(config.target_peers, config.max_connections),
            rng or random.Random(),
            scopes_for(own, private=config.dial_private),
        )
        # Past max_connections, connections are taken in spare slots and trimmed (core/slots.py).
        self.slots = Slots(config.max_connections, config.grace_period)
        self._ticker = Ticker(self._tick, self._next_wakeup, self._apply, clock)
        self._nursery: trio.Nursery | None = None
        # Changes of the table not written yet: peer id -> the peer, or None to forget it.
        self._unsaved: dict[str, KnownPeer | None] = {}
        self._save_wanted = trio.Event()
        # Called with each peer whose connection opened, or whose last connection closed.
        self.on_connected: list[Listener] = []
        self.on_disconnected: list[Listener] = []
        # Dials relayed addresses (/p2p-circuit), which the host's swarm skips (node.net.nat).
        self.circuit_dialer: CircuitDialer | None = None

    # Queries.

    @property
    def self_id(self) -> ID:
        return self._stack.host.get_id()

    def connected(self) -> list[ID]:
        return list(self._stack.host.get_connected_peers())

    def known(self) -> list[KnownPeer]:
        """Returns every peer in the table."""
        return self.book.known()

    def share(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Returns peers to tell others about: reached, not banned, recently seen first."""
        return self.book.share(self._clock())

    def is_banned(self, peer: ID | str) -> bool:
        return self.book.is_banned(str(peer), self._clock())

    # Inputs from the rest of the node.

    def learned(self, entries: Sequence[tuple[str, tuple[str, ...]]]) -> None:
        """Takes the peers another peer told us of (peer exchange)."""
        valid = []
        for peer_id, addrs in entries:
            try:
                ID.from_base58(peer_id)
            except Exception:  # not a peer id; the rest of the list may still be good
                continue
            valid.append((peer_id, addrs))
        self._apply(self.book.learned(valid, self._clock()))

    def learn_addrs(self, peer: ID) -> None:
        """Records the addresses a connected peer announced (identify fills the peerstore)."""
        addrs = self._addrs_of(peer)
        if addrs:
            self._apply(self.book.learned_addrs(str(peer), addrs))

    def served(self, peer: ID) -> None:
        """This node answered `peer`'s peer exchange: a surplus connection may go soon."""
        self.slots.served(str(peer), self._clock())
        if self.slots.count() > self.slots.limit:  # else nothing to trim: no tick per request
            self._ticker.poke()

    def useful(self, peer: ID) -> None:
        """Records `peer` sent were stored: it is worth its slot."""
        self.slots.useful(str(peer), self._clock())

    def reserved(self, peer: ID) -> None:
        """`peer` holds a relay reservation on this node: its relayed address goes through us."""
        self.slots.reserved(str(peer))

    def penalize(self, peer: ID, reason: str) -> None:
        """Counts a strike against `peer`; at MAX_STRIKES within the window it is banned."""
        log.info("strike against %s: %s", peer, reason[:200])
        self._apply(self.book.offence(str(peer), reason, self._clock()))

    def ban(self, peer: ID) -> None:
        """Bans `peer` now (for BAN_SECONDS)."""
        self._apply(self.book.ban(str(peer), self._clock()))

    async def dial(self, addr: multiaddr.Multiaddr) -> ID:
        """Connects to a peer by multiaddr (with /p2p/) and remembers it.

        Raises:
            ConnectionRefusedError: the peer is banned.
            Exception: whatever py-libp2p raises when the dial fails (it raises many types).
        """
        info = info_from_p2p_addr(addr)
        key = str(info.peer_id)
        if self.is_banned(key):
            raise ConnectionRefusedError(f"{key} is banned")
        base = _base(str(addr), key)
        self._apply(self.book.dialing(key, (base,), self._clock()))
        try:
            with trio.fail_after(DIAL_TIMEOUT):
                await self._connect(multiaddr.Multiaddr(f"{base}/p2p/{key}"))
        except BaseException:
            self._apply(self.book.dial_failed(key, self._clock()))
            raise
        # The host's notifee reports a new connection (`_connected`), as for every other one.
        self._apply(self.book.dial_succeeded(key, self._clock()))
        return info.peer_id

    # Running.

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        loaded = await self._gateway.read(_load, self._gateway)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._apply(self.book.load(loaded, self._clock()))
            self._stack.host.get_network().register_notifee(_Notifee(self))
            nursery.start_soon(self._saver)
            nursery.start_soon(self._ticker.run)
            task_status.started()

    def _tick(self, now: float) -> list[Action]:
        connected = {str(p) for p in self.connected()}
        for gone in self.slots.missing(connected):  # closed unseen (an event was missed)
            self.slots.closed(gone)
        mesh = {str(p) for peers in self._stack.gossipsub.mesh.values() for p in peers}
        return [*self.book.tick(now, connected), *self.slots.tick(now, mesh)]

    def _next_wakeup(self, now: float) -> float:
        return min(self.book.next_wakeup(now), self.slots.next_wakeup(now))

    def _connected(self, peer: ID, *, outbound: bool = False) -> None:
        key, now = str(peer), self._clock()
        before = self.book.get(key)
        actions = self.book.connected(key, now, self._addrs_of(peer))
        self._apply(actions)
        if not any(isinstance(a, HangUp) for a in actions):
            self.slots.opened(
                key,
                now,
                outbound=outbound,
                protected=key in self.book.bootstrap,
                known=before is not None and before.verified,
            )
            for listener in self.on_connected:
                listener(peer)

    def _disconnected(self, peer: ID) -> None:
        if peer in self._stack.host.get_connected_peers():
            return  # another connection with it is still open
        self.slots.closed(str(peer))
        self._apply(self.book.disconnected(str(peer), self._clock()))
        for listener in self.on_disconnected:
            listener(peer)

    def _apply(self, actions: Sequence[Action]) -> None:
        """Performs the book's actions: at once where they cannot block, in tasks otherwise."""
        for action in actions:
            if isinstance(action, Save):
                self._unsaved[action.peer.peer_id] = action.peer
                self._save_wanted.set()
            elif isinstance(action, Forget):
                self._unsaved[action.peer_id] = None
                self._save_wanted.set()
            elif isinstance(action, Block):
                self._stack.pubsub.add_to_blacklist(ID.from_base58(action.peer_id))
                log.warning("banned %s", action.peer_id)
            elif isinstance(action, Unblock):
                self._stack.pubsub.remove_from_blacklist(ID.from_base58(action.peer_id))
                log.info("the ban of %s is over", action.peer_id)
            elif isinstance(action, HangUp):
                self._spawn(self._hang_up, ID.from_base58(action.peer_id))
            elif isinstance(action, Dial):
                self._spawn(self._try_dial, action)
        if actions:
            self._ticker.poke()

    def _spawn(self, fn: Callable[..., object], *args: object) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)  # type: ignore[arg-type]

    async def _try_dial(self, dial: Dial) -> None:
        for addr in dial.addrs:
            try:
                with trio.fail_after(DIAL_TIMEOUT):
                    await self._connect(multiaddr.Multiaddr(f"{addr}/p2p/{dial.peer_id}"))
            except Exception as exc:  # any dial failure: unreachable, refused, bad address
                log.debug("dial %s at %s failed: %s", dial.peer_id, addr, exc)
                continue
            # The host's notifee reports a new connection (`_connected`).
            self._apply(self.book.dial_succeeded(dial.peer_id, self._clock()))
            return
        self._apply(self.book.dial_failed(dial.peer_id, self._clock()))

    async def _connect(self, addr: multiaddr.Multiaddr) -> None:
        """Connects to the peer at `addr` (with /p2p/), directly or through a relay."""
        if "/p2p-circuit" in str(addr):
            if self.circuit_dialer is None:
                raise ConnectionRefusedError(f"{addr} is relayed and this node dials no relays")
            await self.circuit_dialer(addr)
        else:
            await self._stack.host.connect(info_from_p2p_addr(addr))

    async def _hang_up(self, peer: ID) -> None:
        with trio.move_on_after(DIAL_TIMEOUT):
            try:
                await self._stack.host.disconnect(peer)
            except Exception as exc:  # already gone, or the swarm is closing
                log.debug("disconnect %s: %s", peer, exc)

    async def _saver(self) -> None:
        """Writes the table's changes to the store, all that piled up in one go."""
        while True:
            await self._save_wanted.wait()
            self._save_wanted = trio.Event()
            batch, self._unsaved = self._unsaved, {}
            try:
                await self._gateway.write(_save, self._gateway, batch)
            except Exception as exc:  # StorageError: kept in memory; written with the next change
                log.debug("could not keep %d peers in the store: %s", len(batch), exc)
                self._unsaved = {**batch, **self._unsaved}

    def _addrs_of(self, peer: ID) -> tuple[str, ...]:
        try:
            addrs = self._stack.host.get_peerstore().addrs(peer)
        except Exception:  # the peerstore has no entry for it
            return ()
        return tuple(dict.fromkeys(_base(str(a), str(peer)) for a in addrs))[:MAX_ADDRS]


def _base(addr: str, peer_id: str) -> str:
    """Returns `addr` without its trailing /p2p/<peer_id>. A relayed address keeps its relay's
    /p2p/ part: `/ip4/…/p2p/RELAY/p2p-circuit/p2p/PEER` -> `/ip4/…/p2p/RELAY/p2p-circuit`."""
    suffix = f"/p2p/{peer_id}"
    if addr.endswith(suffix):
        return addr[: -len(suffix)]
    if "/p2p-circuit" in addr:
        return addr
    return addr.split("/p2p/")[0]


def _load(gateway: Gateway) -> list[KnownPeer]:
    state = gateway.store.state
    out: list[KnownPeer] = []
    cursor = None
    while len(out) < LOAD_AT_MOST:
        page = state.peers(cursor=cursor, limit=1000)
        out.extend(p for pid, data in page.items if (p := KnownPeer.decode(pid, data)))
        if page.cursor is None:
            break
        cursor = page.cursor
    return out


def _save(gateway: Gateway, batch: dict[str, KnownPeer | None]) -> None:
    state = gateway.store.state
    for peer_id, peer in batch.items():
        if peer is None:
            state.remove_peer(peer_id)
        else:
            state.put_peer(peer_id, peer.encode())
