"""Signed envelopes: the bytes that travel, their strict decoding, and record ids.

Wire format, all msgpack, all canonical (the one encoding msgpack-python's packer produces):

    envelope = [author: bin 32, signature: bin 64, body: bin]
    body     = [FORMAT_VERSION, kind: str, created_at: int, *fields]
    signature = Ed25519(author, SIGNING_DOMAIN + body)
    record id = sha256(envelope)

Decoding re-encodes what it read and rejects any input that differs, so every value has exactly
one byte string and so one id: non-minimal integers, str where bin belongs, maps, floats, nil,
ext types and trailing bytes are all refused. A whole envelope is at most MAX_RECORD_SIZE bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey

from protocol.codec import pack, unpack
from protocol.errors import (
    BadSignature,
    DecodeError,
    InvalidField,
    NonCanonical,
    ProtocolError,
    RecordTooLarge,
    UnknownKind,
)
from protocol.fields import KEY_SIZE
from protocol.records import FORMAT_VERSION, KINDS, Body

MAX_RECORD_SIZE = 64 * 1024
SIGNATURE_SIZE = 64
SIGNING_DOMAIN = b"workwork/record/v1\x00"

B = TypeVar("B", bound=Body)


@dataclass(frozen=True, slots=True)
class Record:
    """A signed record: its body, who signed it, and its exact bytes and id."""

    body: Body
    author: bytes
    signature: bytes
    raw: bytes = field(repr=False)
    id: bytes

    @property
    def kind(self) -> str:
        return self.body.KIND

    def expect(self, cls: type[B]) -> B:
        """Returns the body as `cls`, or raises `UnknownKind` if it is another kind."""
        if not isinstance(self.body, cls):
            raise UnknownKind(f"expected a {cls.KIND} record, got a {self.kind} record")
        return self.body


def _unpack(data: bytes, what: str) -> Any:
    return unpack(
        data, DecodeError, what, max_bin=MAX_RECORD_SIZE, max_str=MAX_RECORD_SIZE, max_array=4096
    )


def encode_body(body: Body) -> bytes:
    """Returns the canonical bytes of a body (what the author signs)."""
    return pack((FORMAT_VERSION, body.KIND, *body.wire()))


def decode_body(data: bytes) -> Body:
    """Decodes and checks canonical body bytes.

    Raises:
        DecodeError: not a msgpack array of the right shape, or an unknown kind or version.
        InvalidField: a field of the wrong type or out of bounds.
        NonCanonical: the bytes are not the canonical encoding of what they hold.
    """
    value = _unpack(data, "body")
    if type(value) is not tuple or len(value) < 2:
        raise DecodeError("body: expected an array [version, kind, ...]")
    version, kind = value[0], value[1]
    if version != FORMAT_VERSION or type(version) is not int:
        raise UnknownKind(f"body: unknown format version {version!r}")
    cls = KINDS.get(kind) if type(kind) is str else None
    if cls is None:
        raise UnknownKind(f"body: unknown record kind {kind!r}")
    names = cls.SCHEMA
    given = len(value) - 2
    if not len(names) - cls.OPTIONAL <= given <= len(names):
        expected = f"{len(names) - cls.OPTIONAL} to {len(names)}" if cls.OPTIONAL else len(names)
        raise InvalidField(kind, "*", f"expected {expected} fields, got {given}")
    body = cls(*value[2:])
    # An optional field present on the wire but empty would be absent in the canonical form.
    if given > len(names) - cls.OPTIONAL and value[-1] == ():
        raise NonCanonical(f"body: optional field {names[given - 1][0]!r} is empty, not absent")
    if pack(value) != data:
        raise NonCanonical("body: not in canonical encoding")
    return body


def sign(body: Body, key: SigningKey) -> Record:
    """Signs `body` with `key` and returns the record."""
    body_bytes = encode_body(body)
    author = bytes(key.verify_key)
    signature = key.sign(SIGNING_DOMAIN + body_bytes).signature
    raw = pack((author, signature, body_bytes))
    if len(raw) > MAX_RECORD_SIZE:
        raise RecordTooLarge(f"record is {len(raw)} bytes, the limit is {MAX_RECORD_SIZE}")
    return Record(body, author, signature, raw, hashlib.sha256(raw).digest())


def decode(data: bytes, *, verify: bool = True) -> Record:
    """Decodes envelope bytes into a record, checking everything that needs no other record.

    Args:
        data: the envelope, as received.
        verify: check the signature. Only callers that read back bytes they verified before
            (the local store) may pass False.

    Raises:
        RecordTooLarge, DecodeError, UnknownKind, NonCanonical, InvalidField, BadSignature:
            all subclasses of `ProtocolError`.
    """
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) > MAX_RECORD_SIZE:
        raise RecordTooLarge(f"record is {len(data)} bytes, the limit is {MAX_RECORD_SIZE}")
    value = _unpack(data, "envelope")
    if type(value) is not tuple or len(value) != 3:
        raise DecodeError("envelope: expected an array [author, signature, body]")
    author, signature, body_bytes = value
    if type(author) is not bytes or len(author) != KEY_SIZE:
        raise DecodeError("envelope: author must be 32 bytes")
    if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
        raise DecodeError("envelope: signature must be 64 bytes")
    if type(body_bytes) is not bytes:
        raise DecodeError("envelope: body must be bytes")
    if pack(value) != data:
        raise NonCanonical("envelope: not in canonical encoding")
    body = decode_body(body_bytes)
    if verify:
        check_signature(author, signature, body_bytes)
    return Record(body, author, signature, data, hashlib.sha256(data).digest())


# The canonical envelope starts with a 3-array and a bin 8 of 32 bytes: the author's key.
_AUTHOR_PREFIX = b"\x93\xc4\x20"


def claimed_author(data: bytes) -> bytes | None:
    """Returns the author key that envelope bytes name, without decoding or verifying them
    (None if they do not start as an envelope does).

    Only a hint: an unverified claim may be false. It is good for refusing work cheaply (a node
    whose ration for that author is spent drops the bytes before checking them), never for
    charging or crediting anyone.
    """
    if len(data) < 3 + KEY_SIZE or data[:3] != _AUTHOR_PREFIX:
        return None
    return bytes(data[3 : 3 + KEY_SIZE])


def accepted(data: bytes) -> bool:
    """Returns whether `decode` accepts `data`, signature included, without raising.

    Runs in the worker processes of `node.net.verify`: they check a whole batch this way, and
    the process that holds the batch rebuilds the accepted records with `rebuild`.
    """
    try:
        decode(data)
    except ProtocolError:
        return False
    return True


def rebuild(data: bytes, rid: bytes | None = None) -> Record:
    """Returns the record of envelope bytes that `decode` accepted, without checking them again.

    Only for bytes that `decode` (or `accepted`) accepted as they are, in this process or
    another: the fields are taken as they unpack, with no bounds, canonical-form or signature
    check, which is what makes it about three times cheaper than `decode(verify=False)`.

    Args:
        data: the envelope bytes, exactly as accepted.
        rid: their sha256, if the caller has it already.
    """
    author, signature, body_bytes = _unpack(data, "envelope")
    value = _unpack(body_bytes, "body")
    cls = KINDS[value[1]]
    if len(value) - 2 != len(cls.SCHEMA):
        # Optional fields absent on the wire: their defaults are the dataclass's to fill in.
        return decode(data, verify=False)
    body = cls.__new__(cls)
    # What the dataclass's own __init__ does for a frozen class, minus __post_init__'s checks.
    setter = object.__setattr__
    for (name, _), field_value in zip(cls.SCHEMA, value[2:], strict=True):
        setter(body, name, field_value)
    if rid is None:
        rid = hashlib.sha256(data).digest()
    return Record(body, author, signature, data, rid)


def signature_valid(data: bytes) -> bool:
    """Returns whether `data` is an envelope whose signature verifies, without decoding its body.

    For checking signatures apart from decoding (`node.net.verify` does it in other processes): the
    verdict holds for these exact bytes, which `decode` must still accept. False for anything
    `decode` would refuse before it got to the signature.
    """
    try:
        value = _unpack(data, "envelope")
    except DecodeError:
        return False
    if type(value) is not tuple or len(value) != 3:
        return False
    author, signature, body_bytes = value
    if type(author) is not bytes or len(author) != KEY_SIZE:
        return False  # libsodium reads 32 bytes of key whatever the length: never pass less
    if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
        return False
    if type(body_bytes) is not bytes:
        return False
    try:
        crypto_sign_open(signature + SIGNING_DOMAIN + body_bytes, author)
    except (BadSignatureError, ValueError):
        return False
    return True


def check_signature(author: bytes, signature: bytes, body_bytes: bytes) -> None:
    """Raises `BadSignature` unless `signature` is `author`'s over the domain and `body_bytes`."""
    try:
        crypto_sign_open(signature + SIGNING_DOMAIN + body_bytes, author)
    except (BadSignatureError, ValueError) as exc:
        # libsodium also refuses small-order and non-canonical keys, as ValueError or
        # BadSignatureError depending on where it notices.
        raise BadSignature(f"signature does not verify for author {author.hex()[:16]}") from exc
