"""Property tests: round trips, and that no change to a signed record goes unnoticed."""

from __future__ import annotations

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    BadSignature,
    Body,
    ProtocolError,
    decode,
    decode_body,
    encode_body,
    sign,
)
from tests.support import factories as f
from tests.support.strategies import bodies

ALICE = f.key("alice")


@given(bodies)
def test_body_round_trip(body: Body) -> None:
    data = encode_body(body)
    assert decode_body(data) == body
    assert encode_body(decode_body(data)) == data


@given(bodies)
def test_record_round_trip(body: Body) -> None:
    record = sign(body, ALICE)
    again = decode(record.raw)
    assert again == record
    assert again.id == record.id
    assert again.author == bytes(ALICE.verify_key)


@settings(max_examples=300)
@given(bodies, st.data())
def test_any_bit_flip_fails(body: Body, data: st.DataObject) -> None:
    raw = sign(body, ALICE).raw
    position = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    mutated = bytearray(raw)
    mutated[position // 8] ^= 1 << (position % 8)
    try:
        decode(bytes(mutated))
    except ProtocolError:
        return
    raise AssertionError(f"flipping bit {position} went unnoticed")


@given(bodies, bodies)
def test_swapped_body_fails_signature(body: Body, other: Body) -> None:
    record = sign(body, ALICE)
    other_bytes = encode_body(other)
    if other_bytes == encode_body(body):
        return
    forged = msgpack.packb([record.author, record.signature, other_bytes], use_bin_type=True)
    try:
        decode(forged)
    except BadSignature:
        return
    raise AssertionError("a signature verified over another body")


@given(bodies)
def test_other_author_fails_signature(body: Body) -> None:
    record = sign(body, ALICE)
    forged = msgpack.packb(
        [f.pub("mallory"), record.signature, encode_body(body)], use_bin_type=True
    )
    try:
        decode(forged)
    except BadSignature:
        return
    raise AssertionError("a signature verified for another author")
