"""What one gossip message costs on the wire and in validation (node/net/host.py, issue 17)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import multiaddr
import pytest
import trio
from libp2p import generate_new_ed25519_identity
from libp2p.peer.id import ID
from libp2p.pubsub import pubsub as pubsub_module
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V12
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import PUBSUB_SIGNING_PREFIX
from libp2p.stream_muxer.yamux import yamux as yamux_module

from node.config import NetworkConfig
from node.net import host as host_module
from node.net.fair import FairGate
from node.net.host import build
from protocol.topics import topic as topic_of
from tests.support import factories as f
from tests.support.nodes import meshed, running, wait_for


async def test_single_records_cost_one_rpc_without_the_peer_record(
    dirs: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that forwards 20 single-record messages sends its signed peer record once, not
    with every RPC, and no IDONTWANT ahead of messages that small (before: one RPC with the
    record per message, and one more per message with an IDONTWANT)."""
    received: list[rpc_pb2.RPC] = []
    consume = pubsub_module.maybe_consume_signed_record

    def observe(rpc: rpc_pb2.RPC, host: Any, peer_id: ID) -> bool:
        received.append(rpc)
        return consume(rpc, host, peer_id)

    # py-libp2p's reading loop calls this with every RPC a node receives.
    monkeypatch.setattr(pubsub_module, "maybe_consume_signed_record", observe)
    posting = f.project("alice")
    works = [f.contribution(f"w{i}", "alice", summary=f"work {i}") for i in range(20)]
    topic = topic_of(works[0])
    with trio.fail_after(40):
        async with (
            running(dirs("a"), role="bootstrap") as a,
            running(dirs("b"), role="bootstrap", bootstrap=(a.addrs()[0],)) as b,
            running(dirs("c"), role="bootstrap", bootstrap=(a.addrs()[0],)) as c,
        ):
            await wait_for(lambda: len(a.peers.connected()) == 2, timeout=10)
            await wait_for(meshed(a, b, c, topic=topic), timeout=10)
            await b.submit([posting])
            await wait_for(lambda: a.store.has(posting.id) and c.store.has(posting.id), timeout=10)
            received.clear()
            for work in works:
                await b.submit([work])
                await wait_for(lambda w=work: c.store.has(w.id), timeout=10)  # type: ignore[misc]
    messages = [rpc for rpc in received if rpc.publish]
    assert len(messages) >= len(works)
    with_record = [rpc for rpc in received if rpc.HasField("senderRecord")]
    # At most the first RPC on each of the six streams between the three nodes (b and c may
    # find each other by the DHT).
    assert len(with_record) <= 6
    assert not [rpc for rpc in received if rpc.control.idontwant]


async def test_large_messages_still_send_idontwant(
    dirs: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message of IDONTWANT_FROM bytes or more is announced to the mesh with IDONTWANT."""
    monkeypatch.setattr(host_module, "IDONTWANT_FROM", 1)
    sent: list[bytes] = []
    with trio.fail_after(30):
        async with (
            running(dirs("a"), role="bootstrap") as a,
            running(dirs("b"), role="bootstrap", bootstrap=(a.addrs()[0],)) as b,
        ):
            posting = f.project("alice")
            topic = topic_of(posting)
            await wait_for(meshed(a, b, topic=topic), timeout=10)
            router = b._stack.gossipsub  # type: ignore[union-attr]
            emit = router.emit_idontwant

            async def record(msg_ids: list[bytes], to_peer: ID) -> None:
                sent.extend(msg_ids)
                await emit(msg_ids, to_peer)

            monkeypatch.setattr(router, "emit_idontwant", record)
            await a.submit([posting])
            await wait_for(lambda: b.store.has(posting.id), timeout=10)
            await wait_for(lambda: bool(sent), timeout=5)


def _signed(key: Any, topic: str, data: bytes, seqno: int) -> rpc_pb2.Message:
    """A pubsub message signed by `key` as py-libp2p signs one."""
    msg = rpc_pb2.Message(
        data=data,
        topicIDs=[topic],
        from_id=ID.from_pubkey(key.public_key).to_bytes(),
        seqno=seqno.to_bytes(8, "big"),
    )
    msg.signature = key.private_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
    msg.key = key.public_key.serialize()
    return msg


async def test_a_copy_that_arrives_during_validation_is_not_validated_again() -> None:
    """Three copies of a message from three peers, the second and third arriving while the
    first is in validation: the validator runs once (before: three times)."""
    stack = build(generate_new_ed25519_identity(), NetworkConfig())
    author = generate_new_ed25519_identity()
    calls: list[ID] = []
    release = trio.Event()

    async def validator(forwarder: ID, msg: rpc_pb2.Message) -> bool:
        calls.append(forwarder)
        await release.wait()
        return True

    forwarders = [ID.from_pubkey(generate_new_ed25519_identity().public_key) for _ in range(3)]
    with trio.fail_after(20):
        async with stack.running([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            stack.pubsub.set_topic_validator("t", validator, is_async_validator=True)
            await stack.pubsub.subscribe("t")
            msg = _signed(author, "t", b"one record", 1)
            async with trio.open_nursery() as nursery:
                for forwarder in forwarders:
                    nursery.start_soon(stack.pubsub.push_msg, forwarder, msg)
                    await trio.testing.wait_all_tasks_blocked()
                release.set()
            assert calls == forwarders[:1]
            # Once validated, the message is seen: a later copy is dropped as before.
            await stack.pubsub.push_msg(forwarders[2], msg)
            assert calls == forwarders[:1]
            # Another message is validated.
            await stack.pubsub.push_msg(forwarders[1], _signed(author, "t", b"another", 2))
            assert calls == [forwarders[0], forwarders[1]]


async def test_a_forged_copy_waiting_its_turn_does_not_shut_out_the_real_message() -> None:
    """A forged copy of a message (its id, from || seqno, with a signature that does not
    check) reaches the node first and waits its turn behind a busy validator; the real message
    arrives from another peer meanwhile. The real one is still validated and delivered: the
    mark that drops copies of a message in validation is taken only when a copy has its turn,
    and the forged copy fails its signature check then, before any other task runs."""
    stack = build(generate_new_ed25519_identity(), NetworkConfig())
    author, mallory = generate_new_ed25519_identity(), generate_new_ed25519_identity()
    validated: list[bytes] = []
    release = trio.Event()

    async def validator(forwarder: ID, msg: rpc_pb2.Message) -> bool:
        validated.append(msg.data)
        if msg.data == b"busy":
            await release.wait()
        return True

    busy, honest, liar = (
        ID.from_pubkey(generate_new_ed25519_identity().public_key) for _ in range(3)
    )
    real = _signed(author, "t", b"the real record", 7)
    forged = _signed(mallory, "t", b"a forged record", 7)
    forged.from_id, forged.key = real.from_id, real.key  # the real one's id, not its signature
    with trio.fail_after(20):
        async with stack.running([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            stack.pubsub.fair = FairGate(limit=1)  # one message judged at a time
            stack.pubsub.set_topic_validator("t", validator, is_async_validator=True)
            delivered = await stack.pubsub.subscribe("t")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stack.pubsub.push_msg, busy, _signed(author, "t", b"busy", 1))
                await trio.testing.wait_all_tasks_blocked()
                # Both copies wait behind the busy one: the forged copy first.
                nursery.start_soon(stack.pubsub.push_msg, liar, forged)
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(stack.pubsub.push_msg, honest, real)
                await trio.testing.wait_all_tasks_blocked()
                assert validated == [b"busy"]
                release.set()
            assert validated == [b"busy", b"the real record"]
            assert (await delivered.get()).data == b"busy"
            assert (await delivered.get()).data == b"the real record"


def test_own_messages_go_to_every_follower_forwarded_ones_to_the_mesh() -> None:
    """Flood publishing: a node's own message goes to every peer that follows the topic; one it
    forwards goes to its mesh only (minus the peer it came from)."""
    stack = build(generate_new_ed25519_identity(), NetworkConfig())
    router, pubsub = stack.gossipsub, stack.pubsub
    router.pubsub = pubsub  # as Pubsub's start does; nothing here runs
    me = pubsub.my_id
    peers = [ID.from_pubkey(generate_new_ed25519_identity().public_key) for _ in range(9)]
    pubsub.peer_topics["t"] = set(peers)
    for peer in peers:
        router.peer_protocol[peer] = PROTOCOL_ID_V12
    router.mesh["t"] = set(peers[:6])
    assert set(router._get_peers_to_send(["t"], me, me)) == set(peers)
    forwarded = set(router._get_peers_to_send(["t"], peers[0], peers[8]))
    assert forwarded == set(peers[1:6])


async def test_reading_small_messages_credits_the_window_in_large_steps(
    dirs: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receiving 30 single-record messages costs few yamux WINDOW_UPDATE frames (before: ~14
    per message, sent back after nearly every read; node/net/yamux.py)."""
    updates: list[bytes] = []
    write_frame = yamux_module.Yamux._write_frame

    async def observe(self: Any, data: bytes, *args: Any, **kwargs: Any) -> Any:
        if (
            len(data) >= 12
            and data[1] == yamux_module.TYPE_WINDOW_UPDATE
            and not data[2:4].strip(b"\0")
        ):
            updates.append(data)  # flags 0: a credit, not a SYN, FIN or RST
        return await write_frame(self, data, *args, **kwargs)

    monkeypatch.setattr(yamux_module.Yamux, "_write_frame", observe)
    posting = f.project("alice")
    works = [f.contribution(f"w{i}", "alice", summary=f"work {i}") for i in range(30)]
    with trio.fail_after(40):
        async with (
            running(dirs("a"), role="bootstrap") as a,
            running(dirs("b"), role="bootstrap", bootstrap=(a.addrs()[0],)) as b,
        ):
            await wait_for(meshed(a, b, topic=topic_of(posting)), timeout=10)
            await a.submit([posting])
            await wait_for(lambda: b.store.has(posting.id), timeout=10)
            updates.clear()
            for work in works:
                await a.submit([work])
                await wait_for(lambda w=work: b.store.has(w.id), timeout=10)  # type: ignore[misc]
    assert len(updates) < len(works)
