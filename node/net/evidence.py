"""Evidence files between nodes: serving them over `/workwork/evidence/1`, and fetching them.

The messages are `protocol.evidence`'s; py-libp2p's RequestResponse carries them (one stream
per request, varint-framed, size-capped, timed out), as it carries sync.

A file travels in chunks of at most 1 MiB, one request each (`protocol.evidence`). Serving,
within limits: a peer may ask `[evidence] peer_burst` chunks at once, then `peer_rate` a
second (`core.rates.PeerRates`); at most MAX_INBOUND requests are served
at once; a banned peer is refused; a request that does not decode earns a strike. A file is
served only if a contribution in the store names it (`protocol.evidence.named_sha256`: one
point lookup through the gateway) and the evidence store holds it, checked against its hash.

Fetching: the node's own evidence store first; then its connected peers, one after another,
until one gives bytes that hash to the sha256 asked for, in chunks of the size its first answer
states (a file larger than this node takes is refused before the rest is asked for). The fetched file is kept (and so
served in turn: the node holds the contribution that names it). What each peer did wrong is
judged: bytes that do not match the hash, garbage, or another chunk than the one asked for
are a strike; a hang-up, a timeout, a refusal or a file larger than this node takes are not (a peer may just not have it, or allow
larger files than we do).
"""

from __future__ import annotations

import logging

import trio
from libp2p.abc import IHost
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.request_response import (
    BytesCodec,
    MessageTooLargeError,
    RequestContext,
    RequestResponse,
    RequestResponseConfig,
    RequestResponseError,
)

from node.config import EvidenceConfig
from node.errors import EvidenceError, EvidenceMismatch, EvidenceTooLarge, EvidenceUnavailable
from node.evidence import Evidence
from node.gateway import Gateway
from node.net.core.rates import PeerRates
from node.net.peers import Peers
from protocol import Contribution, ProtocolError
from protocol.evidence import (
    CHUNK,
    MAX_REQUEST_BYTES,
    OVERHEAD,
    PROTOCOL_ID,
    Blob,
    Get,
    decode_answer,
    decode_get,
    encode_answer,
    encode_get,
    matches,
    named_sha256,
)
from protocol.wire import Refused
from storage import StorageError

log = logging.getLogger(__name__)

PROTOCOL = TProtocol(PROTOCOL_ID)
MAX_INBOUND = 8
# Seconds one request may take, whole: 16 MiB over a slow link.
TIMEOUT = 60.0
# Peers asked for one file before giving up.
MAX_PEERS_ASKED = 8
CODEC = BytesCodec()


class EvidenceService:
    """Serves this node's evidence files to peers and fetches others' from them.

    Args:
        host: the libp2p host.
        gateway: the way to the record store.
        evidence: the node's evidence store.
        peers: the peer manager (bans, strikes, connected peers).
        config: the bounds.
    """

    def __init__(
        self,
        host: IHost,
        gateway: Gateway,
        evidence: Evidence,
        peers: Peers,
        config: EvidenceConfig,
    ) -> None:
        self._gateway = gateway
        self._evidence = evidence
        self._peers = peers
        self._rr = RequestResponse(host)
        self._rates = PeerRates(config.peer_rate, config.peer_burst)
        self.max_bytes = config.max_bytes
        self.config = RequestResponseConfig(
            timeout=TIMEOUT,
            max_request_size=MAX_REQUEST_BYTES,
            max_response_size=CHUNK + OVERHEAD,
            max_concurrent_inbound=MAX_INBOUND,
        )

    def start(self) -> None:
        """Starts answering peers' requests."""
        # A peer's bucket outlives its connection: hanging up and dialing again does not
        # refill it (PeerRates bounds the table).
        self._rr.set_handler(PROTOCOL, self.handle, CODEC, self.config)

    # Serving.

    async def handle(self, data: bytes, context: RequestContext) -> bytes:
        """Answers one request of `context.peer_id` (py-libp2p's RequestResponse handler)."""
        peer = context.peer_id
        if self._peers.is_banned(peer):
            return encode_answer(Refused("banned"))
        if not self._rates.allow(peer, trio.current_time()):
            return encode_answer(Refused("rate limited: ask again later"))
        try:
            request = decode_get(data)
        except ProtocolError as exc:
            self._peers.penalize(peer, f"bad evidence request: {exc}")
            return encode_answer(Refused(f"bad request: {exc}"))
        try:
            return encode_answer(await self._answer(request))
        except (StorageError, EvidenceError) as exc:
            log.warning("cannot serve evidence %s to %s: %s", request.sha256.hex(), peer, exc)
            return encode_answer(Refused("not held here"))

    async def _answer(self, request: Get) -> Blob | Refused:
        named = await self._gateway.read(self._named, request.contribution_id)
        if named != request.sha256:
            return Refused("no contribution here names that file")
        if request.offset == 0:
            # The first chunk: the whole file is checked against its hash (a damaged one is
            # removed, and not served); the following chunks are read as they are.
            data = await trio.to_thread.run_sync(self._evidence.get, request.sha256)
            if data is None:
                return Refused("not held here")
            if len(data) > self.max_bytes:
                return Refused("larger than this node serves")
            return Blob(len(data), data[:CHUNK])
        found = await trio.to_thread.run_sync(
            self._evidence.read, request.sha256, request.offset, CHUNK
        )
        if found is None:
            return Refused("not held here")
        size, chunk = found
        if size > self.max_bytes or request.offset >= size:
            return Refused("no such part of the file")
        return Blob(size, chunk)

    def _named(self, cid: bytes) -> bytes | None:
        found = self._gateway.store.get(cid)
        if found is None or not isinstance(found.body, Contribution):
            return None
        return named_sha256(found.body)

    # Fetching.

    async def get(self, contribution_id: bytes, sha256: bytes) -> bytes:
        """Returns the file of `sha256` that a contribution names: from this node's evidence
        store, else from a connected peer (checked against the hash, then kept here).

        Raises:
            EvidenceUnavailable: neither this node nor any peer asked gave it; the message says
                what each peer answered.
        """
        try:
            data = await trio.to_thread.run_sync(self._evidence.get, sha256)
        except EvidenceMismatch as exc:
            # The copy here was damaged (and removed): a peer's copy may be good.
            log.warning("%s; asking peers", exc)
            data = None
        if data is not None:
            return data
        failures: list[str] = []
        for peer in self._peers.connected()[:MAX_PEERS_ASKED]:
            if self._peers.is_banned(peer):
                continue
            try:
                data = await self.fetch(peer, contribution_id, sha256)
            except EvidenceError as exc:
                failures.append(f"{str(peer)[-8:]}: {exc}")
                continue
            await trio.to_thread.run_sync(self._keep, data, sha256)
            return data
        asked = "; ".join(failures) if failures else "no peer is connected"
        raise EvidenceUnavailable(f"no node gave the file {sha256.hex()}: {asked}")

    def _keep(self, data: bytes, sha256: bytes) -> None:
        try:
            self._evidence.put(data, digest=sha256)
        except StorageError as exc:
            # The file was fetched and checked: the caller has it, even if this disk is full.
            log.warning("cannot keep the evidence file %s: %s", sha256.hex(), exc)

    async def fetch(self, peer: ID, contribution_id: bytes, sha256: bytes) -> bytes:
        """Returns the file of `sha256` from one peer, chunk by chunk, checked against the hash.

        Raises:
            EvidenceMismatch: the peer sent bytes of another hash (a strike).
            EvidenceTooLarge: the peer's file is larger than this node takes.
            EvidenceUnavailable: the peer refused, hung up, timed out, or answered garbage or
                another chunk than the one asked for (a strike).
        """
        first = await self._chunk(peer, Get(contribution_id, sha256, 0))
        size = first.size
        if size > self.max_bytes:
            raise EvidenceTooLarge(
                f"the file has {size:,} bytes; this node takes at most {self.max_bytes:,}"
            )
        data = bytearray()
        chunk = first
        while True:
            if chunk.size != size or len(chunk.data) != min(CHUNK, size - len(data)):
                self._peers.penalize(peer, "an evidence chunk that is not the one asked for")
                raise EvidenceUnavailable("the peer sent another chunk than the one asked for")
            data += chunk.data
            if len(data) == size:
                break
            chunk = await self._chunk(peer, Get(contribution_id, sha256, len(data)))
        whole = bytes(data)
        if not matches(whole, sha256):
            self._peers.penalize(peer, f"evidence {sha256.hex()[:16]} of another hash")
            raise EvidenceMismatch("the bytes sent do not hash to the sha256 asked for")
        return whole

    async def _chunk(self, peer: ID, request: Get) -> Blob:
        """Returns one chunk from a peer (`fetch`)."""
        try:
            raw = await self._rr.send_request(
                peer, [PROTOCOL], encode_get(request), CODEC, self.config
            )
        except MessageTooLargeError as exc:
            # An answer is one chunk: a larger one breaks the protocol.
            self._peers.penalize(peer, "an evidence answer over its bound")
            raise EvidenceUnavailable(f"an answer over {CHUNK + OVERHEAD} bytes") from exc
        except RequestResponseError as exc:
            raise EvidenceUnavailable(f"{type(exc).__name__}: {exc}") from exc
        try:
            answer = decode_answer(raw)
        except ProtocolError as exc:
            self._peers.penalize(peer, f"bad evidence response: {exc}")
            raise EvidenceUnavailable(f"a bad answer: {exc}") from exc
        if isinstance(answer, Refused):
            raise EvidenceUnavailable(f"refused: {answer.reason}")
        return answer
