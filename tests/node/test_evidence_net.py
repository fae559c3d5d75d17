"""Evidence files between real nodes over `/workwork/evidence/1`, and peers that misbehave.

Nodes run on 127.0.0.1 with real libp2p hosts, stores and evidence stores; the hostile peers
are bare py-libp2p hosts (tests/support/hostile.py) that answer or ask as a lying, failing or
greedy node would.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import multiaddr
import pytest
import trio
from libp2p.abc import IHost, INetStream
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.request_response import (
    BytesCodec,
    RequestContext,
    RequestResponse,
    RequestResponseConfig,
)

from node.config import EvidenceConfig, NetworkConfig
from node.errors import EvidenceMismatch, EvidenceTooLarge, EvidenceUnavailable
from node.net.evidence import PROTOCOL
from node.net.node import Node
from protocol import Record
from protocol.codec import pack
from protocol.evidence import CHUNK, Blob, Get, decode_answer, encode_answer, encode_get
from protocol.uri import evidence_uri
from protocol.wire import Refused
from tests.support import factories as f
from tests.support.hostile import bare_peer
from tests.support.nodes import wait_for

DATA = b"chapter 4, in German\n" * 200
SHA = hashlib.sha256(DATA).digest()


@asynccontextmanager
async def node(root: Path, **evidence: Any) -> AsyncIterator[Node]:
    """A node with its own evidence bounds (`EvidenceConfig`), until the block exits."""
    running = Node(root, NetworkConfig(sync_interval=3600.0), evidence=EvidenceConfig(**evidence))
    async with trio.open_nursery() as nursery:
        await nursery.start(running.run)
        try:
            yield running
        finally:
            nursery.cancel_scope.cancel()


def work(sha: bytes = SHA) -> Record:
    return f.contribution(evidence_uri=evidence_uri(sha), evidence_hash=sha)


async def holding(owner: Node, data: bytes = DATA) -> Record:
    """Makes `owner` hold a file and a contribution that names it; returns the contribution."""
    sha = await trio.to_thread.run_sync(owner.evidence.put, data)
    contribution = work(sha)
    await owner.submit([f.project(), contribution])
    return contribution


async def link(a: Node, b: Node) -> None:
    await b.connect(a.addrs()[0])
    await wait_for(lambda: a.peer_id in b.peers.connected(), timeout=10)


async def dial(host: IHost, target: Node) -> None:
    await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(target.addrs()[0])))
    await wait_for(lambda: target.peers.connected() != [], timeout=10)


async def test_a_file_added_on_one_node_is_fetched_and_verified_by_another(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        async with node(tmp_path / "a") as a, node(tmp_path / "b") as b:
            contribution = await holding(a)
            await link(a, b)
            assert not b.evidence.has(SHA)
            assert await b.evidence_net.get(contribution.id, SHA) == DATA
            # Kept, checked: B holds it now, and answers from its own store next time.
            assert b.evidence.has(SHA)
            assert await trio.to_thread.run_sync(b.evidence.get, SHA) == DATA


async def test_only_files_a_stored_contribution_names_are_served(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with node(tmp_path / "a") as a, node(tmp_path / "b") as b:
            contribution = await holding(a)
            # Uploaded to A, named by no contribution: not served.
            secret = b"my private notes"
            hidden = await trio.to_thread.run_sync(a.evidence.put, secret)
            await link(a, b)
            for cid, sha in ((contribution.id, hidden), (bytes(32), hidden), (bytes(32), SHA)):
                with pytest.raises(EvidenceUnavailable, match="no contribution here names"):
                    await b.evidence_net.fetch(a.peer_id, cid, sha)
            # A contribution A holds, naming a file A does not have.
            other = work(hashlib.sha256(b"elsewhere").digest())
            await a.submit([other])
            with pytest.raises(EvidenceUnavailable, match="not held here"):
                await b.evidence_net.fetch(a.peer_id, other.id, other.body.evidence_hash)  # type: ignore[attr-defined]
            with pytest.raises(EvidenceUnavailable, match="no node gave the file"):
                await b.evidence_net.get(other.id, other.body.evidence_hash)  # type: ignore[attr-defined]
            assert not b.evidence.has(hidden)


def _answering(host: IHost, answer: bytes) -> None:
    """Makes a bare host answer every evidence request with `answer`."""

    async def handler(data: bytes, context: RequestContext) -> bytes:
        return answer

    bounds = RequestResponseConfig(max_response_size=4 * CHUNK, max_request_size=1024)
    RequestResponse(host).set_handler(PROTOCOL, handler, BytesCodec(), bounds)


def strikes(target: Node, peer: IHost) -> int:
    """The strikes `target` holds against a bare peer (its peer book's record of offences)."""
    return len(target.peers.book._strikes.get(str(peer.get_id()), []))


@pytest.mark.parametrize(
    ("answer", "error", "strike"),
    [
        (encode_answer(Blob(12, b"not the file")), EvidenceMismatch, True),
        (b"\x93garbage", EvidenceUnavailable, True),
        (pack(("blob", 1, b"x", "extra")), EvidenceUnavailable, True),
        (encode_answer(Refused("no")), EvidenceUnavailable, False),
        # A chunk shorter than the file it says, and then the same chunk again.
        (encode_answer(Blob(1000, bytes(100))), EvidenceUnavailable, True),
        # Larger than this node takes (4,096 bytes here): refused at the first chunk.
        (encode_answer(Blob(4097, bytes(4097))), EvidenceTooLarge, False),
        (encode_answer(Blob(2**30, bytes(1000))), EvidenceTooLarge, False),
        # An answer over one chunk's bound.
        (pack(("blob", 2 * CHUNK, bytes(CHUNK + 100))), EvidenceUnavailable, True),
    ],
    ids=[
        "wrong-bytes",
        "garbage",
        "malformed",
        "refused",
        "short-chunk",
        "oversize",
        "oversize-declared",
        "oversize-frame",
    ],
)
async def test_a_hostile_peer_s_answer_is_refused_and_nothing_is_kept(
    tmp_path: Path, answer: bytes, error: type[Exception], strike: bool
) -> None:
    with trio.fail_after(30):
        async with node(tmp_path / "b", max_bytes=4096) as b, bare_peer() as (host, _):
            _answering(host, answer)
            await dial(host, b)
            peer = host.get_id()
            with pytest.raises(error):
                await b.evidence_net.fetch(peer, work().id, SHA)
            with pytest.raises(EvidenceUnavailable):
                await b.evidence_net.get(work().id, SHA)
            assert not b.evidence.has(SHA)
            assert not list((tmp_path / "b" / "evidence").glob("*/*"))
            assert (strikes(b, host) > 0) is strike


async def test_a_peer_that_hangs_up_mid_stream_is_no_file(tmp_path: Path) -> None:
    async def hang_up(stream: INetStream) -> None:
        await stream.read(100)
        # A frame that says 1,000 bytes follow, then 10 of them, then the end.
        await stream.write(b"\xe8\x07" + b"x" * 10)
        await stream.close()

    with trio.fail_after(30):
        async with node(tmp_path / "b") as b, bare_peer() as (host, _):
            host.set_stream_handler(PROTOCOL, hang_up)
            await dial(host, b)
            with pytest.raises(EvidenceUnavailable, match="Request"):
                await b.evidence_net.fetch(host.get_id(), work().id, SHA)
            assert not b.evidence.has(SHA)


async def test_an_honest_peer_still_gives_the_file_beside_a_liar(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with (
            node(tmp_path / "a") as a,
            node(tmp_path / "b") as b,
            bare_peer() as (host, _),
        ):
            _answering(host, encode_answer(Blob(9, b"a forgery")))
            await dial(host, b)
            contribution = await holding(a)
            await link(a, b)
            assert await b.evidence_net.get(contribution.id, SHA) == DATA


async def _ask(host: IHost, target: Node, request: bytes) -> Any:
    raw = await RequestResponse(host).send_request(
        target.peer_id, [PROTOCOL], request, BytesCodec()
    )
    return decode_answer(raw)


async def test_a_greedy_or_garbled_requester_is_limited(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with (
            node(tmp_path / "a", peer_burst=3, peer_rate=0.001) as a,
            bare_peer() as (host, _),
        ):
            contribution = await holding(a)
            await dial(host, a)
            request = encode_get(Get(contribution.id, SHA))
            for _ in range(3):
                assert await _ask(host, a, request) == Blob(len(DATA), DATA)
            assert await _ask(host, a, request) == Refused("rate limited: ask again later")
            assert strikes(a, host) == 0

        async with node(tmp_path / "a2") as a2, bare_peer() as (host, _):
            await dial(host, a2)
            answer = await _ask(host, a2, b"\x91\xa3get")
            assert isinstance(answer, Refused) and answer.reason.startswith("bad request")
            assert strikes(a2, host) == 1


async def test_a_damaged_copy_is_dropped_and_fetched_again(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with node(tmp_path / "a") as a, node(tmp_path / "b") as b:
            contribution = await holding(a)
            path = b.evidence.path(SHA)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"rotted")
            await link(a, b)
            assert await b.evidence_net.get(contribution.id, SHA) == DATA
            assert path.read_bytes() == DATA


async def test_a_file_of_several_chunks_arrives_whole(tmp_path: Path) -> None:
    # One answer of several MiB stalled in py-libp2p's yamux; a file travels in chunks.
    data = bytes(range(256)) * (2 * CHUNK // 256) + b"tail" * 1000
    sha = hashlib.sha256(data).digest()
    with trio.fail_after(60):
        async with node(tmp_path / "a") as a, node(tmp_path / "b") as b:
            contribution = await holding(a, data)
            await link(a, b)
            assert await b.evidence_net.fetch(a.peer_id, contribution.id, sha) == data
