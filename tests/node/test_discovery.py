"""Discovery beyond the bootstrap list (issue 15, item 3), over real hosts on 127.0.0.1: the DHT
walk finds peers the node was never told of, and a peer that floods it with made-up peers
cannot grow the table past its bound, displace verified peers, or point it at the LAN."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p.abc import INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.kad_dht.common import PROTOCOL_ID as KAD
from libp2p.kad_dht.pb.kademlia_pb2 import Message
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.utils.varint import encode_varint_prefixed, read_varint_prefixed_bytes_limited

from node.net.core.peers import MAX_KNOWN, MAX_LEARNED, MAX_STRIKES, PRIVATE, scope
from node.net.discovery import read_answer
from tests.support.hostile import bare_peer
from tests.support.nodes import running, wait_for


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answer(peers: list[tuple[bytes, list[bytes]]]) -> bytes:
    message = Message()
    message.type = Message.MessageType.FIND_NODE
    for pid, addrs in peers:
        entry = message.closerPeers.add()
        entry.id = pid
        entry.addrs.extend(addrs)
    return message.SerializeToString()


def made_up(count: int, port: int) -> list[tuple[bytes, list[bytes]]]:
    """Peers that do not exist: half on a closed loopback port, half on the LAN."""
    out = []
    for i in range(count):
        pid = ID.from_pubkey(create_new_key_pair().public_key).to_bytes()
        addr = f"/ip4/127.0.0.1/tcp/{port}" if i % 2 else f"/ip4/10.{i % 250}.0.1/tcp/4001"
        out.append((pid, [multiaddr.Multiaddr(addr).to_bytes()]))
    return out


def test_an_answer_is_read_for_at_most_max_learned_peers_and_garbage_is_refused() -> None:
    me = ID.from_pubkey(create_new_key_pair().public_key)
    flood = made_up(500, 4001)
    entries = read_answer(answer([(me.to_bytes(), flood[0][1]), (b"junk", []), *flood]), me)
    assert len(entries) == MAX_LEARNED
    assert str(me) not in {pid for pid, _ in entries}
    with pytest.raises(ValueError):
        read_answer(b"\xff\xff not protobuf", me)
    ping = Message()
    ping.type = Message.MessageType.PING
    with pytest.raises(ValueError):
        read_answer(ping.SerializeToString(), me)


@pytest.mark.slow
async def test_a_node_with_one_bootstrap_address_finds_peers_it_was_never_told_of(
    dirs: Callable[[str], Path],
) -> None:
    """The newcomer's peer exchange with the bootstrap node happens when it connects, before
    the others arrive; the others want no more peers than the bootstrap node (target 1), so
    they never dial it. Only the DHT walk (asking the bootstrap node FIND_NODE) can lead the
    newcomer to them. With `dht=False` this fails: the newcomer stays with its bootstrap node."""
    with trio.fail_after(60):
        async with running(dirs("boot"), role="bootstrap") as boot:
            bootstrap = (boot.addrs()[0],)
            async with running(
                dirs("new"), bootstrap=bootstrap, discovery_interval=0.2
            ) as newcomer:
                await wait_for(lambda: boot.peer_id in newcomer.peers.connected(), timeout=10)
                # Its exchange with the bootstrap node is over: the peers it tells of are kept.
                await wait_for(lambda: len(newcomer.sync.reports) >= 1, timeout=10)
                async with (
                    running(dirs("a"), bootstrap=bootstrap, target_peers=1) as a,
                    running(dirs("b"), bootstrap=bootstrap, target_peers=1) as b,
                    running(dirs("c"), bootstrap=bootstrap, target_peers=1) as c,
                ):
                    others = {a.peer_id, b.peer_id, c.peer_id}
                    await wait_for(lambda: others <= set(newcomer.peers.connected()), timeout=30)
                    found = {p.peer_id for p in newcomer.peers.known() if p.verified}
                    assert {str(p) for p in others} <= found


async def serve_flood(stream: INetStream, port: int, answered: list[int]) -> None:
    try:
        while True:
            await read_varint_prefixed_bytes_limited(stream, 1 << 20)
            await stream.write(encode_varint_prefixed(answer(made_up(200, port))))
            answered[0] += 1
    except Exception:  # the asker closed the stream
        pass


@pytest.mark.slow
async def test_a_dht_flood_of_made_up_peers_keeps_the_table_bounded_and_the_real_peers(
    dirs: Callable[[str], Path],
) -> None:
    """A hostile DHT server answers every FIND_NODE with 200 made-up peers, half on a closed
    loopback port and half on the LAN. After more answers than the table holds (40 x 32 >
    1,000), the table is within MAX_KNOWN, the verified peers are still there, no LAN address
    from the stranger was kept (the node listens on loopback only), and the node is still
    connected to its real peer."""
    port = closed_port()
    answered = [0]
    with trio.fail_after(120):
        async with (
            running(dirs("boot"), role="bootstrap") as boot,
            running(dirs("node"), bootstrap=(boot.addrs()[0],), discovery_interval=3600) as node,
            bare_peer() as (host, _),
        ):
            host.set_stream_handler(KAD, lambda s: serve_flood(s, port, answered))
            await wait_for(lambda: boot.peer_id in node.peers.connected(), timeout=10)
            await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
            await wait_for(lambda: host.get_id() in node.peers.connected(), timeout=10)
            while answered[0] < MAX_KNOWN // MAX_LEARNED + 8:
                await node.discovery.walk_once()
            known = node.peers.known()
            assert len(known) <= MAX_KNOWN
            verified = {p.peer_id for p in known if p.verified}
            assert {str(boot.peer_id), str(host.get_id())} <= verified
            assert not [a for p in known for a in p.addrs if scope(a) == PRIVATE]
            assert boot.peer_id in node.peers.connected()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("WORKWORK_NO_MDNS") == "1", reason="no LAN multicast here")
async def test_nodes_on_a_lan_find_each_other_by_mdns_and_a_flood_of_reports_stays_bounded(
    dirs: Callable[[str], Path],
) -> None:
    """Two nodes with no bootstrap address and no DHT find each other by mDNS (zeroconf on
    this machine's interfaces). Then 1,500 made-up peers are reported as zeroconf reports them
    (from its thread): the table stays within MAX_KNOWN, keeps the real peer verified, and keeps
    no LAN address (both nodes listen on loopback only). Set WORKWORK_NO_MDNS=1 where multicast
    is not allowed."""
    port = closed_port()
    fakes = [
        PeerInfo(ID(pid), [multiaddr.Multiaddr(a) for a in addrs])
        for pid, addrs in made_up(1500, port)
    ]
    with trio.fail_after(60):
        async with (
            running(dirs("a"), mdns=True, dht=False) as a,
            running(dirs("b"), mdns=True, dht=False) as b,
        ):
            await wait_for(lambda: a.peer_id in b.peers.connected(), timeout=25)
            await wait_for(lambda: b.peer_id in a.peers.connected(), timeout=10)
            before = a.discovery.found
            await trio.to_thread.run_sync(
                lambda: [peerDiscovery.emit_peer_discovered(i) for i in fakes]
            )
            await wait_for(lambda: a.discovery.found >= before + len(fakes), timeout=20)
            known = a.peers.known()
            assert len(known) <= MAX_KNOWN
            assert str(b.peer_id) in {p.peer_id for p in known if p.verified}
            assert not [x for p in known for x in p.addrs if scope(x) == PRIVATE]


@pytest.mark.slow
async def test_a_peer_that_answers_the_walk_with_garbage_is_struck_and_banned(
    dirs: Callable[[str], Path],
) -> None:
    """Each unreadable FIND_NODE answer is a strike: the peer is banned at its MAX_STRIKES-th
    answer, not before, and hung up on; the node's real peer is untouched."""
    banned_when_answering: list[bool] = []

    with trio.fail_after(60):
        async with (
            running(dirs("boot"), role="bootstrap") as boot,
            running(dirs("node"), bootstrap=(boot.addrs()[0],), discovery_interval=3600) as node,
            bare_peer() as (host, _),
        ):

            async def serve_garbage(stream: INetStream) -> None:
                try:
                    while True:
                        await read_varint_prefixed_bytes_limited(stream, 1 << 20)
                        banned_when_answering.append(node.peers.is_banned(host.get_id()))
                        await stream.write(encode_varint_prefixed(b"\xff\xff not a DHT answer"))
                except Exception:  # the asker closed the stream
                    pass

            host.set_stream_handler(KAD, serve_garbage)
            await wait_for(lambda: boot.peer_id in node.peers.connected(), timeout=10)
            await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
            await wait_for(lambda: host.get_id() in node.peers.connected(), timeout=10)
            while not node.peers.is_banned(host.get_id()):
                await node.discovery.walk_once()
            assert banned_when_answering[:MAX_STRIKES] == [False] * MAX_STRIKES
            await wait_for(lambda: host.get_id() not in node.peers.connected(), timeout=10)
            assert not node.peers.is_banned(boot.peer_id)


@pytest.mark.slow
async def test_a_peer_that_resets_the_walk_without_answering_is_not_struck(
    dirs: Callable[[str], Path],
) -> None:
    """py-libp2p's own DHT resets the stream when it fails inside (a peer of its routing table
    whose addresses expired: "peer ID is expired"), as a loaded honest node does; that cost the
    lag benchmark's serving node its three catch-ups: each fresh node banned it after three
    walks. A stream closed or reset before an answer is no offence."""
    answered: list[int] = []

    with trio.fail_after(60):
        async with (
            running(dirs("boot"), role="bootstrap") as boot,
            running(dirs("node"), bootstrap=(boot.addrs()[0],), discovery_interval=3600) as node,
            bare_peer() as (host, _),
        ):

            async def reset_after_reading(stream: INetStream) -> None:
                try:
                    await read_varint_prefixed_bytes_limited(stream, 1 << 20)
                    answered.append(len(answered) % 2)
                    if answered[-1]:
                        await stream.reset()
                    else:
                        await stream.close()
                except Exception:  # the asker closed the stream
                    pass

            host.set_stream_handler(KAD, reset_after_reading)
            await wait_for(lambda: boot.peer_id in node.peers.connected(), timeout=10)
            await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0])))
            await wait_for(lambda: host.get_id() in node.peers.connected(), timeout=10)
            while len(answered) < 2 * MAX_STRIKES and not node.peers.is_banned(host.get_id()):
                await node.discovery.walk_once()
            assert not node.peers.is_banned(host.get_id())
            assert host.get_id() in node.peers.connected()
