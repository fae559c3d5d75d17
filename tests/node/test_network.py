"""Networks of real nodes on 127.0.0.1: propagation, restarts, peer exchange."""

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
from libp2p.host.ping import ID as PING
from libp2p.host.ping import perform_ping_roundtrip
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex

from node.net.node import Node
from protocol.topics import META, shard, work
from protocol.topics import topic as topic_of
from protocol.topics import work as work_topic
from tests.support import factories as f
from tests.support.nodes import has_all, meshed, running, wait_for


async def test_five_node_network(dirs: Callable[[str], Path]) -> None:
    # One bootstrap node and four personal nodes that follow one project; a record published
    # at the far end reaches every store, and the personal nodes find each other through peer
    # exchange although each was only told of the bootstrap node.
    project = f.project("alice", "docs")
    follow = (f.pid("alice", "docs"),)
    with trio.fail_after(60):
        async with (
            running(dirs("boot"), role="bootstrap", sync_interval=1.0) as boot,
            AsyncExitStack() as stack,
        ):
            nodes: list[Node] = [boot]
            for i in range(4):
                nodes.append(
                    await stack.enter_async_context(
                        running(
                            dirs(f"n{i}"),
                            bootstrap=(boot.addrs()[0],),
                            follow=follow,
                            sync_interval=1.0,
                        )
                    )
                )
            await wait_for(
                lambda: all(len(n.peers.connected()) >= 3 for n in nodes[1:]), timeout=20
            )
            shard_topic = work_topic(shard(follow[0]))
            await wait_for(meshed(*nodes), timeout=10)
            await wait_for(meshed(*nodes, topic=shard_topic), timeout=10)
            work = f.contribution("bob")
            records = [f.profile("carol"), project, work, f.acceptance(work)]
            await nodes[-1].submit(records)
            await wait_for(
                lambda: all(has_all(n, [r.id for r in records])() for n in nodes), timeout=20
            )
            # It travelled by gossip, not (only) by sync.
            await wait_for(
                lambda: sum(n.gossip.counters.stored for n in nodes) >= 4 * len(records) - 4,
                timeout=5,
            )


async def test_restart_keeps_peer_id_and_redials_known_peers(dirs: Callable[[str], Path]) -> None:
    with trio.fail_after(40):
        async with running(dirs("a"), role="bootstrap") as a:
            async with running(dirs("b"), bootstrap=(a.addrs()[0],)) as b:
                first_id = b.peer_id
                await wait_for(lambda: len(b.peers.connected()) == 1, timeout=10)
            # No bootstrap list this time: B must find A from what it remembered.
            async with running(dirs("b")) as b:
                assert b.peer_id == first_id
                await wait_for(lambda: a.peer_id in b.peers.connected(), timeout=10)
                known = {p.peer_id for p in b.peers.known()}
                assert str(a.peer_id) in known


async def test_personal_node_follows_only_its_shards(dirs: Callable[[str], Path]) -> None:
    mine, other = f.pid("alice", "docs"), f.pid("alice", "other")
    with trio.fail_after(30):
        async with (
            running(dirs("a"), role="bootstrap") as a,
            running(dirs("b"), bootstrap=(a.addrs()[0],), follow=(mine,)) as b,
        ):
            assert set(b.topics()) == {META, work(shard(mine))}
            assert len(a.topics()) == 33
            if shard(other) != shard(mine):
                await wait_for(lambda: len(b.peers.connected()) == 1, timeout=10)
                theirs = [f.project("alice", "other"), f.contribution("bob", name="other")]
                ours = [f.project("alice", "docs"), f.contribution("bob")]
                await wait_for(meshed(a, b), timeout=10)
                await wait_for(meshed(a, b, topic=work(shard(mine))), timeout=10)
                await a.submit(theirs + ours)
                await wait_for(has_all(b, [r.id for r in ours]), timeout=15)
                # The other project's posting is on meta; its contribution is on a shard B
                # does not follow.
                assert b.store.has(theirs[0].id) and not b.store.has(theirs[1].id)


async def test_quic_transport_carries_sync_and_gossip(dirs: Callable[[str], Path]) -> None:
    """Two nodes that speak only QUIC (py-libp2p's is experimental, hence the flag)."""
    quic = {"quic": True, "listen": ("/ip4/127.0.0.1/udp/0/quic-v1",)}
    before = [f.profile("bob"), f.project("alice")]
    after = [f.profile("carol")]
    with trio.fail_after(40):
        async with running(dirs("a"), **quic) as a:
            assert all("/quic-v1/" in addr for addr in a.addrs())
            await a.submit(before)
            async with running(dirs("b"), **quic, bootstrap=(a.addrs()[0],)) as b:
                # Published before b existed: it arrives by sync on connect.
                await wait_for(has_all(b, [r.id for r in before]), timeout=15)
                await wait_for(meshed(a, b), timeout=10)
                await a.submit(after)
                await wait_for(has_all(b, [r.id for r in after]), timeout=15)
                assert b.gossip.counters.stored >= 1


@pytest.mark.slow
async def test_connection_limit_holds_and_others_find_room_elsewhere(
    dirs: Callable[[str], Path],
) -> None:
    # A bootstrap node that keeps 2 connections and takes 1 more for a while (a spare slot,
    # node/net/core/slots.py), dialed by 4 nodes: it never holds more than 3, is back at 2 within
    # its grace period, keeps the two it had, and the nodes it turned away still reach the
    # network through the ones it took.
    grace = 3.0
    with trio.fail_after(60):
        async with (
            running(
                dirs("hub"),
                role="bootstrap",
                max_connections=2,
                spare_slots=1,
                grace_period=grace,
            ) as hub,
            AsyncExitStack() as stack,
        ):
            addr = hub.addrs()[0]
            nodes = [
                await stack.enter_async_context(
                    running(dirs(f"n{i}"), role="bootstrap", bootstrap=(addr,), sync_interval=1.0)
                )
                for i in range(2)
            ]
            await wait_for(lambda: len(hub.peers.connected()) == 2, timeout=20)
            late = [
                await stack.enter_async_context(
                    running(
                        dirs(f"late{i}"),
                        role="bootstrap",
                        bootstrap=(addr, nodes[i].addrs()[0]),
                        sync_interval=1.0,
                    )
                )
                for i in range(2)
            ]
            most = 0
            with trio.move_on_after(grace + 2):
                while True:
                    most = max(most, len(hub.peers.connected()))
                    await trio.sleep(0.02)
            assert most <= 3
            await wait_for(lambda: len(hub.peers.connected()) <= 2, timeout=grace + 2)
            assert {n.peer_id for n in nodes} <= set(hub.peers.connected())
            # A record from a node the hub refused reaches everyone.
            records = [f.profile("dave")]
            await late[0].submit(records)
            for node in (hub, *nodes, *late):
                await wait_for(has_all(node, [r.id for r in records]), timeout=15)


async def test_mplex_only_peer_connects_and_pings(dirs: Callable[[str], Path]) -> None:
    # A libp2p peer that offers only mplex still gets a connection (yamux is preferred, mplex
    # the fallback), and our node answers ping on it.
    key = create_new_key_pair()
    host = new_host(
        key_pair=key,
        sec_opt={NOISE: NoiseTransport(key, noise_privkey=x25519_key_pair().private_key)},
        muxer_opt={MPLEX_PROTOCOL_ID: Mplex},
    )
    with trio.fail_after(30):
        async with (
            running(dirs("a")) as node,
            host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]),
        ):
            await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
            connections = host.get_network().get_connections(node.peer_id)
            assert connections and all(isinstance(c.muxed_conn, Mplex) for c in connections)
            stream = await host.new_stream(node.peer_id, [PING])
            assert await perform_ping_roundtrip(stream) >= 0
            await stream.close()


async def test_a_project_published_with_its_work_reaches_a_peer_before_the_work(
    dirs: Callable[[str], Path],
) -> None:
    """The throughput benchmark lost 831 of 20,000 records with sync off: a project submitted
    with its contributions lingered in its own batch (another topic) while full batches of the
    contributions went out first, and at the peer, past its orphan quota (500), they were left
    out. Parents now go out before the work that needs them."""
    project = f.project("alice", name="big")
    pieces = [f.contribution(f"w{i}", name="big", summary=f"piece {i}") for i in range(6000)]
    with trio.fail_after(90):
        async with (
            running(dirs("publisher"), role="bootstrap", sync_interval=1e9) as publisher,
            running(
                dirs("receiver"), role="bootstrap", bootstrap=(publisher.addrs()[0],),
                sync_interval=1e9,
            ) as receiver,
        ):  # fmt: skip
            await wait_for(lambda: receiver.peer_id in publisher.gossip.mesh(META), timeout=20)
            await wait_for(
                lambda: receiver.peer_id in publisher.gossip.mesh(topic_of(pieces[0])), timeout=20
            )
            await publisher.submit([project, *pieces])
            await wait_for(lambda: receiver.gossip.counters.received >= len(pieces) + 1, timeout=60)
            await wait_for(lambda: all(receiver.store.has(r.id) for r in pieces), timeout=10)
            # None of the work came before its project.
            assert receiver.gossip.counters.orphaned == 0
