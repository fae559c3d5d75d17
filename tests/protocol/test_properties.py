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
from protocol.envelope import accepted, rebuild
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


@given(bodies)
def test_rebuild_gives_what_decode_gives(body: Body) -> None:
    """The worker processes' path: what `accepted` accepts, `rebuild` makes into the very
    record `decode` makes, body field by field (equality of the dataclasses compares them)."""
    raw = sign(body, ALICE).raw
    assert accepted(raw)
    again = rebuild(raw)
    assert again == decode(raw)
    assert type(again.body) is type(body)
    assert again.body.values() == body.values()
    assert again.id == rebuild(raw, decode(raw).id).id


@settings(max_examples=300)
@given(bodies, st.data())
def test_any_bit_flip_is_refused_by_accepted(body: Body, data: st.DataObject) -> None:
    """What the worker processes answer for a mutated record is what `decode` says."""
    raw = sign(body, ALICE).raw
    position = data.draw(st.integers(0, len(raw) * 8 - 1), label="bit")
    mutated = bytearray(raw)
    mutated[position // 8] ^= 1 << (position % 8)
    assert not accepted(bytes(mutated))


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
