"""Fuzzing the decoder: whatever the bytes, it answers with a record or a ProtocolError."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import Body, ProtocolError, Record, decode, decode_body, sign
from tests.support import factories as f
from tests.support.strategies import bodies

# Slow (thousands of generated inputs): left out of the fast loop, `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow

ALICE = f.key("alice")


def outcome(data: bytes) -> Record | None:
    try:
        return decode(data)
    except ProtocolError:
        return None


@settings(max_examples=500)
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    outcome(data)


msgpack_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(),
        st.text(max_size=40),
        st.binary(max_size=70),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=12),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=30,
)


@settings(max_examples=500)
@given(msgpack_values)
def test_random_msgpack_bodies_and_envelopes(value: Any) -> None:
    packed = msgpack.packb(value, use_bin_type=True)
    with contextlib.suppress(ProtocolError):
        decode_body(packed)
    outcome(packed)
    outcome(msgpack.packb([f.pub("alice"), b"\x00" * 64, packed], use_bin_type=True))


@settings(max_examples=500)
@given(msgpack_values.filter(lambda v: isinstance(v, list)), st.integers(0, 12))
def test_random_fields_in_a_known_kind(fields: list[Any], kind: int) -> None:
    name = ["profile", "project", "contribution", "acceptance", "epoch_root"][kind % 5]
    packed = msgpack.packb([1, name, *fields], use_bin_type=True)
    with contextlib.suppress(ProtocolError):
        decode_body(packed)


mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 8)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(bodies, st.lists(mutations, min_size=1, max_size=4))
def test_mutated_records(body: Body, steps: list[tuple[str, int, Any]]) -> None:
    data = bytearray(sign(body, ALICE).raw)
    for op, position, arg in steps:
        at = position % (len(data) + 1)
        if op == "flip" and at < len(data):
            data[at] ^= arg or 1
        elif op == "insert":
            data[at:at] = arg
        elif op == "delete":
            del data[at : at + arg]
        elif op == "truncate":
            del data[at:]
    result = outcome(bytes(data))
    # Only the exact original bytes may decode: any change breaks canonical form or signature.
    assert result is None or result.raw == sign(body, ALICE).raw
