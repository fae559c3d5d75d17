"""The libp2p host of a node, with every py-libp2p default that matters set on purpose.

- Security: Noise only. py-libp2p's default also offers TLS, SECIO and plaintext.
- Muxers: yamux, with mplex as a fallback for peers that have nothing else.
- GossipSub 1.2 and 1.1 with message signing on (py-libp2p's unsigned mode does not
  interoperate). Its spam protection, which silently drops above 10 messages/s per (peer,
  topic), is off: our messages are batches, and our topic validator penalizes peers that send
  invalid ones. Peer exchange is ours (see `node.net.peers`), not GossipSub's.
- Message ids are `from || seqno`, go-libp2p's and py-libp2p's default, set explicitly because
  it is part of the wire contract: js-libp2p peers must set the same `msgIdFn` (its default is
  the author's key || seqno) for IHAVE/IWANT/IDONTWANT to work across implementations.
- The seqno counter starts from the clock in nanoseconds, as go-libp2p's does. py-libp2p starts
  it from seconds, so a node restarted within minutes would reuse message ids that peers still
  remember as seen and drop.
- Identify and ping are on in every py-libp2p host.
- The connection limit: py-libp2p refuses a connection past `max_connections` at once, before
  the Noise handshake, so a full node would strand a newcomer that knows only it. Its ceiling
  is set to `max_connections + spare_slots` instead, and node/net/core/slots.py trims the
  surplus after a grace period (or once the newcomer's peer exchange was answered).
- py-libp2p's auto-connector, which dials whatever its peerstore holds whenever the connection
  count is below a watermark, is turned off: dialing is `node.net.peers`'s job, with backoff and
  bans.
- Writes to a peer's pubsub stream are serialized, one RPC at a time. py-libp2p writes from more
  than one task (the sending loop, the replay of recent messages to a new subscriber, the flush
  of messages held until identify), and yamux lets another write in between the 64 KiB frames
  of a large one: the peer then reads garbage, resets the stream and gets no more gossip.
- Messages wait their turn to be validated per forwarding peer, round robin, with bounds on
  how many may wait (node/net/fair.py): py-libp2p queues them all first come first served, so
  a flooder's backlog delayed every honest message behind it.
- Banning a peer whose stream dies meanwhile does not stop the node: py-libp2p 0.8.1 deleted the
  peer's entry after resetting its stream, and the KeyError, when the dead stream's handler had
  deleted it first, ended the pubsub service.
- A pubsub stream whose bytes are not a protobuf RPC is reset and the peer dropped; py-libp2p
  0.8.1 lets that DecodeError escape and take the whole swarm down with it.
- The host stops before its pubsub (`Stack.running`). Stopped the other way round, a peer's
  subscription read in between made py-libp2p 0.8.1 start a task in pubsub's closed nursery,
  and the RuntimeError took the swarm, and the node's shutdown, down with it.

What a gossip message costs is set here too (issue 17: each single-record message cost a node
3-4 ms of CPU, and every hop of propagation waits for it). py-libp2p 0.8.1 does more per message
than the protocol asks:
- It puts our signed peer record into every RPC it sends, which costs the sender ~0.1 ms to
  marshal and the receiver ~0.25 ms to check and store (Ed25519 and the peerstore), per RPC.
  The record is sent once per stream, and again only when it changed: the peer has it already.
- It sends an IDONTWANT to every mesh peer for every message it forwards, before the message
  itself, whatever its size: one more RPC per mesh peer per message. As go-libp2p does
  (IDontWantMessageThreshold), it is sent only for messages of IDONTWANT_FROM bytes or more,
  where a duplicate avoided is worth an RPC; a single record is ~300 bytes.
- It marks a message seen only once validated, so a copy that arrives from another mesh peer
  while the first is being validated is validated again (a store read and, for a new record, a
  second signature check). As go-libp2p does, a message is dropped while a copy of it is in
  validation.
- yamux sends a window update after nearly every read; ours, as go-yamux, once half the
  window was read (node/net/yamux.py).
- Our own messages are sent to every peer that follows the topic, not only to the mesh (flood
  publishing, go-libp2p's default): one hop fewer to the peers outside our mesh, at no cost to
  anyone else's bandwidth, since only the author floods.
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import multiaddr
import trio
from google.protobuf.message import DecodeError
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub, get_peer_and_seqno_msg_id
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import background_trio_service

from node.config import NetworkConfig
from node.net import yamux
from node.net.fair import Dropped, FairGate

log = logging.getLogger(__name__)

# Mesh degree 4 (3-6), below go-libp2p's 6 (4-12). In py-libp2p every copy of a message costs
# about a millisecond of CPU to send and another to receive, and a node gets a copy from nearly
# every mesh peer: with 6 (4-12), ten nodes on two cores spent most of each record's time
# waiting for the CPU their duplicates took. With 4 (3-6) the 10-node propagation p99 fell from
# 3.5-6.0x to 2.7-3.4x one hop, and CPU per node by a sixth to a third (scripts/bench/network.py
# latency, docs/BENCHMARKS.md). In a simulated 1,000-node network (sim.py) each node receives
# 5.75 messages per record instead of 8.13, and the p99 delivery takes 0.75 s instead of 0.47
# (a hop more); it converges all the same. Fewer paths per message are what sync repairs. A
# heartbeat every second keeps meshes repaired quickly in small networks.
DEGREE, DEGREE_LOW, DEGREE_HIGH = 4, 3, 6
HEARTBEAT = 1


# py-libp2p drops a message whose validators run longer than this (default 5 s). A receiver
# that falls behind a fast publisher queues batches for verification longer than that, and
# dropped batches then wait for sync; a longer bound keeps them. A peer cannot use it to pile up
# work: the messages waiting to be judged are bounded, per peer and in all (node/net/fair.py).
VALIDATION_TIMEOUT = 30.0
# Messages smaller than this are forwarded without an IDONTWANT first (go-libp2p's threshold).
IDONTWANT_FROM = 1024
# Flood publishing: our own messages go to every peer that follows the topic.
FLOOD_PUBLISH = True


class NodePubsub(Pubsub):
    """py-libp2p's pubsub with the fixes listed in the module's docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counter = time.time_ns()
        self.fair = FairGate()
        # One lock per outbound stream: an RPC is written whole before the next one starts.
        self._writing: weakref.WeakKeyDictionary[INetStream, trio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        # The signed peer record last sent on each outbound stream.
        self._record_sent: weakref.WeakKeyDictionary[INetStream, bytes] = (
            weakref.WeakKeyDictionary()
        )
        # Ids of the messages being validated now.
        self._validating: set[bytes] = set()

    async def write_msg(self, stream: INetStream, rpc_msg: rpc_pb2.RPC) -> bool:
        # py-libp2p writes to a peer's stream from its sending loop and, besides it, from
        # GossipSub's replay of recent messages to a peer that subscribes and its flush of
        # messages held until identify. yamux splits a write into frames of at most 64 KiB
        # and lets other writers in between frames, so two RPCs written at once interleave
        # and the peer reads garbage ("malformed RPC"), drops the stream and gets nothing
        # more by gossip. Serializing the writes of a stream prevents that.
        lock = self._writing.get(stream)
        if lock is None:
            lock = self._writing[stream] = trio.Lock()
        async with lock:
            if rpc_msg.HasField("senderRecord"):
                if self._record_sent.get(stream) == rpc_msg.senderRecord:
                    # The peer has this record from an earlier RPC: checking it again costs
                    # it a signature check. The RPC may be shared, so a copy goes without it.
                    stripped = rpc_pb2.RPC()
                    stripped.CopyFrom(rpc_msg)
                    stripped.ClearField("senderRecord")
                    rpc_msg = stripped
                else:
                    self._record_sent[stream] = rpc_msg.senderRecord
            return await super().write_msg(stream, rpc_msg)

    async def push_msg(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        if msg_forwarder == self.my_id:
            await super().push_msg(msg_forwarder, msg)
            return
        # Every peer's messages wait their own turn to be judged (node/net/fair.py).
        try:
            async with self.fair.turn(str(msg_forwarder), msg.ByteSize()):
                await self._push_once(msg_forwarder, msg)
        except Dropped as exc:
            log.debug("gossip dropped before validation: %s", exc)

    async def _push_once(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        # py-libp2p marks a message seen only after its validators accepted it, so every copy
        # that arrives meanwhile is validated again. go-libp2p marks it seen first; so do we,
        # while a copy is in validation. The mark is taken only once the copy has its turn:
        # py-libp2p checks the message's signature before its first await, so a forged copy
        # (same id, bad signature) never holds the mark while the real one comes, as it could
        # while waiting in its sender's queue.
        msg_id = self._msg_id_constructor(msg)
        if msg_id in self._validating or self.seen_messages.has(msg_id):
            return
        self._validating.add(msg_id)
        try:
            await super().push_msg(msg_forwarder, msg)
        finally:
            self._validating.discard(msg_id)

    async def _teardown_if_connected(self, peer_id: ID) -> None:
        # py-libp2p resets a banned peer's stream, then deletes its entry: if the stream's
        # death was handled meanwhile (`_handle_dead_peer` deletes it too), the KeyError ended
        # the pubsub service and, with it, the node.
        stream = self.peers.get(peer_id)
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.reset()
            if self.peers.get(peer_id) is stream:
                del self.peers[peer_id]
        self._forget_all_subscriptions(peer_id)

    async def stream_handler(self, stream: INetStream) -> None:
        peer = stream.muxed_conn.peer_id
        try:
            await super().stream_handler(stream)
        except DecodeError as exc:
            log.info("pubsub peer %s sent a malformed RPC: %s", peer, exc)
            await stream.reset()
            self._handle_dead_peer(peer)


class _GossipSub(GossipSub):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idontwant = True

    async def publish(self, msg_forwarder: ID, pubsub_msg: rpc_pb2.Message) -> None:
        # Read by _emit_idontwant_for_message, which py-libp2p's publish awaits before any
        # other await: no other message's publish can run in between.
        self._idontwant = len(pubsub_msg.data) >= IDONTWANT_FROM
        await super().publish(msg_forwarder, pubsub_msg)

    async def _emit_idontwant_for_message(self, msg_id: bytes, topic_ids: Iterable[str]) -> None:
        if self._idontwant:
            await super()._emit_idontwant_for_message(msg_id, topic_ids)

    def _get_peers_to_send(
        self,
        topic_ids: Iterable[str],
        msg_forwarder: ID,
        origin: ID,
        msg_id: bytes | None = None,
    ) -> Iterable[ID]:
        peers = set(super()._get_peers_to_send(topic_ids, msg_forwarder, origin, msg_id))
        if (
            FLOOD_PUBLISH
            and self.pubsub is not None
            and origin == msg_forwarder == self.pubsub.my_id
        ):
            for topic in topic_ids:
                peers.update(
                    peer
                    for peer in self.pubsub.peer_topics.get(topic, ())
                    if self._is_gossipsub_peer(peer) and peer != origin
                )
        yield from peers

    async def emit_control_message(self, control_msg: rpc_pb2.ControlMessage, to_peer: ID) -> None:
        # As py-libp2p's, without the signed peer record: the peer got it with our first RPC,
        # and marshalling it costs ~0.1 ms per control message.
        packet = rpc_pb2.RPC()
        packet.control.CopyFrom(control_msg)
        self.send_rpc(to_peer, packet, priority=True)


async def _no_auto_dial() -> None:
    pass


@dataclass(frozen=True, slots=True)
class Stack:
    """A host and its pubsub, not yet running."""

    host: IHost
    pubsub: NodePubsub
    gossipsub: GossipSub

    @contextlib.asynccontextmanager
    async def running(self, listen: Iterable[multiaddr.Multiaddr]) -> AsyncIterator[None]:
        """Runs pubsub, its router and the host, listening on `listen`, until the block exits.

        The host stops first, with every connection and stream handler it runs: py-libp2p's
        pubsub starts a task in its own nursery for a peer's subscription, and once that
        nursery has closed, the RuntimeError takes the swarm down (18 stops in 100 under a
        peer's subscriptions when pubsub stopped first, tests/node/test_hostile.py).
        """
        async with (
            background_trio_service(self.pubsub),
            background_trio_service(self.gossipsub),
            self.host.run(listen_addrs=list(listen)),
        ):
            await self.pubsub.wait_until_ready()
            yield


def build(key: KeyPair, config: NetworkConfig) -> Stack:
    """Returns a host, pubsub and router for `key`, configured for our network."""
    yamux.install()
    ceiling = config.max_connections + config.spare_slots
    host = new_host(
        key_pair=key,
        sec_opt={NOISE: NoiseTransport(key, noise_privkey=x25519_key_pair().private_key)},
        muxer_preference="YAMUX",
        listen_addrs=[multiaddr.Multiaddr(a) for a in config.listen],
        announce_addrs=[multiaddr.Multiaddr(a) for a in config.announce] or None,
        enable_quic=config.quic,
        # Dialing and trimming are ours (node.net.peers, node/net/core/slots.py): libp2p's
        # manager only enforces the ceiling, max_connections plus the spare slots, and refuses
        # past it before the security handshake. Its own pruner never runs: the count cannot
        # pass its high watermark, the ceiling.
        connection_config=ConnectionConfig(
            max_connections=ceiling,
            min_connections=0,
            low_watermark=0,
            high_watermark=ceiling,
        ),
    )
    gossipsub = _GossipSub(
        protocols=[PROTOCOL_ID_V12, PROTOCOL_ID_V11],
        degree=DEGREE,
        degree_low=DEGREE_LOW,
        degree_high=DEGREE_HIGH,
        heartbeat_interval=HEARTBEAT,
        spam_protection_enabled=False,
        do_px=False,
    )
    host.get_network().auto_connector.maybe_connect = _no_auto_dial  # type: ignore[attr-defined]
    pubsub = NodePubsub(
        host,
        gossipsub,
        strict_signing=True,
        msg_id_constructor=get_peer_and_seqno_msg_id,
        validation_timeout=VALIDATION_TIMEOUT,
    )
    return Stack(host, pubsub, gossipsub)
