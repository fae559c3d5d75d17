"""Network messages that carry records: gossip batches and sync requests and responses.

All are canonical msgpack, decoded strictly like records (`protocol.envelope`): re-encoded and
compared, sizes bounded before anything is allocated.

    gossip batch   = [BATCH_VERSION, [record envelope: bin, ...]]
    sync request   = ["reconcile", topic: str, payload: bin]      (payload: protocol.reconcile)
                   | ["fetch", [record id: bin 32, ...]]
                   | ["peers"]
    sync response  = ["reconcile", payload: bin]
                   | ["records", [record envelope: bin, ...]]
                   | ["peers", [[peer id: str, [multiaddr: str, ...]], ...]]
                   | ["error", reason: str]

A batch exists because py-libp2p spends about a millisecond of CPU per gossip message whatever
its size: hundreds of records per message is how a node moves thousands of records per second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from protocol.codec import pack, unpack
from protocol.envelope import MAX_RECORD_SIZE
from protocol.errors import NonCanonical, WireError
from protocol.topics import ALL as TOPICS

BATCH_VERSION = 1
# py-libp2p drops pubsub messages over 1 MiB; leave room for its own framing and signature.
MAX_BATCH_BYTES = 1_000_000
MAX_BATCH_RECORDS = 4096
MAX_FETCH_IDS = 1024
# A sync response may carry more than a gossip message: it travels on its own stream.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_REASON_BYTES = 512
MAX_PEERS = 32
MAX_PEER_ADDRS = 8


def _unpack(data: bytes, what: str, max_bytes: int, max_items: int) -> Any:
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) > max_bytes:
        raise WireError(f"{what}: {len(data)} bytes, the limit is {max_bytes}")
    value = unpack(
        data,
        WireError,
        what,
        max_bin=max(MAX_RECORD_SIZE, MAX_PAYLOAD_BYTES),
        max_str=MAX_REASON_BYTES,
        max_array=max_items,
    )
    if pack(value) != data:
        raise NonCanonical(f"{what}: not in canonical encoding")
    return value


def _blobs(value: Any, what: str, *, size: int | None = None) -> tuple[bytes, ...]:
    if type(value) is not tuple:
        raise WireError(f"{what}: expected an array")
    for item in value:
        if type(item) is not bytes or (size is not None and len(item) != size):
            raise WireError(f"{what}: every item must be {size or 'some'} bytes")
        if size is None and len(item) > MAX_RECORD_SIZE:
            raise WireError(f"{what}: an item is over {MAX_RECORD_SIZE} bytes")
    return value


def encode_batch(records: Sequence[bytes]) -> bytes:
    """Returns the gossip message carrying `records` (envelope bytes)."""
    return pack((BATCH_VERSION, tuple(records)))


def decode_batch(data: bytes) -> tuple[bytes, ...]:
    """Returns the record envelopes of a gossip message, not yet decoded.

    Raises:
        WireError, NonCanonical: the message is not a well-formed batch.
    """
    value = _unpack(data, "batch", MAX_BATCH_BYTES, MAX_BATCH_RECORDS)
    if type(value) is not tuple or len(value) != 2 or value[0] != BATCH_VERSION:
        raise WireError(f"batch: expected [{BATCH_VERSION}, [records]]")
    return _blobs(value[1], "batch")


@dataclass(frozen=True, slots=True)
class Reconcile:
    """A reconciliation round for one topic (request) or its answer (response)."""

    payload: bytes
    topic: str = ""


@dataclass(frozen=True, slots=True)
class Fetch:
    """A request for records by id."""

    ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Records:
    """Records sent in answer to a fetch; ids the responder does not have are left out."""

    records: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PeersRequest:
    """A request for peers the responder knows (peer exchange)."""


@dataclass(frozen=True, slots=True)
class PeerList:
    """Peers the responder knows: (peer id, multiaddrs) pairs, as text."""

    peers: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """A request the responder would not serve, and why."""

    reason: str


Request = Reconcile | Fetch | PeersRequest
Response = Reconcile | Records | PeerList | Refused


def encode_request(request: Request) -> bytes:
    if isinstance(request, Reconcile):
        return pack(("reconcile", request.topic, request.payload))
    if isinstance(request, PeersRequest):
        return pack(("peers",))
    if len(request.ids) > MAX_FETCH_IDS:
        raise WireError(f"fetch: {len(request.ids)} ids, at most {MAX_FETCH_IDS} per request")
    return pack(("fetch", request.ids))


def decode_request(data: bytes) -> Request:
    """Decodes a sync request.

    Raises:
        WireError, NonCanonical: malformed, unknown, over its limits, or an unknown topic.
    """
    value = _unpack(data, "request", MAX_PAYLOAD_BYTES + 1024, MAX_FETCH_IDS)
    if type(value) is not tuple or not value:
        raise WireError("request: expected an array [op, ...]")
    match value:
        case ("reconcile", str(topic), bytes(payload)):
            if topic not in TOPICS:
                raise WireError(f"request: unknown topic {topic[:64]!r}")
            return Reconcile(payload, topic)
        case ("fetch", ids):
            return Fetch(_blobs(ids, "fetch", size=32))
        case ("peers",):
            return PeersRequest()
    raise WireError(f"request: unknown or malformed operation {str(value[0])[:32]!r}")


def encode_response(response: Response) -> bytes:
    if isinstance(response, Reconcile):
        return pack(("reconcile", response.payload))
    if isinstance(response, Records):
        return pack(("records", response.records))
    if isinstance(response, PeerList):
        return pack(("peers", response.peers[:MAX_PEERS]))
    return pack(("error", response.reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")))


def decode_response(data: bytes) -> Response:
    """Decodes a sync response.

    Raises:
        WireError, NonCanonical: malformed, unknown or over its limits.
    """
    value = _unpack(data, "response", MAX_RESPONSE_BYTES, MAX_BATCH_RECORDS)
    if type(value) is not tuple or not value:
        raise WireError("response: expected an array [op, ...]")
    match value:
        case ("reconcile", bytes(payload)):
            return Reconcile(payload)
        case ("records", records):
            return Records(_blobs(records, "records"))
        case ("peers", peers):
            return PeerList(_peer_list(peers))
        case ("error", str(reason)):
            return Refused(reason)
    raise WireError(f"response: unknown or malformed operation {str(value[0])[:32]!r}")


def _peer_list(value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if type(value) is not tuple or len(value) > MAX_PEERS:
        raise WireError(f"peers: expected an array of at most {MAX_PEERS} peers")
    for entry in value:
        match entry:
            case (str(), tuple(addrs)) if len(addrs) <= MAX_PEER_ADDRS and all(
                type(a) is str for a in addrs
            ):
                continue
        raise WireError("peers: each peer is [peer id, [multiaddr, ...]]")
    return value
