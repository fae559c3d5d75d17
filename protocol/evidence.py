"""Messages of `/workwork/evidence/1`: one peer asks another for an evidence file by its hash.

    request  = ["get", contribution id: bin 32, sha256: bin 32, offset: uint]
    response = ["blob", size: uint, chunk: bin] | ["error", reason: str]

A file travels in chunks of at most CHUNK bytes, one request each: `size` is the whole file's,
`chunk` its bytes from `offset` (exactly `min(CHUNK, size - offset)` of them). Large single
messages stall py-libp2p's yamux flow control (a 8 MiB answer did not arrive whole), chunks
bound the memory of a request on both sides, and the fetcher learns the size from the first
answer, so it refuses a file larger than it takes before fetching the rest.

Canonical msgpack, decoded strictly (`protocol.codec`), sizes bounded before anything is
allocated. A request names the contribution that refers to the file as well as the file's
hash: the responder serves only files that a contribution it holds names (`named_sha256`),
which one point lookup checks, so a node never serves what was uploaded to it and never used,
and nobody can probe its evidence store for other files. The requester checks that the bytes
hash to the sha256 it asked for; the responder's word is not taken.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from protocol.codec import pack, unpack
from protocol.errors import NonCanonical, WireError
from protocol.records import Contribution
from protocol.uri import workwork_digest
from protocol.wire import MAX_REASON_BYTES, Refused

PROTOCOL_ID = "/workwork/evidence/1"
MAX_REQUEST_BYTES = 112
# The most file bytes one response carries.
CHUNK = 1024 * 1024
# What a response carries around its chunk: the tag, the size and the bin header.
OVERHEAD = 32
# The largest file size a message may state (the node's own bound is far below).
MAX_SIZE = 2**40


@dataclass(frozen=True, slots=True)
class Get:
    """Asks for the file of sha256 `sha256` that contribution `contribution_id` names, from
    byte `offset` on."""

    contribution_id: bytes
    sha256: bytes
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Blob:
    """A chunk of a file of `size` bytes: its bytes from the offset asked for."""

    size: int
    data: bytes


Answer = Blob | Refused


def named_sha256(body: Contribution) -> bytes | None:
    """Returns the sha256 of the file a contribution names: the one of its `workwork:` URI,
    else its 32-byte evidence hash; None if it names no file by hash."""
    named = workwork_digest(body.evidence_uri)
    if named is not None:
        return named
    return body.evidence_hash if len(body.evidence_hash) == 32 else None


def encode_get(request: Get) -> bytes:
    return pack(("get", request.contribution_id, request.sha256, request.offset))


def decode_get(data: bytes) -> Get:
    """Decodes a request.

    Raises:
        WireError, NonCanonical: malformed, non-canonical or over its bound.
    """
    if len(data) > MAX_REQUEST_BYTES:
        raise WireError(f"evidence request: {len(data)} bytes, the limit is {MAX_REQUEST_BYTES}")
    data = bytes(data)
    value = unpack(data, WireError, "evidence request", max_bin=32, max_str=8, max_array=4)
    match value:
        case ("get", bytes(cid), bytes(digest), int(offset)) if (
            len(cid) == 32 and len(digest) == 32 and 0 <= offset < MAX_SIZE
        ):
            if pack(value) != data:
                raise NonCanonical("evidence request: not in canonical encoding")
            return Get(cid, digest, offset)
    raise WireError("evidence request: expected ['get', contribution id, sha256, offset]")


def encode_answer(answer: Answer) -> bytes:
    if isinstance(answer, Blob):
        return pack(("blob", answer.size, answer.data))
    return pack(("error", answer.reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")))


def decode_answer(data: bytes) -> Answer:
    """Decodes a response: a chunk of at most CHUNK bytes of a file of at most MAX_SIZE, or a
    refusal. (Whether the chunk is the one asked for is the fetcher's to check.)

    Raises:
        WireError, NonCanonical: malformed, non-canonical or over its bounds.
    """
    if len(data) > CHUNK + OVERHEAD:
        raise WireError(f"evidence response: {len(data)} bytes, the limit is {CHUNK + OVERHEAD}")
    data = bytes(data)
    value = unpack(
        data,
        WireError,
        "evidence response",
        max_bin=CHUNK,
        max_str=MAX_REASON_BYTES,
        max_array=3,
    )
    match value:
        case ("blob", int(size), bytes(chunk)) if 0 < size < MAX_SIZE and len(chunk) <= size:
            answer: Answer = Blob(size, chunk)
        case ("error", str(reason)):
            answer = Refused(reason)
        case _:
            raise WireError(
                "evidence response: expected ['blob', size, bytes] or ['error', reason]"
            )
    if pack(value) != data:
        raise NonCanonical("evidence response: not in canonical encoding")
    return answer


def matches(data: bytes, sha256: bytes) -> bool:
    """Returns whether `data` hashes to `sha256`."""
    return hashlib.sha256(data).digest() == sha256
