"""Gossip: record batches over GossipSub, validated at the edge, published with flow control.

Theory of operation.

Receiving. Every topic we follow has an async topic validator. py-libp2p runs it before it
delivers or forwards a message, so it is where records are judged: the batch is decoded, the
records we hold already are set aside by their ids (a hash each, no signature check), the others
decoded and their signatures verified off the event loop (`node.net.verify`: on threads, or for
a large batch in worker processes, so verification uses the other core while the event loop
keeps reading), then handed to the intake (`node.net.intake`: their topic, the clock, orphan
quotas) and the store, which applies the rules that need other records. The validator accepts
the message, and so lets GossipSub forward it, only if every record in it was valid (orphans,
whose parents we have not seen yet, and records a little ahead of our clock are valid until
shown otherwise) and at least one was new to us. An invalid message is neither stored nor
forwarded, and counts against the peer that sent it; a replay of records we have is dropped,
and counts against the peer only past its allowance (node/net/core/quotas.py).
Subscriptions still have to be read (py-libp2p warns and drops when their 32-slot channel is
full); the reader only drains them, since the validator already did the work.

Publishing. Records are queued, grouped per topic into batches of up to BATCH_BYTES or
BATCH_RECORDS, and sent when a batch is full or LINGER seconds after its first record. Before
each send the publisher waits while the outbound queue of any peer on that topic is more than a
quarter full: py-libp2p's per-peer queue holds 32 RPCs and silently drops the rest, and
`publish` never blocks, so without this wait a fast publisher loses messages. Gossip can still
lose messages (a peer offline, a slow reader): sync repairs that.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from node.net import verify
from node.net.fair import FairGate
from node.net.host import Stack
from node.net.intake import Intake
from node.net.verify import decode_all
from protocol import ProtocolError, Record
from protocol.topics import META
from protocol.topics import topic as topic_of
from protocol.wire import MAX_BATCH_BYTES, decode_batch, encode_batch
from storage import StorageError

if TYPE_CHECKING:
    # trio-typing's stubs (a py-libp2p dependency) shadow trio's own annotations for mypy.
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)

PREFIX = "/workwork/1/"
# About 128 KiB per message: measured lossless at ~20,000 records/s between two processes.
BATCH_BYTES = 128 * 1024
BATCH_RECORDS = 512
LINGER = 0.005
# A peer whose outbound queue holds more than this many RPCs is given time to drain.
QUEUE_HIGH = 8
# How long the publisher waits for a slow peer before sending anyway (sync repairs the peer).
QUEUE_WAIT = 2.0
# Submissions (each a list of records of one topic) waiting for the publisher.
OUTBOX = 64

Penalize = Callable[[ID, str], None]


def topic_name(topic: str) -> str:
    """Returns the GossipSub topic of one of our topics (`protocol.topics`)."""
    return PREFIX + topic


@dataclass
class Counters:
    """What gossip did since start, for status and benchmarks."""

    received: int = 0
    # Records whose signatures were checked (records already stored are not).
    verified: int = 0
    # Batches of records that were all stored already.
    replays: int = 0
    # Records dated a little ahead of our clock, held until it makes them valid.
    held: int = 0
    # Includes orphans of earlier batches stored once their parents came.
    stored: int = 0
    # Records kept in the orphan area (their parents had not come yet).
    orphaned: int = 0
    duplicates: int = 0
    invalid_messages: int = 0
    # Records not stored because their authors went past their rations (nobody's offence).
    rationed: int = 0
    # Batches not stored because the store failed (a full disk).
    unstored: int = 0
    dropped: int = 0
    published_messages: int = 0
    published_records: int = 0
    queue_waits: int = 0


@dataclass
class _Batch:
    started: float
    records: list[bytes] = field(default_factory=list)
    size: int = 0


class Gossip:
    """Publishes and receives record batches on the topics a node follows."""

    def __init__(
        self,
        stack: Stack,
        intake: Intake,
        penalize: Penalize,
        *,
        clock: Callable[[], float] = time.time,
        drop: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self._stack = stack
        self._intake = intake
        self._penalize = penalize
        self._clock = clock
        self._drop = drop
        self._rng = random.Random(seed)
        self._outbox_send, self._outbox = trio.open_memory_channel[tuple[str, list[bytes]]](OUTBOX)
        self._verify = verify.limiter()
        self._nursery: trio.Nursery | None = None
        self._followed: set[str] = set()
        self.counters = Counters()
        # Called with the ids of the records each gossip message added to the store.
        self.on_stored: list[Callable[[Sequence[bytes]], None]] = []
        # Called with the forwarder of each gossip message that added records to the store.
        self.on_useful: list[Callable[[ID], None]] = []

    @property
    def followed(self) -> frozenset[str]:
        return frozenset(self._followed)

    @property
    def gate(self) -> FairGate:
        """Where peers' messages wait their turn to be judged (node/net/fair.py)."""
        return self._stack.pubsub.fair

    def mesh(self, topic: str) -> frozenset[ID]:
        """The peers in this node's GossipSub mesh of one of our topics (whom it sends to)."""
        return frozenset(self._stack.gossipsub.mesh.get(topic_name(topic), ()))

    def subscribers(self, topic: str) -> frozenset[ID]:
        """The connected peers that say they follow one of our topics."""
        return frozenset(self._stack.pubsub.peer_topics.get(topic_name(topic), ()))

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._publisher)
            task_status.started()

    async def follow(self, topic: str) -> None:
        """Subscribes to one of our topics; records on it are validated and stored from now on."""
        if topic in self._followed:
            return
        assert self._nursery is not None, "Gossip.run must be started first"
        name = topic_name(topic)
        pubsub = self._stack.pubsub
        pubsub.set_topic_validator(name, self._validator, is_async_validator=True)
        subscription = await pubsub.subscribe(name)
        self._followed.add(topic)
        self._nursery.start_soon(self._drain, subscription)

    async def publish(self, records: Sequence[Record]) -> None:
        """Queues records for gossip on their topics; waits only while the queue is full."""
        by_topic: dict[str, list[bytes]] = {}
        for record in records:
            by_topic.setdefault(topic_of(record), []).append(record.raw)
        for topic, raws in by_topic.items():
            await self._outbox_send.send((topic, raws))

    # Receiving.

    async def _validator(self, forwarder: ID, message: rpc_pb2.Message) -> bool:
        # py-libp2p swallows whatever a validator raises (and drops the message quietly), so
        # every outcome is decided here: nothing may escape.
        try:
            return await self._validate(forwarder, message)
        except StorageError:
            # Our store failed (a full disk): the batch is not stored, not passed on, and not
            # held against the peer. The gateway logs the failure and status shows it; sync
            # fetches these records again once the store takes writes.
            self.counters.unstored += 1
            return False
        except Exception:
            log.exception("gossip from %s could not be handled (a bug in the node)", forwarder)
            return False

    async def _validate(self, forwarder: ID, message: rpc_pb2.Message) -> bool:
        if forwarder == self._stack.host.get_id():
            return True  # our own batch: its records were ingested before they were published
        if self._drop and self._rng.random() < self._drop:
            self.counters.dropped += 1
            return True  # fault injection: as if this node never received the message
        topics = [t[len(PREFIX) :] for t in message.topicIDs if t.startswith(PREFIX)]
        try:
            blobs = decode_batch(message.data)
        except ProtocolError as exc:
            self._reject(forwarder, str(exc))
            return False
        if len(topics) != 1:
            self._reject(forwarder, f"a batch on {len(message.topicIDs)} topics")
            return False
        # Records we hold already cost a hash each, and no signature check.
        fresh = await self._intake.fresh(blobs)
        self.counters.duplicates += len(blobs) - len(fresh)
        if not fresh:
            # A batch of records we all had is not passed on: that is how replays die out. An
            # honest forwarder sends one now and then (we got the records by sync first), so
            # only replays past the peer's allowance count against it.
            self.counters.replays += 1
            ids = [hashlib.sha256(blob).digest() for blob in blobs]
            if self._intake.replay(str(forwarder), ids):
                self._reject(
                    forwarder, f"replayed {len(blobs)} records we hold, past its allowance"
                )
            return False
        # Records whose authors' rations are spent are dropped before any signature check.
        unrationed = self._intake.ration(fresh)
        rationed = len(fresh) - len(unrationed)
        self.counters.rationed += rationed
        if not unrationed:
            return False  # not passed on, and nobody's offence (node/net/core/authors.py)
        fresh = unrationed
        try:
            # The clock is the intake's to judge: a record from the near future is held.
            records, errors = await decode_all(fresh, self._verify, now=None)
            if errors:
                raise errors[0]
        except ProtocolError as exc:
            self._reject(forwarder, str(exc))
            return False
        self.counters.verified += len(fresh)
        taken = await self._intake.take(str(forwarder), topics[0], records)
        result = taken.result
        self.counters.received += len(records)
        self.counters.stored += len(result.added) + len(result.released)
        self.counters.duplicates += len(result.duplicates)
        self.counters.held += taken.held
        self.counters.orphaned += len(result.orphaned)
        self.counters.rationed += taken.rationed
        stored = result.added + result.released
        if stored:
            for listener in self.on_stored:
                listener(stored)
            for useful in self.on_useful:
                useful(forwarder)
        if taken.offence is not None:
            self._reject(forwarder, taken.offence)
            return False
        if result.rejected:
            rid, error = result.rejected[0]
            self._reject(forwarder, f"record {rid.hex()[:16]}: {error}")
            return False
        if taken.refused or taken.rationed or rationed:
            # Orphans past the peer's quota, or records past their authors' rations, were not
            # stored: nor are they passed on, so that a flood of them stops here. Nobody is
            # blamed for the rations: the forwarder cannot know what others brought us.
            return False
        # Held records are passed on: a peer whose clock runs ahead of ours finds them valid.
        return bool(result.added or result.orphaned or taken.held)

    def _reject(self, forwarder: ID, reason: str) -> None:
        self.counters.invalid_messages += 1
        log.debug("invalid gossip from %s: %s", forwarder, reason)
        self._penalize(forwarder, reason)

    async def _drain(self, subscription: object) -> None:
        get = subscription.get  # type: ignore[attr-defined]
        while True:
            await get()

    # Publishing.

    async def _publisher(self) -> None:
        batches: dict[str, _Batch] = {}
        while True:
            deadline = min((b.started + LINGER for b in batches.values()), default=math.inf)
            with trio.move_on_at(deadline) as waited:
                topic, raws = await self._outbox.receive()
            if waited.cancelled_caught:
                now = trio.current_time()
                # Parents (META) first; sorted() keeps the others in order.
                aged_topics = [t for t, b in batches.items() if b.started + LINGER <= now]
                for aged in sorted(aged_topics, key=lambda t: t != META):
                    await self._send(aged, batches.pop(aged))
                continue
            for raw in raws:
                batch = batches.get(topic)
                if batch is not None and batch.size + len(raw) > BATCH_BYTES:
                    await self._send_after_parents(batches, topic)
                    batch = None
                if batch is None:
                    batch = batches[topic] = _Batch(trio.current_time())
                batch.records.append(raw)
                batch.size += len(raw)
                if len(batch.records) >= BATCH_RECORDS:
                    await self._send_after_parents(batches, topic)

    async def _send_after_parents(self, batches: dict[str, _Batch], topic: str) -> None:
        """Sends `topic`'s batch, and before it the projects and profiles still lingering:
        the work they are parents of would otherwise reach peers first, as orphans, and past a
        peer's orphan quota be left out (a project submitted with its contributions lost 831
        of 20,000 in the throughput benchmark, with sync off)."""
        if topic != META and META in batches:
            await self._send(META, batches.pop(META))
        await self._send(topic, batches.pop(topic))

    async def _send(self, topic: str, batch: _Batch) -> None:
        name = topic_name(topic)
        await self._wait_for_queues(name)
        data = encode_batch(batch.records)
        assert len(data) <= MAX_BATCH_BYTES
        try:
            await self._stack.pubsub.publish(name, data)
        except Exception:
            # The publisher must outlive any one batch: this one is lost to gossip, and the
            # records (stored already) reach peers through sync.
            log.exception("publishing %d records on %s failed", len(batch.records), topic)
            return
        self.counters.published_messages += 1
        self.counters.published_records += len(batch.records)

    async def _wait_for_queues(self, name: str) -> None:
        pubsub = self._stack.pubsub
        with trio.move_on_after(QUEUE_WAIT):
            while True:
                peers = pubsub.peer_topics.get(name, ())
                queues = [pubsub.peer_queues.get(p) for p in peers]
                if all(q is None or len(q) <= QUEUE_HIGH for q in queues):
                    return
                self.counters.queue_waits += 1
                await trio.sleep(0.001)
