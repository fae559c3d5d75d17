"""Serving sync: answers the reconcile, fetch and peers requests of other nodes, within limits.

The responder keeps no state between requests, so serving many peers costs no memory: a
reconcile round is answered from the store's block summaries of the topic (`StoreItems`, in a
reader thread of the gateway), a fetch from the stored bytes, unchanged. Limits, against a
peer that would make us work without end: per peer a token bucket of REQUEST_RATE requests per
second (burst REQUEST_BURST), at most MAX_INBOUND requests served at once, every request and
response size-capped by `protocol.wire`. A banned peer is refused; a request that does not
decode earns a strike. node/net/sync.py is the other side: the node's own sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.request_response import BytesCodec, RequestContext, RequestResponseConfig

from node.gateway import Gateway
from node.net.peers import Peers
from protocol import ProtocolError
from protocol.reconcile import INFINITY, Bound, Item, Reconciler, fingerprint_of_sum
from protocol.wire import (
    MAX_PAYLOAD_BYTES,
    MAX_RESPONSE_BYTES,
    Fetch,
    PeerList,
    PeersRequest,
    Reconcile,
    Records,
    Refused,
    Response,
    decode_request,
    encode_response,
)
from storage import StorageError, Store

log = logging.getLogger(__name__)

PROTOCOL = TProtocol("/workwork/sync/1.0.0")
REQUEST_RATE = 50.0
REQUEST_BURST = 100.0
# Rate-limit buckets kept before idle ones are forgotten.
MAX_BUCKETS = 1024
MAX_INBOUND = 32
TIMEOUT = 30.0
CONFIG = RequestResponseConfig(
    timeout=TIMEOUT,
    max_request_size=MAX_PAYLOAD_BYTES + 1024,
    max_response_size=MAX_RESPONSE_BYTES,
    max_concurrent_inbound=MAX_INBOUND,
)
CODEC = BytesCodec()


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


class Server:
    """Answers sync requests from the store, through the gateway, within the limits above."""

    def __init__(self, gateway: Gateway, peers: Peers) -> None:
        self._gateway = gateway
        self._store = gateway.store
        self._peers = peers
        self._buckets: dict[ID, _Bucket] = {}

    def forget(self, peer: ID) -> None:
        """`peer` left: its rate-limit bucket goes."""
        self._buckets.pop(peer, None)

    async def handle(self, data: bytes, context: RequestContext) -> bytes:
        """Answers one request of `context.peer_id` (py-libp2p's RequestResponse handler)."""
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
        if isinstance(request, PeersRequest):
            # A surplus connection (a newcomer at a full node) has what it came for: it may be
            # trimmed once the answer had time to reach it (node/net/core/slots.py).
            self._peers.served(peer)
            return encode_response(PeerList(self._peers.share()))
        try:
            response = await self._gateway.read(self._answer, request)
        except StorageError as exc:
            log.warning("cannot serve sync to %s: %s", peer, exc)
            response = Refused("the store cannot be read")
        return encode_response(response)

    def _answer(self, request: Reconcile | Fetch) -> Response:
        """Answers a reconcile round or a fetch from the store (in a reader thread)."""
        if isinstance(request, Reconcile):
            reconciler = Reconciler(StoreItems(self._store, request.topic))
            try:
                return Reconcile(reconciler.respond(request.payload))
            except ProtocolError as exc:
                return Refused(f"bad reconcile message: {exc}")
        # 64 bytes for the response's frame, 8 per record's (as the size caps count them).
        return Records(tuple(self._store.get_raws(request.ids, MAX_RESPONSE_BYTES - 64, 8)))
