"""A hostile peer: a bare py-libp2p host that publishes garbage on our topics."""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from pathlib import Path

import msgpack
import multiaddr
import pytest
import trio
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.request_response import (
    BytesCodec,
    RequestResponse,
    RequestResponseError,
)

from node.config import NetworkConfig
from node.errors import SyncError
from node.net.gossip import topic_name
from node.net.host import build
from node.net.node import Node
from node.net.serve import CONFIG, PROTOCOL, REQUEST_BURST, REQUEST_RATE
from protocol import SIGNING_DOMAIN, encode_body
from protocol.reconcile import MIN_FRAME_LIMIT
from protocol.wire import (
    MAX_PAYLOAD_BYTES,
    PeerList,
    PeersRequest,
    Refused,
    Response,
    decode_response,
    encode_batch,
    encode_request,
)
from tests.support import factories as f
from tests.support.hostile import bare_peer, serve_sync
from tests.support.nodes import has_all, meshed, running, wait_for

# Slow (many real hosts, each attack judged in turn): left out of the fast loop,
# `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow

META = topic_name("meta")


@asynccontextmanager
async def scene(dirs: Callable[[str], Path]) -> AsyncIterator[tuple[Node, Node, IHost, Pubsub]]:
    """A victim node, an honest bystander connected only to it, and a bare peer not yet joined."""
    async with (
        running(dirs("victim"), role="bootstrap") as victim,
        running(dirs("bystander"), role="bootstrap", bootstrap=(victim.addrs()[0],)) as bystander,
        bare_peer() as (host, pubsub),
    ):
        await wait_for(lambda: len(bystander.peers.connected()) == 1, timeout=10)
        # The first syncs (and peer exchanges) between the two are over: what the victim learns
        # from now on is not handed to the bystander, which stays connected to the victim only.
        for node in (victim, bystander):
            await wait_for(lambda n=node: any(r.error is None for r in n.sync.reports), timeout=10)
        yield victim, bystander, host, pubsub


async def join(host: IHost, pubsub: Pubsub, victim: Node) -> None:
    """Connects the bare peer to the victim, subscribes it to the meta topic, and waits until
    each is in the other's mesh (a heartbeat later): from then on its messages reach the
    victim."""
    await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(victim.addrs()[0])))
    await pubsub.subscribe(META)
    await pubsub.wait_for_subscription(victim.peer_id, META)
    router = pubsub.router
    assert isinstance(router, GossipSub)
    await wait_for(
        lambda: (
            victim.peer_id in router.mesh.get(META, set())
            and host.get_id() in victim.gossip.mesh("meta")
        ),
        timeout=10,
    )


def forged_signature() -> bytes:
    record = f.profile("alice")
    body = encode_body(record.body)
    wrong = f.key("mallory").sign(SIGNING_DOMAIN + body).signature
    return msgpack.packb([record.author, wrong, body], use_bin_type=True)


async def test_hostile_peer_is_contained(dirs: Callable[[str], Path]) -> None:
    honest = [f.profile("bob"), f.project("alice")]
    with trio.fail_after(60):
        async with scene(dirs) as (victim, bystander, host, pubsub):
            await join(host, pubsub, victim)
            valid = f.profile("carol")
            attacks = [
                b"not msgpack at all \xff\xfe",
                encode_batch([b"\x93\xc4\x01x"]),  # a truncated envelope
                encode_batch([forged_signature()]),  # a signature by someone else
                encode_batch([valid.raw, forged_signature()]),  # one bad record spoils a batch
                msgpack.packb([1, [b"\x00" * 70_000]], use_bin_type=True),  # over the record limit
            ]
            for judged, data in enumerate(attacks, 1):
                await pubsub.publish(META, data)
                await wait_for(
                    lambda n=judged: (
                        victim.gossip.counters.invalid_messages >= n
                        or victim.peers.is_banned(host.get_id())
                    ),
                    timeout=10,
                )
            # The victim judged and refused them all, and banned the peer on the third strike.
            await wait_for(lambda: victim.peers.is_banned(host.get_id()), timeout=10)
            await wait_for(lambda: host.get_id() not in victim.peers.connected(), timeout=10)
            assert victim.gossip.counters.invalid_messages >= 3
            # Nothing of it was stored, and nothing was forwarded to the bystander.
            assert not victim.store.has(valid.id)
            assert victim.store.topic_count("meta") == 0
            assert bystander.gossip.counters.invalid_messages == 0
            assert bystander.store.topic_count("meta") == 0
            # Honest traffic still flows both ways.
            await bystander.submit(honest)
            await wait_for(has_all(victim, [r.id for r in honest]), timeout=15)
            # A banned peer that dials again is hung up on.
            with suppress(Exception):
                await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(victim.addrs()[0])))
            # Waited for, not slept on: on a loaded machine the hang-up can take over 0.5 s.
            await wait_for(lambda: victim.peer_id not in host.get_network().connections, timeout=10)
            assert host.get_id() not in victim.peers.connected()


async def test_replayed_records_are_not_forwarded(dirs: Callable[[str], Path]) -> None:
    records = [f.profile("bob"), f.project("alice")]
    with trio.fail_after(60):
        async with scene(dirs) as (victim, bystander, host, pubsub):
            await wait_for(meshed(victim, bystander), timeout=10)
            await victim.submit(records)
            await wait_for(has_all(bystander, [r.id for r in records]), timeout=10)
            seen = bystander.gossip.counters.received
            await join(host, pubsub, victim)
            for replays in range(1, 6):
                await pubsub.publish(META, encode_batch([r.raw for r in records]))
                await wait_for(
                    lambda n=replays: victim.gossip.counters.duplicates >= n * len(records),
                    timeout=10,
                )
            # A record published after the replays reaches the bystander after anything the
            # victim would have forwarded of them (one stream, in order): then count.
            marker = f.profile("dave")
            await victim.submit([marker])
            await wait_for(has_all(bystander, [marker.id]), timeout=10)
            # Replays are neither stored twice nor passed on, and are not held against the
            # peer: an honest node can forward a batch we already got through sync.
            assert bystander.gossip.counters.received == seen + 1
            assert not victim.peers.is_banned(host.get_id())


async def test_a_peer_without_our_sync_protocol_is_not_asked(
    dirs: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Once identify has said what a peer speaks, sync does not open a stream it would refuse
    (py-libp2p logs an ERROR for every refused stream)."""
    with trio.fail_after(30):
        async with scene(dirs) as (victim, _, host, pubsub):
            caplog.clear()
            with caplog.at_level(logging.ERROR):
                await join(host, pubsub, victim)
                # Identify has answered: the victim knows the bare peer's protocols.
                await wait_for(lambda: victim.sync.speaks_sync(host.get_id()) is False, timeout=10)
                # The new connection's first sync waited for identify, and did not ask.
                await wait_for(lambda: victim.sync.is_foreign(host.get_id()), timeout=10)
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
            # Nor is it handed on to other nodes by peer exchange.
            assert str(host.get_id()) not in dict(victim.peers.share())
            caplog.clear()
            with caplog.at_level(logging.ERROR), pytest.raises(SyncError, match="does not speak"):
                await victim.sync.sync_with(host.get_id())
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def _ask(rr: RequestResponse, victim: Node, data: bytes, **config: int) -> Response | None:
    """Sends one raw sync request; returns the decoded answer, or None if the stream failed."""
    try:
        answer = await rr.send_request(
            victim.peer_id, [PROTOCOL], data, BytesCodec(), replace(CONFIG, **config)
        )
    except RequestResponseError:
        return None
    return decode_response(answer)


@pytest.mark.slow
async def test_sync_requests_are_bounded(dirs: Callable[[str], Path]) -> None:
    """A peer that floods sync requests is refused past its rate; one that sends malformed
    requests is banned; an oversized request is cut off unread. Honest sync goes on."""
    records = [f.profile("bob"), f.project("alice")]
    with trio.fail_after(60):
        async with scene(dirs) as (victim, bystander, host, _):
            await victim.submit(records)
            await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(victim.addrs()[0])))
            rr = RequestResponse(host)
            peers = encode_request(PeersRequest())

            # Flooding: 16 requests at a time until one is refused for its rate.
            answers: list[Response | None] = []
            began = trio.current_time()
            while not any(isinstance(a, Refused) and a.reason == "rate limited" for a in answers):
                assert len(answers) < 2000, "no request was ever refused"
                batch: list[Response | None] = []
                async with trio.open_nursery() as nursery:
                    for _ in range(16):
                        nursery.start_soon(_collect, batch, rr, victim, peers)
                answers += batch
            elapsed = trio.current_time() - began
            served = sum(isinstance(a, PeerList) for a in answers)
            # Never more than the burst plus what the rate refilled meanwhile.
            assert served <= REQUEST_BURST + REQUEST_RATE * elapsed + 1
            assert not victim.peers.is_banned(host.get_id())  # a fast peer is not a bad one

            # Oversized: the length prefix alone gets the stream reset; nothing is read or held.
            big = b"\x00" * (MAX_PAYLOAD_BYTES + 4096)
            assert await _ask(rr, victim, big, max_request_size=len(big) + 16) is None

            # Malformed: each is refused and is a strike; the third bans the peer.
            await trio.sleep(REQUEST_BURST / REQUEST_RATE)  # the bucket refills
            garbage = [b"\xff", b"\x93\x01\x02\x03", msgpack.packb(["fetch", [b"x"] * 3])]
            answers = [await _ask(rr, victim, data) for data in garbage]
            for answer in answers[:2]:
                assert isinstance(answer, Refused) and answer.reason.startswith("bad request")
            # The third answer races the hang-up that the ban starts.
            assert answers[2] is None or isinstance(answers[2], Refused)
            await wait_for(lambda: victim.peers.is_banned(host.get_id()), timeout=10)
            await wait_for(lambda: host.get_id() not in victim.peers.connected(), timeout=10)

            # The honest peer syncs as before.
            before = bystander.store.topic_count("meta")
            await bystander.sync.sync_with(victim.peer_id)
            assert has_all(bystander, [r.id for r in records])()
            assert bystander.store.topic_count("meta") >= before


async def _collect(
    out: list[Response | None], rr: RequestResponse, victim: Node, data: bytes
) -> None:
    out.append(await _ask(rr, victim, data))


async def test_a_lying_sync_peer_is_contained(dirs: Callable[[str], Path]) -> None:
    """Sync answers go through the same checks as gossip: records with forged signatures, and
    records nobody asked for, are not stored; the peer that sent them is banned."""
    forged = forged_signature()
    unasked = f.profile("zed")
    with trio.fail_after(60):
        async with scene(dirs) as (victim, bystander, host, _):
            # The forged record's id is that of its bytes, as a real id would be.
            serve_sync(host, {hashlib.sha256(forged).digest(): forged}, extra=(unasked.raw,))
            await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(victim.addrs()[0])))
            await wait_for(lambda: victim.sync.speaks_sync(host.get_id()) is True, timeout=10)
            # The victim syncs on connect too (a sync_with that finds one running waits for it
            # to end): sync until the strikes add up to a ban.
            with trio.fail_after(20):
                while not victim.peers.is_banned(host.get_id()):
                    with suppress(SyncError):  # the third strike hangs up mid-sync
                        await victim.sync.sync_with(host.get_id())
            rejected = [r for r in victim.sync.reports if r.peer == str(host.get_id())]
            assert sum(r.rejected for r in rejected) >= 2 and sum(r.stored for r in rejected) == 0
            assert not victim.store.has(unasked.id)
            assert victim.store.topic_count("meta") == 0
            # Honest sync is unaffected.
            honest = [f.profile("bob")]
            await bystander.submit(honest)
            await victim.sync.sync_with(bystander.peer_id)
            assert has_all(victim, [r.id for r in honest])()


async def test_a_sync_cut_short_keeps_what_it_found(dirs: Callable[[str], Path]) -> None:
    """A peer that stops answering in the middle of a long reconciliation (here: small frames,
    then "busy" from the third round): the ids the first rounds found are fetched and stored,
    so the next sync goes on from there instead of starting over."""
    profiles = [f.profile(f"p{i}") for i in range(2000)]
    with trio.fail_after(60):
        async with scene(dirs) as (victim, _, host, _):
            serve_sync(host, {r.id: r.raw for r in profiles}, frame_limit=MIN_FRAME_LIMIT, rounds=2)
            await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(victim.addrs()[0])))
            # The victim syncs with the new peer by itself (and fails on the third round).
            await wait_for(
                lambda: any(
                    r.peer == str(host.get_id()) and r.error is not None
                    for r in victim.sync.reports
                ),
                timeout=20,
            )
            report = next(r for r in victim.sync.reports if r.peer == str(host.get_id()))
            assert "busy" in (report.error or "")
            held = sum(victim.store.has(r.id) for r in profiles)
            assert 0 < report.needed < len(profiles)
            assert held == report.stored == report.needed
            assert not victim.peers.is_banned(host.get_id())  # failing is not lying


async def test_a_host_stops_cleanly_under_a_peers_subscriptions() -> None:
    """A peer keeps subscribing and unsubscribing while a node's host and pubsub stop
    (`Stack.running`): they stop without an error. py-libp2p's pubsub starts a task for every
    subscription it reads; stopped before the host, it still read them, and the RuntimeError
    ("Nursery is closed to new arrivals") took the swarm down (18 stops in 100 here; a flaky
    test in CI when our bare test peer stopped). Each round stops at another point."""
    with trio.fail_after(120):
        async with bare_peer() as (host, pubsub):

            async def churn() -> None:
                for n in itertools.count():
                    topic = topic_name(f"churn-{n % 64}")
                    await pubsub.subscribe(topic)
                    await pubsub.unsubscribe(topic)
                    await trio.lowlevel.checkpoint()

            for round_ in range(30):
                stack = build(create_new_key_pair(), NetworkConfig())
                async with trio.open_nursery() as nursery:
                    async with stack.running([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
                        await host.connect(info_from_p2p_addr(stack.host.get_addrs()[0]))
                        nursery.start_soon(churn)
                        # Its subscriptions are being read; stop after 0-290 more scheduling
                        # points.
                        await wait_for(
                            lambda s=stack: bool(s.pubsub.peer_topics), timeout=10, step=0.001
                        )
                        for _ in range(round_ % 30 * 10):
                            await trio.lowlevel.checkpoint()
                    nursery.cancel_scope.cancel()
