"""A node at its connection limit, over real hosts on 127.0.0.1 (issue 15: "a full node strands
newcomers"): it still serves a newcomer's peer exchange in a spare slot and then hangs up, so the
newcomer finds the rest of the network through it; it stays bounded; and a flood of dialers
neither pushes it past its ceiling nor costs it its useful peers."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
from libp2p.host.basic_host import BasicHost
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
from libp2p.security.noise.transport import Transport as NoiseTransport

from node.net.node import Node
from tests.support.nodes import meshed, running, wait_for

LIMIT = 3
GRACE = 4.0


async def full_node(
    stack: AsyncExitStack, dirs: Callable[[str], Path], **config: object
) -> tuple[Node, list[Node]]:
    """Starts a bootstrap node with LIMIT connections and LIMIT peers that fill them."""
    hub = await stack.enter_async_context(
        running(
            dirs("hub"),
            role="bootstrap",
            max_connections=LIMIT,
            grace_period=GRACE,
            sync_interval=1.0,
            **config,
        )
    )
    addr = hub.addrs()[0]
    peers = []
    for i in range(LIMIT):
        peers.append(
            await stack.enter_async_context(
                running(dirs(f"p{i}"), bootstrap=(addr,), sync_interval=1.0)
            )
        )
    await wait_for(lambda: len(hub.peers.connected()) == LIMIT, timeout=20)
    # The peers have told the hub where they listen (identify, then its sync session).
    await wait_for(lambda: len(hub.peers.share()) >= LIMIT, timeout=20)
    return hub, peers


@pytest.mark.slow
async def test_a_newcomer_that_knows_only_a_full_node_finds_the_others_through_it(
    dirs: Callable[[str], Path],
) -> None:
    with trio.fail_after(60):
        async with AsyncExitStack() as stack:
            hub, peers = await full_node(stack, dirs)
            newcomer = await stack.enter_async_context(
                running(dirs("new"), bootstrap=(hub.addrs()[0],), sync_interval=1.0)
            )
            others = {p.peer_id for p in peers}
            # It learned the hub's peers by the exchange the hub served in a spare slot, and
            # reached one of them: before, py-libp2p refused it and it stayed alone.
            await wait_for(lambda: bool(others & set(newcomer.peers.connected())), timeout=30)
            assert {str(p) for p in others} <= {p.peer_id for p in newcomer.peers.known()}
            # The hub is back at its limit within the grace period, and kept its peers.
            await wait_for(lambda: len(hub.peers.connected()) <= LIMIT, timeout=GRACE + 2)
            assert others <= set(hub.peers.connected())


@pytest.mark.slow
async def test_a_flood_of_dialers_leaves_a_full_node_bounded_with_its_useful_peers(
    dirs: Callable[[str], Path],
) -> None:
    spare = 2
    with trio.fail_after(90):
        async with AsyncExitStack() as stack:
            hub, peers = await full_node(stack, dirs, spare_slots=spare)
            await wait_for(meshed(hub, *peers), timeout=10)
            before = {p.peer_id for p in peers}
            hosts: list[BasicHost] = []
            for _ in range(8):
                key = create_new_key_pair()
                host = new_host(
                    key_pair=key,
                    sec_opt={
                        NOISE: NoiseTransport(key, noise_privkey=x25519_key_pair().private_key)
                    },
                )
                listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
                await stack.enter_async_context(host.run(listen_addrs=listen))
                hosts.append(host)  # type: ignore[arg-type]
            target = info_from_p2p_addr(multiaddr.Multiaddr(hub.addrs()[0]))
            most = 0
            admitted = 0

            async def dial(host: BasicHost) -> None:
                nonlocal admitted
                try:
                    await host.connect(target)
                    admitted += 1
                except Exception:  # refused at the ceiling: what we want past the spare slots
                    pass

            async def watch() -> None:
                nonlocal most
                while True:
                    most = max(most, len(hub.peers.connected()))
                    await trio.sleep(0.01)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                async with trio.open_nursery() as dialers:
                    for host in hosts:
                        dialers.start_soon(dial, host)
                # The flood gets nowhere past the spare slots; the hub trims it after the grace
                # period and keeps the peers that carry its mesh.
                # Taken in the spare slots (more only if one was trimmed meanwhile: a slow
                # machine), the rest refused at the ceiling.
                assert 1 <= admitted < len(hosts)
                await wait_for(lambda: len(hub.peers.connected()) <= LIMIT, timeout=GRACE + 3)
                nursery.cancel_scope.cancel()
            assert most <= LIMIT + spare
            assert before <= set(hub.peers.connected())
            assert not {h.get_id() for h in hosts} & set(hub.peers.connected())
            assert hub.peers.slots.trimmed >= admitted
