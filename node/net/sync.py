"""Sync: what makes "nothing lost" true when gossip drops or a node was offline.

A request/response protocol on its own protocol id (`PROTOCOL`), one stream per request, over
py-libp2p's RequestResponse helper (varint-framed, size-capped, timed out). Requests are
`protocol.wire` messages:

- `reconcile(topic, payload)`: one round of range-based set reconciliation
  (`protocol.reconcile`) of the record ids both sides hold on a topic. The responder keeps no
  state between rounds, so serving many peers costs no memory.
- `fetch(ids)`: up to MAX_FETCH_IDS records by id, answered with at most MAX_RESPONSE_BYTES.
- `peers`: peer exchange.

The initiator, on every new connection and every `sync_interval` with each connected peer,
reconciles each topic it follows, then fetches what it lacks in bounded batches and puts the
records through the same decode, signature, clock and store checks as gossip. Pull only: the
other side pulls from us when it syncs in turn, which it does on the same connection.

Limits, against a peer that would make us work without end: per peer a token bucket of
REQUEST_RATE requests per second (burst REQUEST_BURST), at most MAX_INBOUND requests served at
once, every request and response size-capped by `protocol.wire`, rounds per topic bounded by
MAX_ROUNDS. A peer whose answers do not decode gets a strike (`node.net.peers`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.request_response import (
    BytesCodec,
    ProtocolNotSupportedError,
    RequestContext,
    RequestResponse,
    RequestResponseConfig,
    RequestResponseError,
)

from node.errors import SyncError
from node.net import verify
from node.net.host import Stack
from node.net.peers import Peers
from node.net.verify import decode_all
from protocol import ProtocolError, Record
from protocol.reconcile import INFINITY, Bound, Item, Reconciler, fingerprint_of_sum
from protocol.wire import (
    MAX_FETCH_IDS,
    MAX_PAYLOAD_BYTES,
    MAX_RESPONSE_BYTES,
    Fetch,
    PeerList,
    PeersRequest,
    Reconcile,
    Records,
    Refused,
    Request,
    Response,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from storage import Store

if TYPE_CHECKING:
    # trio-typing's stubs (a py-libp2p dependency) shadow trio's own annotations for mypy.
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)

PROTOCOL = TProtocol("/workwork/sync/1.0.0")
REQUEST_RATE = 50.0
REQUEST_BURST = 100.0
# Rate-limit buckets kept before idle ones are forgotten.
MAX_BUCKETS = 1024
MAX_INBOUND = 32
MAX_ROUNDS = 64
# How long a new connection's first sync waits for identify to say what the peer speaks.
IDENTIFY_WAIT = 2.0
# Fetched batches whose checks may run at once (two keep both verifying workers busy).
CHECKS_AHEAD = 2
TIMEOUT = 30.0
CONFIG = RequestResponseConfig(
    timeout=TIMEOUT,
    max_request_size=MAX_PAYLOAD_BYTES + 1024,
    max_response_size=MAX_RESPONSE_BYTES,
    max_concurrent_inbound=MAX_INBOUND,
)
_CODEC = BytesCodec()


class StoreItems:
    """The (created_at, id) items of one topic of a store, as `protocol.reconcile` reads them.

    Counts and fingerprints of ranges come from the store's block summaries of the topic
    (`Store.topic_range`), and the items at given offsets from `Store.topic_items_at`: each
    reads at most two partial blocks of the index, whatever the range. Items are read in pages.
    """

    def __init__(self, store: Store, topic: str) -> None:
        self._store = store
        self._topic = topic

    @staticmethod
    def _end(upper: Bound) -> tuple[int, bytes] | None:
        return None if upper.created_at == INFINITY else upper.key

    def _scan(self, lower: Bound, upper: Bound, limit: int | None = None) -> Iterator[Item]:
        cursor = None
        left = limit
        while left is None or left > 0:
            page = self._store.topic_ids(
                self._topic,
                start=lower.key,
                end=self._end(upper),
                cursor=cursor,
                limit=1000 if left is None else min(1000, left),
            )
            yield from page.items
            if left is not None:
                left -= len(page.items)
            if page.cursor is None:
                return
            cursor = page.cursor

    def count(self, lower: Bound, upper: Bound) -> int:
        return self._store.topic_range(self._topic, lower.key, self._end(upper))[0]

    def fingerprint(self, lower: Bound, upper: Bound) -> bytes:
        count, total = self._store.topic_range(self._topic, lower.key, self._end(upper))
        return fingerprint_of_sum(total, count)

    def items(self, lower: Bound, upper: Bound, limit: int | None = None) -> Iterator[Item]:
        return self._scan(lower, upper, limit)

    def bounds(self, lower: Bound, upper: Bound, offsets: Sequence[int]) -> list[Bound]:
        # Each bound separates the item at an offset from the one before it (offsets are >= 1).
        wanted = sorted({o for offset in offsets for o in (offset - 1, offset)})
        try:
            found = self._store.topic_items_at(self._topic, wanted, lower.key, self._end(upper))
        except IndexError as exc:
            raise ValueError(str(exc)) from None
        at = dict(zip(wanted, found, strict=True))
        return [Bound.between(at[offset - 1], at[offset]) for offset in offsets]


@dataclass
class Report:
    """What one sync with one peer did."""

    peer: str
    rounds: int = 0
    needed: int = 0
    fetched: int = 0
    stored: int = 0
    rejected: int = 0
    error: str | None = None


@dataclass
class _Checked:
    """A fetched batch on its way through the checks."""

    asked: set[bytes]
    blobs: tuple[bytes, ...]
    valid: list[Record] = field(default_factory=list)
    errors: list[ProtocolError] = field(default_factory=list)
    done: trio.Event = field(default_factory=trio.Event)


class _Bucket:
    def __init__(self, now: float) -> None:
        self.tokens = REQUEST_BURST
        self.at = now

    def take(self, now: float) -> bool:
        self.tokens = min(REQUEST_BURST, self.tokens + (now - self.at) * REQUEST_RATE)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Sync:
    """Serves and runs sync with peers."""

    def __init__(
        self,
        stack: Stack,
        store: Store,
        topics: Callable[[], Iterable[str]],
        peers: Peers,
        *,
        clock: Callable[[], float] = time.time,
        interval: float = 30.0,
    ) -> None:
        self._stack = stack
        self._store = store
        self._topics = topics
        self._peers = peers
        self._clock = clock
        self._interval = interval
        self._rr = RequestResponse(stack.host)
        self._buckets: dict[ID, _Bucket] = {}
        # The syncs under way, by peer: what catch-up progress shows.
        self._running: dict[ID, Report] = {}
        # Peers that answered that they do not speak our sync protocol.
        self._foreign: set[ID] = set()
        self._verify = verify.limiter()
        self._write = trio.CapacityLimiter(1)
        self.reports: list[Report] = []

    def active(self) -> list[Report]:
        """Returns the syncs under way, as they stand (records needed, fetched, stored)."""
        return list(self._running.values())

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._rr.set_handler(PROTOCOL, self._serve, _CODEC, CONFIG)
        task_status.started()
        while True:
            await trio.sleep(self._interval)
            for peer in self._peers.connected():
                if peer in self._foreign:
                    continue
                await self.exchange_peers(peer)
                await self._sync_quietly(peer)

    async def on_connected(self, peer: ID) -> None:
        """Exchanges peers with and syncs from a newly connected peer."""
        # Identify answers within a round trip or two; until it has, a foreign peer would be
        # asked anyway and py-libp2p would log an ERROR when it refuses.
        with trio.move_on_after(IDENTIFY_WAIT):
            while self.speaks_sync(peer) is None:
                await trio.sleep(0.01)
        if self.speaks_sync(peer) is False:
            # Not a WorkWork node (gossip may still reach it): nothing to sync, and its
            # addresses are not handed on to others by peer exchange.
            self._foreign.add(peer)
            return
        await self.exchange_peers(peer)
        # By now identify has told us where the peer listens (an inbound connection's own
        # address is an ephemeral port), so peer exchange can hand its address on.
        self._peers.learn_addrs(peer)
        await self._sync_quietly(peer)

    async def _sync_quietly(self, peer: ID) -> None:
        try:
            await self.sync_with(peer)
        except SyncError as exc:
            log.info("sync with %s failed: %s", peer, exc)

    # Serving.

    async def _serve(self, data: bytes, context: RequestContext) -> bytes:
        peer = context.peer_id
        now = trio.current_time()
        if peer not in self._buckets and len(self._buckets) >= MAX_BUCKETS:
            # A bucket that has refilled is the same as none: forget those, so that peers coming
            # and going (or one peer under many ids) cannot grow this map without end.
            full = REQUEST_BURST / REQUEST_RATE
            self._buckets = {p: b for p, b in self._buckets.items() if now - b.at < full}
        bucket = self._buckets.setdefault(peer, _Bucket(now))
        if self._peers.is_banned(peer):
            return encode_response(Refused("banned"))
        if not bucket.take(now):
            return encode_response(Refused("rate limited"))
        try:
            request = decode_request(data)
        except ProtocolError as exc:
            self._peers.penalize(peer, f"bad sync request: {exc}")
            return encode_response(Refused(f"bad request: {exc}"))
        return encode_response(self._answer(request))

    def _answer(self, request: Request) -> Response:
        if isinstance(request, Reconcile):
            reconciler = Reconciler(StoreItems(self._store, request.topic))
            try:
                return Reconcile(reconciler.respond(request.payload))
            except ProtocolError as exc:
                return Refused(f"bad reconcile message: {exc}")
        if isinstance(request, Fetch):
            out: list[bytes] = []
            size = 64
            for rid in request.ids:
                raw = self._store.get_raw(rid)
                if raw is None:
                    continue
                size += len(raw) + 8
                if size > MAX_RESPONSE_BYTES:
                    break
                out.append(raw)
            return Records(tuple(out))
        return PeerList(self._peers.share())

    # Initiating.

    def is_foreign(self, peer: ID) -> bool:
        """Whether `peer` turned out not to speak our sync protocol (not a WorkWork node)."""
        return peer in self._foreign

    def speaks_sync(self, peer: ID) -> bool | None:
        """Whether identify says the peer speaks our sync protocol; None before it has said."""
        try:
            known = self._stack.host.get_peerstore().get_protocols(peer)
        except Exception:  # py-libp2p raises PeerStoreError, or KeyError, for an unknown peer
            return None
        return (PROTOCOL in known) if known else None

    async def _request(self, peer: ID, request: Request) -> Response:
        if self.speaks_sync(peer) is False:
            # Identify already said so: asking would only make py-libp2p log an ERROR.
            self._foreign.add(peer)
            raise SyncError(f"{peer} does not speak {PROTOCOL}")
        try:
            data = await self._rr.send_request(
                peer, [PROTOCOL], encode_request(request), _CODEC, CONFIG
            )
        except ProtocolNotSupportedError as exc:
            # A libp2p peer that is not a WorkWork node (or an older one): gossip only.
            self._foreign.add(peer)
            raise SyncError(f"{peer} does not speak {PROTOCOL}") from exc
        except RequestResponseError as exc:
            raise SyncError(f"{type(exc).__name__}: {exc}") from exc
        try:
            response = decode_response(data)
        except ProtocolError as exc:
            self._peers.penalize(peer, f"bad sync response: {exc}")
            raise SyncError(f"bad response from {peer}: {exc}") from exc
        if isinstance(response, Refused):
            raise SyncError(f"{peer} refused: {response.reason}")
        return response

    async def exchange_peers(self, peer: ID) -> None:
        """Asks `peer` for the peers it knows and remembers them."""
        try:
            response = await self._request(peer, PeersRequest())
        except SyncError as exc:
            log.debug("peer exchange with %s failed: %s", peer, exc)
            return
        if isinstance(response, PeerList):
            for peer_id, addrs in response.peers:
                try:
                    ID.from_base58(peer_id)
                except Exception:  # not a peer id; the rest of the list may still be good
                    continue
                self._peers.remember(peer_id, addrs)

    async def sync_with(self, peer: ID) -> Report:
        """Reconciles every followed topic with `peer` and fetches what we lack.

        Raises:
            SyncError: the peer could not be reached or answered out of protocol.
        """
        report = Report(str(peer))
        if peer in self._running:
            return report
        self._running[peer] = report
        try:
            # Sorted, so "meta" (projects) comes before the work shards that depend on it.
            for topic in sorted(self._topics()):
                need: list[bytes] = []
                try:
                    await self._reconcile(peer, topic, report, need)
                except SyncError:
                    # What the rounds before the failure found is still fetched: a long
                    # catch-up cut short (a dropped connection, MAX_ROUNDS) goes on from there
                    # next time instead of starting over.
                    if need:
                        with contextlib.suppress(SyncError):
                            await self._fetch(peer, need, report)
                    raise
                await self._fetch(peer, need, report)
        except SyncError as exc:
            report.error = str(exc)
            raise
        finally:
            self._running.pop(peer, None)
            self.reports.append(report)
            del self.reports[:-100]
        return report

    async def _reconcile(self, peer: ID, topic: str, report: Report, need: list[bytes]) -> None:
        """Reconciles one topic with `peer`, adding the ids it holds and we lack to `need`."""
        reconciler = Reconciler(StoreItems(self._store, topic))
        message: bytes | None = reconciler.initiate()
        rounds = 0
        while message is not None:
            rounds += 1
            if rounds > MAX_ROUNDS:
                raise SyncError(f"reconciling {topic} with {peer} took over {MAX_ROUNDS} rounds")
            report.rounds += 1
            response = await self._request(peer, Reconcile(message, topic))
            if not isinstance(response, Reconcile):
                raise SyncError(f"{peer} answered a reconcile with {type(response).__name__}")
            try:
                step = reconciler.reconcile(response.payload)
            except ProtocolError as exc:
                self._peers.penalize(peer, f"bad reconcile answer: {exc}")
                raise SyncError(f"bad reconcile answer from {peer}: {exc}") from exc
            need.extend(step.need)
            report.needed += len(step.need)
            message = step.next

    async def _fetch(self, peer: ID, need: list[bytes], report: Report) -> None:
        """Fetches `need` from `peer` and stores it, in a pipeline of three stages.

        Downloading runs ahead of checking, and the checks of two batches overlap each other
        and the store's write of the batch before: so the worker processes that verify
        signatures always have work queued, and nothing waits for a round trip.
        """
        pending = [rid for rid in dict.fromkeys(need) if not self._store.has(rid)]
        downloaded_send, downloaded = trio.open_memory_channel[
            tuple[set[bytes], tuple[bytes, ...]]
        ](1)
        # In order of download; each is being checked while it waits here.
        checking_send, checking = trio.open_memory_channel[_Checked](CHECKS_AHEAD - 1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._download, peer, pending, downloaded_send)
            nursery.start_soon(self._check_all, downloaded, checking_send, nursery)
            async for batch in checking:
                await batch.done.wait()
                await self._apply(peer, batch, report)

    async def _check_all(
        self,
        downloaded: trio.MemoryReceiveChannel[tuple[set[bytes], tuple[bytes, ...]]],
        checking: trio.MemorySendChannel[_Checked],
        nursery: trio.Nursery,
    ) -> None:
        async with checking:
            async for asked, blobs in downloaded:
                batch = _Checked(asked, blobs)
                # Blocks while CHECKS_AHEAD batches are checked and not yet stored.
                await checking.send(batch)
                nursery.start_soon(self._check, batch)

    async def _check(self, batch: _Checked) -> None:
        batch.valid, batch.errors = await decode_all(batch.blobs, self._verify, now=self._clock())
        batch.done.set()

    async def _download(
        self,
        peer: ID,
        pending: list[bytes],
        send: trio.MemorySendChannel[tuple[set[bytes], tuple[bytes, ...]]],
    ) -> None:
        async with send:
            while pending:
                chunk, pending = pending[:MAX_FETCH_IDS], pending[MAX_FETCH_IDS:]
                response = await self._request(peer, Fetch(tuple(chunk)))
                if not isinstance(response, Records):
                    raise SyncError(f"{peer} answered a fetch with {type(response).__name__}")
                got = {hashlib.sha256(blob).digest() for blob in response.records}
                missing = [rid for rid in chunk if rid not in got]
                if len(missing) == len(chunk):
                    return  # nothing usable came back: stop rather than ask again
                # What the response size cap left out is asked for again.
                pending = missing + pending
                await send.send((set(chunk), response.records))

    async def _apply(self, peer: ID, batch: _Checked, report: Report) -> None:
        valid, blobs, bad = batch.valid, batch.blobs, len(batch.errors)
        unasked = [r for r in valid if r.id not in batch.asked]
        if bad or unasked:
            self._peers.penalize(peer, f"{bad} invalid or {len(unasked)} unasked records")
        wanted = [r for r in valid if r.id in batch.asked]
        result = await trio.to_thread.run_sync(
            partial(self._store.ingest, wanted, now=self._clock()), limiter=self._write
        )
        report.fetched += len(blobs)
        report.stored += len(result.added) + len(result.released)
        report.rejected += bad + len(result.rejected)
