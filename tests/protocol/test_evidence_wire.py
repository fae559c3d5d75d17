"""Messages of /workwork/evidence/1: strict decoding, bounds, and which file a contribution names."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import Contribution
from protocol.codec import pack
from protocol.errors import DecodeError, WireError
from protocol.evidence import (
    CHUNK,
    Blob,
    Get,
    decode_answer,
    decode_get,
    encode_answer,
    encode_get,
    named_sha256,
)
from protocol.uri import evidence_uri
from protocol.wire import Refused
from tests.support import factories as f

SHA = hashlib.sha256(b"x").digest()


def test_round_trips() -> None:
    assert decode_get(encode_get(Get(bytes(32), SHA))) == Get(bytes(32), SHA, 0)
    assert decode_get(encode_get(Get(bytes(32), SHA, CHUNK))) == Get(bytes(32), SHA, CHUNK)
    assert decode_answer(encode_answer(Blob(10, b"abc"))) == Blob(10, b"abc")
    assert decode_answer(encode_answer(Refused("no"))) == Refused("no")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        pack(("get", bytes(32), SHA)),
        pack(("get", bytes(31), SHA, 0)),
        pack(("put", bytes(32), SHA, 0)),
        pack(("get", bytes(32), SHA, -1)),
        pack(("get", bytes(32), SHA, 2**40)),
        pack(("get", bytes(32), SHA, 0, 1)),
        b"\xdc\x00\x04" + pack(("get", bytes(32), SHA, 0))[1:],  # an array16 header: not canonical
        pack(("get", bytes(32), SHA, 0)) + b"\x00",
        bytes(200),
    ],
)
def test_bad_requests_are_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_get(data)


def test_answers_are_bounded() -> None:
    with pytest.raises(WireError):
        decode_answer(encode_answer(Blob(CHUNK + 1, bytes(CHUNK + 1))))
    with pytest.raises(WireError):
        decode_answer(pack(("blob", 2, b"abc")))  # more bytes than the file has
    with pytest.raises(WireError):
        decode_answer(pack(("blob", 0, b"")))
    with pytest.raises(WireError):
        decode_answer(pack(("blob", 3, "abc")))


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_a_decode_error(data: bytes) -> None:
    for decode in (decode_get, decode_answer):
        with contextlib.suppress(DecodeError):
            decode(data)


def test_the_file_a_contribution_names() -> None:
    def body(**changes: object) -> Contribution:
        found = f.contribution(**changes).body
        assert isinstance(found, Contribution)
        return found

    assert named_sha256(body(evidence_uri=evidence_uri(SHA))) == SHA
    assert named_sha256(body(evidence_hash=SHA)) == SHA
    assert named_sha256(body()) is None
