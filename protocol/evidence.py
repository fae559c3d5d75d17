"""Messages of `/workwork/evidence/1`: one peer asks another for an evidence file by its hash.

    request  = ["get", contribution id: bin 32, sha256: bin 32]
    response = ["blob", file: bin] | ["error", reason: str]

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
from protocol.errors import BlobTooLarge, NonCanonical, WireError
from protocol.records import Contribution
from protocol.uri import workwork_digest
from protocol.wire import MAX_REASON_BYTES, Refused

PROTOCOL_ID = "/workwork/evidence/1"
MAX_REQUEST_BYTES = 96
# What a response carries around the file: its tag and the bin header.
OVERHEAD = 32


@dataclass(frozen=True, slots=True)
class Get:
    """Asks for the file of sha256 `sha256` that contribution `contribution_id` names."""

    contribution_id: bytes
    sha256: bytes


@dataclass(frozen=True, slots=True)
class Blob:
    """A file's bytes."""

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
    return pack(("get", request.contribution_id, request.sha256))


def decode_get(data: bytes) -> Get:
    """Decodes a request.

    Raises:
        WireError, NonCanonical: malformed, non-canonical or over its bound.
    """
    if len(data) > MAX_REQUEST_BYTES:
        raise WireError(f"evidence request: {len(data)} bytes, the limit is {MAX_REQUEST_BYTES}")
    data = bytes(data)
    value = unpack(data, WireError, "evidence request", max_bin=32, max_str=8, max_array=3)
    match value:
        case ("get", bytes(cid), bytes(digest)) if len(cid) == 32 and len(digest) == 32:
            if pack(value) != data:
                raise NonCanonical("evidence request: not in canonical encoding")
            return Get(cid, digest)
    raise WireError("evidence request: expected ['get', contribution id, sha256]")


def encode_answer(answer: Answer) -> bytes:
    if isinstance(answer, Blob):
        return pack(("blob", answer.data))
    return pack(("error", answer.reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")))


def decode_answer(data: bytes, *, max_bytes: int) -> Answer:
    """Decodes a response carrying a file of at most `max_bytes`.

    Raises:
        BlobTooLarge: the file is larger than `max_bytes` (a peer may take larger ones).
        WireError, NonCanonical: malformed or non-canonical.
    """
    if len(data) > max_bytes + OVERHEAD:
        raise BlobTooLarge(f"evidence response: {len(data)} bytes, the limit is {max_bytes}")
    data = bytes(data)
    value = unpack(
        data,
        WireError,
        "evidence response",
        max_bin=max_bytes + OVERHEAD,
        max_str=MAX_REASON_BYTES,
        max_array=2,
    )
    match value:
        case ("blob", bytes(blob)):
            if len(blob) > max_bytes:
                raise BlobTooLarge(
                    f"evidence response: a file of {len(blob)} bytes, over {max_bytes}"
                )
            answer: Answer = Blob(blob)
        case ("error", str(reason)):
            answer = Refused(reason)
        case _:
            raise WireError("evidence response: expected ['blob', bytes] or ['error', reason]")
    if pack(value) != data:
        raise NonCanonical("evidence response: not in canonical encoding")
    return answer


def matches(data: bytes, sha256: bytes) -> bool:
    """Returns whether `data` hashes to `sha256`."""
    return hashlib.sha256(data).digest() == sha256
