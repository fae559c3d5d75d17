"""Gossip batches and sync messages: round trips and strict decoding."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import ProtocolError
from protocol.wire import (
    MAX_BATCH_BYTES,
    MAX_FETCH_IDS,
    Fetch,
    PeerList,
    PeersRequest,
    Reconcile,
    Records,
    Refused,
    WireError,
    decode_batch,
    decode_request,
    decode_response,
    encode_batch,
    encode_request,
    encode_response,
)
from tests.support import factories as f


def pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def test_batch_round_trip() -> None:
    raws = [f.profile().raw, f.project().raw]
    assert decode_batch(encode_batch(raws)) == tuple(raws)
    assert decode_batch(encode_batch([])) == ()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        pack([2, []]),
        pack([1]),
        pack([1, ["text"]]),
        pack([1, [b"x" * 70_000]]),
        pack({"v": 1}),
        pack([1, []]) + b"\x00",
        b"\x92\x01\xdc\x00\x00",  # the empty array as array16: not canonical
        b"\x00" * (MAX_BATCH_BYTES + 1),
    ],
)
def test_bad_batches(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_batch(data)


def test_requests_and_responses_round_trip() -> None:
    for request in (Reconcile(b"x", "meta"), Fetch((b"a" * 32,)), PeersRequest()):
        assert decode_request(encode_request(request)) == request
    peers = PeerList((("12D3KooW", ("/ip4/127.0.0.1/tcp/1",)),))
    for response in (Reconcile(b"x"), Records((b"abc",)), peers, Refused("no")):
        assert decode_response(encode_response(response)) == response


@pytest.mark.parametrize(
    "value",
    [
        ["reconcile", "work/99", b""],  # no such topic
        ["reconcile", "meta"],
        ["fetch", [b"x" * 31]],
        ["fetch", [b"x" * 32] * (MAX_FETCH_IDS + 1)],
        ["peers", 1],
        ["delete everything"],
        [],
    ],
)
def test_bad_requests(value: object) -> None:
    with pytest.raises(ProtocolError):
        decode_request(pack(value))


def test_fetch_size_is_checked_on_encode_too() -> None:
    with pytest.raises(WireError):
        encode_request(Fetch((b"x" * 32,) * (MAX_FETCH_IDS + 1)))


@pytest.mark.parametrize(
    "value",
    [
        ["peers", [["id", ["/ip4/1.2.3.4/tcp/1"] * 9]]],
        ["peers", [["id"]] * 2],
        ["records", [1]],
        ["error", b"bytes"],
        ["reconcile"],
    ],
)
def test_bad_responses(value: object) -> None:
    with pytest.raises(ProtocolError):
        decode_response(pack(value))


@settings(max_examples=300)
@given(st.binary(max_size=512))
def test_fuzz(data: bytes) -> None:
    for decoder in (decode_batch, decode_request, decode_response):
        with contextlib.suppress(ProtocolError):
            decoder(data)
