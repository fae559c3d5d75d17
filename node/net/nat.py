"""NAT traversal: circuit relay v2, AutoNAT and DCUtR from py-libp2p, run for our node.

Theory of operation. A home node behind NAT can dial out but cannot be dialed. Three protocols
of py-libp2p 0.8.1 get it reachable, and this module runs them with our limits and our peer book:

- Reachability (AutoNAT v1). With `network.reachability = "auto"` the node asks connected peers
  that serve AutoNAT (bootstrap nodes, `relay_hop` nodes and nodes configured "public") to dial
  it back. A server only dials addresses whose IP is the one it sees the request come from, so
  a node behind NAT, which advertises its private address, is answered "refused": PRIVATE. A
  node whose advertised address is the one seen gets OK: PUBLIC. ("public"/"private" skip it.)
- Relay (circuit relay v2). A node with `relay_hop` serves reservations and circuits within
  `relay_*` limits (count, per-peer circuits, duration and bytes per circuit). A PRIVATE node
  reserves a slot on up to `relay_slots` connected relays, renews it before it expires, and
  advertises `/…/p2p/RELAY/p2p-circuit/p2p/ME`: its own host addresses include it (identify
  pushes it to connected peers), and the relay puts it in the peer table it shares by peer
  exchange, so a node that only knows the relay finds the home node. Peers dials such an
  address through `Nat.dial` (py-libp2p's swarm skips relayed addresses).
- Hole punching (DCUtR). Over a relayed connection, both sides exchange their observed
  addresses and dial each other at the same time; if the NATs let the packets through, a direct
  connection replaces the relayed one (py-libp2p's service drives this by itself every 2 s).

Two things py-libp2p leaves open, closed here: a reservation request names the peer to reserve
for, so one connection could fill every slot with made-up peer ids (the relay reserves only for
the peer on the other end); and a reservation outlives its peer's connection for its whole TTL
(the relay drops it when the peer disconnects, as go-libp2p does).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import multiaddr
import trio
from libp2p.host.autonat.autonat import AUTONAT_PROTOCOL_ID, AutoNATService
from libp2p.identity.identify_push.identify_push import push_identify_to_peers
from libp2p.peer.id import ID
from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
from libp2p.relay.circuit_v2.dcutr import DCUtRProtocol
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP
from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
from libp2p.relay.circuit_v2.protocol_buffer import StatusCode, to_proto_status
from libp2p.relay.circuit_v2.resources import RelayLimits
from libp2p.relay.circuit_v2.transport import CircuitV2Transport
from libp2p.relay.circuit_v2.utils import write_delimited_msg
from libp2p.tools.anyio_service import background_trio_service

from node.config import NetworkConfig
from node.errors import RelayRefused
from node.net.core.nat import (
    PRIVATE,
    PUBLIC,
    UNKNOWN,
    Reservation,
    Slots,
    ask_reachability,
    pick_servers,
    verdict,
)
from node.net.host import Stack
from node.net.peers import Peers

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)

# How often the node looks again at its reachability and reservations, at the latest; a new
# connection wakes it sooner.
CHECK_INTERVAL = 30.0
# While the node still wants something (a verdict, a slot), it looks this often: identify may
# not have told yet which of its peers serve AutoNAT or relays when a connection opens.
RETRY_INTERVAL = 2.0
EXCHANGE_TIMEOUT = 15.0
CIRCUIT = "/p2p-circuit"


def is_relayed(addr: str) -> bool:
    """Returns whether a multiaddr goes through a relay."""
    return CIRCUIT in addr


class _Relay(CircuitV2Protocol):
    """py-libp2p's relay, reserving only for the peer on the other end of the stream."""

    def __init__(
        self, host: Any, limits: RelayLimits, per_ip: int, on_reserved: Callable[[ID], None]
    ):
        super().__init__(host, limits=limits, allow_hop=True)
        self._on_reserved = on_reserved
        self._per_ip = per_ip
        # The IP address each reserving peer connected from.
        self._ips: dict[ID, str] = {}

    async def _handle_reserve(self, stream: Any, msg: HopMessage) -> None:
        # py-libp2p reserves for `msg.peer` when present: one connection could then take every
        # slot for made-up peer ids. A reservation is for whoever asks, as the spec says.
        msg.ClearField("peer")
        peer = stream.muxed_conn.peer_id
        ip = _remote_ip(stream)
        if ip is not None and not self.resource_manager.has_reservation(peer):
            # Peer ids cost nothing and an address does: one address holds few slots.
            self.held()
            holding = self.resource_manager._reservations
            if sum(1 for p, at in self._ips.items() if at == ip and p in holding) >= self._per_ip:
                refusal = HopMessage(
                    type=HopMessage.STATUS,
                    status=to_proto_status(StatusCode.RESOURCE_LIMIT_EXCEEDED),
                )
                with contextlib.suppress(Exception), trio.move_on_after(EXCHANGE_TIMEOUT):
                    await write_delimited_msg(stream, refusal)
                return
        if ip is not None:
            # Before the reservation is made: py-libp2p answers, then waits 0.1 s before it
            # returns, and the next request from this address must count this one.
            self._ips[peer] = ip
        await super()._handle_reserve(stream, msg)
        if self.resource_manager.has_reservation(peer):
            self._on_reserved(peer)
        else:
            self._ips.pop(peer, None)

    def drop(self, peer: ID) -> None:
        """Ends `peer`'s reservation (it disconnected)."""
        self.resource_manager._reservations.pop(peer, None)
        self._ips.pop(peer, None)

    def held(self) -> int:
        """Returns how many reservations are held (expired ones dropped first)."""
        self.resource_manager._clean_expired()
        return len(self.resource_manager._reservations)


class Nat:
    """Reachability, relay reservations, relaying for others, and hole punching."""

    def __init__(
        self,
        stack: Stack,
        config: NetworkConfig,
        peers: Peers,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stack = stack
        self._config = config
        self._peers = peers
        self._clock = clock
        self.reachability = {"public": PUBLIC, "private": PRIVATE}.get(config.reachability, UNKNOWN)
        self.slots = Slots(config.relay_slots, config.relay_ttl)
        self.limits = RelayLimits(
            duration=config.relay_duration,
            data=config.relay_bytes,
            max_circuit_conns=config.relay_circuits,
            max_reservations=config.relay_reservations,
            reservation_ttl=config.relay_ttl,
        )
        host = stack.host
        self._protocol: CircuitV2Protocol = (
            _Relay(host, self.limits, config.relay_per_ip, self._reserved)
            if config.relay_hop
            else CircuitV2Protocol(host, limits=self.limits, allow_hop=False)
        )
        # Dials only: reservations are this module's, not the transport's (which would reserve
        # on every relay it dials through).
        self._transport = CircuitV2Transport(
            host, self._protocol, RelayConfig(roles=RelayRole.STOP, limits=self.limits)
        )
        serve = config.relay_hop or config.role == "bootstrap" or config.reachability == "public"
        self._autonat = AutoNATService(host, serve=serve, confirmations=1)  # type: ignore[arg-type]
        self._asked_at: float | None = None
        self._wake = trio.Event()

    # Queries.

    @property
    def reservations(self) -> dict[str, Reservation]:
        """The relay slots held: relay peer id -> reservation."""
        return self.slots.held

    def relay_addrs(self) -> list[str]:
        """Returns the relayed addresses this node holds (without its own /p2p/ part)."""
        return self.slots.addrs()

    def connections(self) -> dict[str, int]:
        """Returns how many connected peers are reached directly, and how many only relayed."""
        direct = relayed = 0
        for conns in self._connections().values():
            if not conns:
                continue
            if _all_relayed(conns):
                relayed += 1
            else:
                direct += 1
        return {"direct": direct, "relayed": relayed}

    def relayed_peers(self) -> list[str]:
        """Returns the connected peers reached only through a relay."""
        return sorted(
            str(p) for p, conns in self._connections().items() if conns and _all_relayed(conns)
        )

    def status(self) -> dict[str, Any]:
        """Returns the node's reachability and relay state, for the API's status."""
        now = self._clock()
        relay = self._protocol if isinstance(self._protocol, _Relay) else None
        return {
            "reachability": self.reachability,
            "hole_punch": self._config.hole_punch,
            "relay_hop": relay is not None,
            "relay_reservations_served": relay.held() if relay else 0,
            "reservations": [
                {"relay": r.relay, "addrs": list(r.addrs), "expires_in": round(r.expires - now)}
                for r in self.reservations.values()
            ],
            "connections": self.connections(),
            "relayed_peers": self.relayed_peers(),
        }

    # Dialing.

    async def dial(self, addr: multiaddr.Multiaddr) -> None:
        """Connects to a peer through a relay: `addr` is `/…/p2p/RELAY/p2p-circuit/p2p/PEER`.

        Raises:
            RelayRefused: the relay refused, or the circuit could not be opened.
        """
        try:
            await self._transport.dial(addr)
        except ConnectionError as exc:
            raise RelayRefused(f"no circuit to {addr}: {exc}") from exc

    # Running.

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        host = self._stack.host
        own = host._addrs_factory  # type: ignore[attr-defined]

        def addrs(candidates: list[multiaddr.Multiaddr]) -> list[multiaddr.Multiaddr]:
            base = list(own(candidates)) if own is not None else list(candidates)
            return [*base, *(multiaddr.Multiaddr(a) for a in self.relay_addrs())]

        host._addrs_factory = addrs  # type: ignore[attr-defined]
        self._peers.on_connected.append(lambda peer: self._wake.set())
        self._peers.on_disconnected.append(self._gone)
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(background_trio_service(self._protocol))
            if self._config.hole_punch:
                await stack.enter_async_context(background_trio_service(DCUtRProtocol(host)))
            task_status.started()
            while True:
                try:
                    await self._step()
                except Exception as exc:  # a peer's failure; the next look tries again
                    log.debug("nat: %s", exc, exc_info=True)
                with trio.move_on_after(RETRY_INTERVAL if self._wanting() else CHECK_INTERVAL):
                    await self._wake.wait()
                self._wake = trio.Event()

    def _wanting(self) -> bool:
        if self._config.reachability == "auto" and self.reachability == UNKNOWN:
            return True
        if self.reachability != PRIVATE:
            return False
        direct = sum(1 for conns in self._connections().values() if not _all_relayed(conns))
        return self.slots.short(direct)

    async def _step(self) -> None:
        now = self._clock()
        if ask_reachability(self._config.reachability, self.reachability, self._asked_at, now):
            await self._ask_reachability(now)
        if self.reachability == PRIVATE:
            await self._reserve(now)

    async def _ask_reachability(self, now: float) -> None:
        connections = self._connections()
        addresses = {peer: _conn_ip(connections.get(peer, [])) for peer in connections}
        servers = self._supporting(AUTONAT_PROTOCOL_ID)
        if not servers:
            return
        asked = pick_servers([(str(s), addresses.get(s) or str(s)) for s in servers], 4)
        self._autonat.dial_results.clear()
        for server in map(ID.from_base58, asked):
            try:
                with trio.fail_after(EXCHANGE_TIMEOUT):
                    await self._autonat.query_server(server, timeout=EXCHANGE_TIMEOUT)
            except Exception as exc:  # the server left or failed: no verdict from it
                log.debug("autonat query to %s failed: %s", server, exc)
        if not self._autonat.dial_results:
            return
        # One vote per server address, the majority wins (node/net/core/nat.py).
        found = verdict(
            (addresses.get(server) or str(server), ok)
            for server, ok in self._autonat.dial_results.items()
        )
        if found != self.reachability:
            log.info("reachability: %s (AutoNAT, %d servers)", found, len(asked))
        self.reachability = found
        self._asked_at = now

    async def _reserve(self, now: float) -> None:
        """Holds `relay_slots` reservations, renewing those that near their end."""
        relays = [str(p) for p in self._supporting(HOP)]
        changed = False
        for relay in self.slots.to_ask(now, relays):
            changed |= await self._reserve_on(ID.from_base58(relay), now)
        if changed:
            try:
                with trio.move_on_after(EXCHANGE_TIMEOUT):
                    await push_identify_to_peers(self._stack.host)
            except Exception as exc:  # a peer that fails the push learns at its next identify
                log.debug("identify push failed: %s", exc)

    async def _reserve_on(self, relay: ID, now: float) -> bool:
        host = self._stack.host
        try:
            with trio.fail_after(EXCHANGE_TIMEOUT):
                stream = await host.new_stream(relay, [HOP])
                try:
                    ok = await self._transport._make_reservation(stream, relay)
                finally:
                    await stream.close()
        except Exception as exc:  # the relay left, or does not serve reservations
            log.debug("reservation on %s failed: %s", relay, exc)
            ok = False
        if not ok:
            return self.slots.refused(str(relay), now)
        expires = float(self._transport._reservations.get(relay, now + self._config.relay_ttl))
        try:
            known = _transport_addrs(host.get_peerstore().addrs(relay))
        except Exception:  # the peerstore forgot the relay (it left meanwhile)
            known = []
        addrs = tuple(f"{a}/p2p/{relay}{CIRCUIT}" for a in known[:2])
        if not addrs:
            return self.slots.refused(str(relay), now)
        if str(relay) not in self.slots.held:
            log.info("reserved a relay slot: %s", ", ".join(addrs))
        return self.slots.granted(Reservation(str(relay), addrs, expires))

    def _supporting(self, protocol: str) -> list[ID]:
        """Connected peers, reached directly, that said (identify) they speak `protocol`."""
        host = self._stack.host
        store = host.get_peerstore()
        out = []
        for peer, conns in self._connections().items():
            if not conns or _all_relayed(conns):
                continue
            try:
                if store.supports_protocols(peer, [protocol]):
                    out.append(peer)
            except Exception:  # identify has not answered yet
                continue
        return out

    def _connections(self) -> dict[ID, list[Any]]:
        return dict(self._stack.host.get_network().connections)

    def _gone(self, peer: ID) -> None:
        if self.slots.lost(str(peer)):
            log.info("lost the relay slot on %s (disconnected)", peer)
            self._wake.set()
        if isinstance(self._protocol, _Relay):
            self._protocol.drop(peer)

    def _reserved(self, peer: ID) -> None:
        """The relay granted `peer` a slot: its relayed address joins what we tell others."""
        self._peers.reserved(peer)  # worth its connection slot (node/net/core/slots.py)
        addrs = [
            multiaddr.Multiaddr(f"{a}/p2p/{self._stack.host.get_id()}{CIRCUIT}")
            for a in _transport_addrs(self._stack.host.get_addrs())
        ]
        if addrs:
            self._stack.host.get_peerstore().add_addrs(peer, addrs, self._config.relay_ttl)
            self._peers.learn_addrs(peer)


def _transport_addrs(addrs: Any) -> list[str]:
    """Returns the dialable transport parts of addresses: no relay, no /p2p/, no wildcard."""
    out = []
    for addr in addrs:
        text = str(addr)
        if is_relayed(text):
            continue
        text = text.split("/p2p/")[0]
        parts = text.split("/")
        if len(parts) > 2 and parts[2] in ("0.0.0.0", "::"):
            continue
        out.append(text)
    return list(dict.fromkeys(out))


def _all_relayed(conns: list[Any]) -> bool:
    return all(_conn_relayed(c) for c in conns)


def _conn_relayed(conn: Any) -> bool:
    try:
        return any(is_relayed(str(a)) for a in conn.get_transport_addresses())
    except Exception:  # a connection closing under us
        return False


def _remote_ip(stream: Any) -> str | None:
    """The IP address the peer on the other end of `stream` (or a muxed connection) connects
    from, if known."""
    try:
        remote = stream.get_remote_address()
    except Exception:  # a transport that does not say
        return None
    return str(remote[0]) if remote else None


def _conn_ip(conns: list[Any]) -> str | None:
    """The IP address a peer's first direct connection comes from, if known."""
    direct = (_remote_ip(conn.muxed_conn) for conn in conns if not _conn_relayed(conn))
    return next((ip for ip in direct if ip is not None), None)
