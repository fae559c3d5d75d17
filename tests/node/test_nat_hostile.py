"""Hostile peers against a relay (circuit relay v2 hop), over real hosts on 127.0.0.1: each
attack is contained by the relay's limits, and the relay keeps serving honest peers."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.host.ping import ID as PING
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.relay.circuit_v2.config import RelayConfig, RelayRole
from libp2p.relay.circuit_v2.pb.circuit_pb2 import HopMessage
from libp2p.relay.circuit_v2.protocol import PROTOCOL_ID as HOP
from libp2p.relay.circuit_v2.protocol import CircuitV2Protocol
from libp2p.relay.circuit_v2.protocol_buffer import StatusCode
from libp2p.relay.circuit_v2.transport import CircuitV2Transport
from libp2p.relay.circuit_v2.utils import read_delimited_msg, write_delimited_msg

from node.net.nat import _Relay
from node.net.node import Node
from tests.support.hostile import bare_peer
from tests.support.nodes import running, wait_for

pytestmark = pytest.mark.slow

HOME = {"reachability": "private", "hole_punch": False, "target_peers": 1}


@asynccontextmanager
async def attacker(relay: Node) -> AsyncIterator[IHost]:
    """A bare py-libp2p host connected to the relay; it hangs up when the block exits (a
    stopped py-libp2p host leaves its connections open)."""
    async with bare_peer() as (host, _):
        await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(relay.addrs()[0])))
        try:
            yield host
        finally:
            with trio.move_on_after(5):
                await host.disconnect(relay.peer_id)


async def reserve(host: IHost, relay: Node, *, for_peer: bytes | None = None) -> int:
    """Sends a RESERVE to the relay (naming `for_peer`, if given); returns the status code."""
    with trio.fail_after(10):
        stream = await host.new_stream(relay.peer_id, [HOP])
        msg = HopMessage(type=HopMessage.RESERVE)
        if for_peer is not None:
            msg.peer.id = for_peer
        await write_delimited_msg(stream, msg)
        response = await read_delimited_msg(stream, HopMessage)
        await stream.close()
        return int(response.status)


def served(relay: Node) -> int:
    protocol = relay.nat._protocol
    assert isinstance(protocol, _Relay)
    return protocol.held()


def circuits_to(relay: Node, peer: Node) -> int:
    """Circuits the relay holds open to `peer` (on its reservation)."""
    protocol = relay.nat._protocol
    reservation = protocol.resource_manager.get_reservation(peer.peer_id)
    assert reservation is not None
    return int(reservation.active_connections)


def circuit_transport(host: IHost) -> CircuitV2Transport:
    protocol = CircuitV2Protocol(host, allow_hop=False)
    return CircuitV2Transport(host, protocol, RelayConfig(roles=RelayRole.STOP))


def circuit(relay: Node, peer: ID) -> multiaddr.Multiaddr:
    return multiaddr.Multiaddr(f"{relay.addrs()[0]}/p2p-circuit/p2p/{peer}")


async def test_more_reservations_than_the_limit(dirs: Callable[[str], Path]) -> None:
    with trio.fail_after(90):
        async with running(
            dirs("relay"), role="bootstrap", relay_hop=True, relay_reservations=2
        ) as relay:
            async with attacker(relay) as a, attacker(relay) as b, attacker(relay) as c:
                assert await reserve(a, relay) == StatusCode.OK
                assert await reserve(b, relay) == StatusCode.OK
                assert await reserve(c, relay) == StatusCode.RESOURCE_LIMIT_EXCEEDED
                assert served(relay) == 2
                # A peer that leaves gives its slot back (py-libp2p kept it for its whole TTL,
                # an hour by default: fresh identities could hold every slot and leave).
                await a.disconnect(relay.peer_id)
                await wait_for(lambda: served(relay) == 1, timeout=10)
                assert await reserve(c, relay) == StatusCode.OK
            # The relay keeps serving: an honest home node reserves once the attackers are gone.
            await wait_for(lambda: served(relay) == 0, timeout=10)
            async with running(dirs("home"), bootstrap=(relay.addrs()[0],), **HOME) as home:
                await wait_for(lambda: bool(home.nat.reservations), timeout=20)


async def test_fresh_identities_from_one_address_take_few_slots(
    dirs: Callable[[str], Path],
) -> None:
    """Fresh peer ids cost nothing: without a limit per address, one machine could take every
    slot of a relay with as many identities, one connection each."""
    with trio.fail_after(90):
        async with (
            running(dirs("relay"), role="bootstrap", relay_hop=True, relay_per_ip=2) as relay,
            attacker(relay) as a,
            attacker(relay) as b,
            attacker(relay) as c,
        ):
            assert await reserve(a, relay) == StatusCode.OK
            assert await reserve(b, relay) == StatusCode.OK
            # The relay has 126 slots left, none for a third identity from 127.0.0.1.
            assert await reserve(c, relay) == StatusCode.RESOURCE_LIMIT_EXCEEDED
            assert served(relay) == 2
            # A renewal is no new slot.
            assert await reserve(a, relay) == StatusCode.OK
            # A slot that is given back is the address's again.
            await a.disconnect(relay.peer_id)
            await wait_for(lambda: served(relay) == 1, timeout=10)
            assert await reserve(c, relay) == StatusCode.OK


async def test_reservations_for_made_up_peers_take_one_slot(dirs: Callable[[str], Path]) -> None:
    with trio.fail_after(90):
        async with (
            running(dirs("relay"), role="bootstrap", relay_hop=True, relay_reservations=3) as relay,
            attacker(relay) as mallory,
        ):
            for _ in range(10):
                made_up = ID.from_pubkey(create_new_key_pair().public_key).to_bytes()
                assert await reserve(mallory, relay, for_peer=made_up) == StatusCode.OK
            # Each request reserved for mallory itself, not for the ids it named: one slot.
            assert served(relay) == 1
            async with running(dirs("home"), bootstrap=(relay.addrs()[0],), **HOME) as home:
                await wait_for(lambda: bool(home.nat.reservations), timeout=20)
            assert served(relay) <= 2


async def test_a_flooding_circuit_is_cut_at_its_byte_limit(dirs: Callable[[str], Path]) -> None:
    limit = 64 * 1024
    with trio.fail_after(120):
        async with (
            running(dirs("relay"), role="bootstrap", relay_hop=True, relay_bytes=limit) as relay,
            running(dirs("home"), bootstrap=(relay.addrs()[0],), **HOME) as home,
        ):
            await wait_for(lambda: bool(home.nat.reservations), timeout=20)
            async with bare_peer() as (host, _):
                await circuit_transport(host).dial(circuit(relay, home.peer_id))
                stream = await host.new_stream(home.peer_id, [PING])
                echoed = 0
                # Ping echoes what it is sent: both ways count against the circuit's budget.
                with pytest.raises(Exception):  # noqa: B017 (reset or EOF: py-libp2p varies)
                    while True:
                        await stream.write(secrets.token_bytes(32))
                        reply = await stream.read(32)
                        if not reply:
                            raise EOFError("the relay closed the circuit")
                        echoed += len(reply)
                assert 0 < echoed <= limit
                await wait_for(lambda: home.peer_id not in host.get_connected_peers(), timeout=10)
                # A new circuit has a budget of its own, and the relay still serves.
                await circuit_transport(host).dial(circuit(relay, home.peer_id))
                with trio.fail_after(10):
                    again = await host.new_stream(home.peer_id, [PING])
                    await again.write(b"x" * 32)
                    assert await again.read(32) == b"x" * 32


async def test_a_peer_hanging_up_mid_circuit_frees_it(dirs: Callable[[str], Path]) -> None:
    with trio.fail_after(120):
        async with (
            running(dirs("relay"), role="bootstrap", relay_hop=True, relay_circuits=1) as relay,
            running(dirs("home"), bootstrap=(relay.addrs()[0],), **HOME) as home,
        ):
            await wait_for(lambda: bool(home.nat.reservations), timeout=20)
            async with bare_peer() as (quitter, _):
                await circuit_transport(quitter).dial(circuit(relay, home.peer_id))
                stream = await quitter.new_stream(home.peer_id, [PING])
                await stream.write(b"y" * 16)  # half a ping, then gone
                # The whole host goes, mid-circuit: its connection to the relay drops.
                await quitter.disconnect(relay.peer_id)
            await wait_for(lambda: not home.nat.relayed_peers(), timeout=15)
            # The relay gives the circuit's slot back once it sees the hang-up (py-libp2p reads
            # a reset stream three more times first, about a second).
            await wait_for(lambda: circuits_to(relay, home) == 0, timeout=10)
            # The only circuit slot to home is free again: an honest peer gets through.
            async with bare_peer() as (honest, _):
                await circuit_transport(honest).dial(circuit(relay, home.peer_id))
                with trio.fail_after(10):
                    ping = await honest.new_stream(home.peer_id, [PING])
                    await ping.write(b"z" * 32)
                    assert await ping.read(32) == b"z" * 32
