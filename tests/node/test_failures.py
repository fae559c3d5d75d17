"""No peer can stop a node: peers that die, hang up or answer garbage in the middle of a sync,
over real hosts on 127.0.0.1, each case repeated so that the timing lands everywhere.

A node that meets such a peer must go on: the failure ends that peer's sync session (and, for
garbage, earns it a strike), never the node; what the node was fetching comes from another peer,
or from the same one once it is back. Every wait is on a condition and bounded.
"""

from __future__ import annotations

import logging
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import multiaddr
import pytest
import trio
from libp2p.abc import IHost, INetStream
from libp2p.io.exceptions import IncompleteReadError
from libp2p.io.msgio import VarIntLengthMsgReadWriter
from libp2p.network.stream.exceptions import StreamError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from node.client import Client, DaemonError
from node.net.node import Node
from node.net.serve import PROTOCOL
from protocol import Record, decode
from protocol.reconcile import Reconciler, SortedItems
from protocol.topics import META, shard, work
from protocol.topics import topic as topic_of
from protocol.wire import (
    MAX_RESPONSE_BYTES,
    Fetch,
    PeerList,
    Reconcile,
    Records,
    decode_request,
    encode_response,
)
from storage import Store
from tests.support import factories as f
from tests.support.hostile import bare_peer
from tests.support.nodes import running, wait_for

# Slow (peers killed and restarted, repeated): left out of the fast loop, `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("peer_child.py")
# Enough records that fetching them takes a good second: room for a kill to land mid-fetch.
RECORDS = 20_000
ROUNDS = 8


def made_records() -> list[Record]:
    return [f.project(), *(f.contribution(summary=f"work {i}") for i in range(RECORDS))]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    """A data dir whose store holds a project and RECORDS contributions to it, built once."""
    root = tmp_path_factory.mktemp("template")
    records = made_records()
    with Store.open(root / "store") as store:
        result = store.ingest(records, now=f.T0 + 60)
        assert len(result.added) == len(records)
    return root, [r.id for r in records]


def copy_of(template: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copytree(template / "store", dest / "store")
    return dest


@contextmanager
def child(data_dir: Path, *bootstrap: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Runs tests/node/peer_child.py over `data_dir`; yields the process and its address."""
    log = (data_dir.parent / f"{data_dir.name}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(CHILD), str(data_dir), *bootstrap],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()  # the child prints its address once it runs
        assert line.startswith("/ip4/127.0.0.1/"), data_dir.parent / f"{data_dir.name}.log"
        yield process, line
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        log.close()


def sync_with(node: Node, peer: str) -> Callable[[], object]:
    """The report of the sync under way with `peer`, if any."""
    return lambda: next((r for r in node.sync.active() if r.peer == peer), None)


def no_bugs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The node's errors in the log: a failure a peer caused is never one."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith("node")
    ]


async def kill_when(
    node: Node, process: subprocess.Popen[str], peer: str, rng: random.Random
) -> bool:
    """Kills `process` with SIGKILL at a random point of the node's sync with it; returns
    whether the kill landed in the middle of the fetch."""
    point = rng.choice(("connected", "reconciled", "fetching", "fetching", "fetching"))
    if point != "connected":
        await wait_for(lambda: sync_with(node, peer)() is not None, timeout=20, step=0.002)
    if point == "fetching":
        fraction = rng.uniform(0.05, 0.8)

        def far_enough() -> bool:
            report = sync_with(node, peer)()
            if report is None:
                return True  # over already
            # The project's shard, not the meta topic (one record) that is synced first.
            return report.needed > RECORDS // 2 and report.fetched >= fraction * report.needed  # type: ignore[attr-defined]

        await wait_for(far_enough, timeout=20, step=0.002)
    report = sync_with(node, peer)()
    mid = report is not None and 0 < report.fetched < report.needed  # type: ignore[attr-defined]
    process.kill()
    return mid


async def test_a_peer_killed_mid_fetch_costs_the_node_nothing(
    template: tuple[Path, list[bytes]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The catching-up node survives a peer killed with SIGKILL at any point of a catch-up,
    and finishes from another peer."""
    source, ids = template
    rng = random.Random(11)
    landed = 0
    for round_ in range(ROUNDS):
        base = tmp_path / f"round{round_}"
        with trio.fail_after(90):
            async with running(copy_of(source, base / "honest"), role="bootstrap") as honest:
                with child(copy_of(source, base / "doomed")) as (process, doomed):
                    peer = doomed.rsplit("/p2p/", 1)[1]
                    bootstrap = (doomed, honest.addrs()[0])
                    async with running(
                        base / "node", role="bootstrap", bootstrap=bootstrap
                    ) as node:
                        landed += await kill_when(node, process, peer, rng)
                        await wait_for(lambda n=node: total(n) == len(ids), timeout=60)
                        assert all(node.store.has(rid) for rid in ids)
    assert no_bugs(caplog) == []
    # The kills landed where the test claims: most in the middle of a fetch.
    assert landed >= ROUNDS // 2, landed


async def test_a_peer_killed_mid_fetch_is_finished_from_when_it_returns(
    template: tuple[Path, list[bytes]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With no other peer, the node waits for the killed peer to come back, and finishes."""
    source, ids = template
    rng = random.Random(12)
    for round_ in range(ROUNDS // 2):
        base = tmp_path / f"round{round_}"
        data = copy_of(source, base / "peer")
        with trio.fail_after(90):
            async with running(base / "node", role="bootstrap") as node:
                with child(data) as (process, addr):
                    peer = addr.rsplit("/p2p/", 1)[1]
                    await node.connect(addr)
                    await kill_when(node, process, peer, rng)
                    await wait_for(lambda n=node, p=peer: gone(n, p), timeout=20)
                # Back, at another port, with the same peer id: it dials the node.
                with child(data, node.addrs()[0]):
                    await wait_for(lambda n=node: total(n) == len(ids), timeout=60)
                assert all(node.store.has(rid) for rid in ids)
    assert no_bugs(caplog) == []


def total(node: Node) -> int:
    """The records of the test's project the node holds (on the meta topic and its shard)."""
    return node.store.topic_count(META) + node.store.topic_count(work(shard(f.pid())))


def gone(node: Node, peer: str) -> bool:
    return peer not in {str(p) for p in node.peers.connected()}


async def test_a_peer_that_dialed_in_is_dialed_back_where_it_listens(
    dirs: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    """A peer that connected from an ephemeral port, and whose sessions all failed, is dialed
    back at the address identify gave once its connection drops (a returned peer whose first
    session failed was redialed only at its old, dead port)."""
    with trio.fail_after(90):
        async with running(dirs("node"), role="bootstrap") as node, bare_peer() as (host, _):

            async def hang_up(stream: INetStream) -> None:
                await stream.reset()

            host.set_stream_handler(PROTOCOL, hang_up)
            target = info_from_p2p_addr(multiaddr.Multiaddr(node.addrs()[0]))
            peer = str(host.get_id())
            for _ in range(3):
                await host.connect(target)
                await wait_for(lambda: any(r.peer == peer for r in node.sync.reports), timeout=20)
                assert all(r.error for r in node.sync.reports if r.peer == peer)
                listens = {str(a).split("/p2p/")[0] for a in host.get_addrs()}
                known = next(k for k in node.peers.known() if k.peer_id == peer)
                assert listens & set(known.addrs), (listens, known)
                node.sync.reports.clear()
                await host.disconnect(target.peer_id)
                # Every connection was short-lived, so each counts as a failed dial: the third
                # redial waits the backoff of five failures (16 s) and up to half of it more.
                await wait_for(lambda: target.peer_id in host.get_connected_peers(), timeout=30)
                await host.disconnect(target.peer_id)
    assert no_bugs(caplog) == []


# Peers that fail in the middle of an answer, in every way a stream can.


def _items(records: list[Record]) -> SortedItems:
    return SortedItems((r.body.created_at, r.id) for r in records)  # type: ignore[attr-defined]


def serve_failing(host: IHost, records: list[Record], fail: str, rng: random.Random) -> None:
    """Serves sync as holding `records`, answering reconcile rounds honestly and every fetch
    with the failure `fail`."""
    topics: dict[str, list[Record]] = {}
    for record in records:
        topics.setdefault(topic_of(record), []).append(record)
    reconcilers = {name: Reconciler(_items(held)) for name, held in topics.items()}
    empty = Reconciler(SortedItems(()))
    by_id = {r.id: r.raw for r in records}

    async def handler(stream: INetStream) -> None:
        io = VarIntLengthMsgReadWriter(stream, max_msg_size=MAX_RESPONSE_BYTES)
        try:
            request = decode_request(await io.read_msg())
            if isinstance(request, Reconcile):
                reconciler = reconcilers.get(request.topic, empty)
                await io.write_msg(encode_response(Reconcile(reconciler.respond(request.payload))))
                await stream.close()
                return
            if not isinstance(request, Fetch):
                await io.write_msg(encode_response(PeerList(())))
                await stream.close()
                return
            answer = encode_response(Records(tuple(by_id[i] for i in request.ids if i in by_id)))
            framed = _varint(len(answer)) + answer
            if fail == "reset":
                await stream.reset()
            elif fail == "eof":
                await stream.close()
            elif fail == "cut":
                await stream.write(framed[: rng.randrange(1, len(framed))])
                await stream.reset()
            elif fail == "cut-close":
                await stream.write(framed[: rng.randrange(1, len(framed))])
                await stream.close()
            elif fail == "garbage":
                await io.write_msg(rng.randbytes(rng.randrange(1, 4096)))
                await stream.close()
            elif fail == "wrong-answer":
                await io.write_msg(encode_response(PeerList(())))
                await stream.close()
            elif fail == "bad-records":
                # What was asked, every other record with a byte of its signature flipped.
                asked = [by_id[i] for i in request.ids if i in by_id]
                blobs = [b if n % 2 else _flip(b) for n, b in enumerate(asked)]
                await io.write_msg(encode_response(Records(tuple(blobs))))
                await stream.close()
        except (StreamError, IncompleteReadError):  # the node hung up first: fine
            await stream.reset()

    host.set_stream_handler(PROTOCOL, handler)


def _flip(blob: bytes) -> bytes:
    """The envelope with one byte of its signature changed: it decodes, and does not verify."""
    at = blob.index(decode(blob, verify=False).signature)
    return blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1 :]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


FAILURES = ("reset", "eof", "cut", "cut-close", "garbage", "wrong-answer", "bad-records")


@asynccontextmanager
async def failing_peer(
    victim: Node, records: list[Record], fail: str, rng: random.Random
) -> AsyncIterator[ID]:
    async with bare_peer() as (host, _):
        serve_failing(host, records, fail, rng)
        await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(victim.addrs()[0])))
        yield host.get_id()


@pytest.mark.parametrize("fail", FAILURES)
async def test_a_peer_that_fails_mid_answer_ends_only_its_own_sync(
    fail: str, dirs: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Hang-ups, cut frames, garbage and wrong answers to fetches, several times each: the
    node goes on, the failing peer's sessions end in errors, and an honest peer brings the
    records."""
    records = [f.project(), *(f.contribution(summary=f"work {i}") for i in range(300))]
    rng = random.Random(fail)
    with trio.fail_after(60):
        async with (
            running(dirs("victim"), role="bootstrap") as victim,
            running(dirs("honest"), role="bootstrap") as honest,
        ):
            for _ in range(5):
                async with failing_peer(victim, records, fail, rng) as bad:
                    # The session the node opened with it by itself has ended.
                    await wait_for(
                        lambda b=bad: any(r.peer == str(b) for r in victim.sync.reports),
                        timeout=20,
                    )
                    report = next(r for r in victim.sync.reports if r.peer == str(bad))
                    assert report.error is not None or report.rejected > 0, report
            # The node is alive and well: an honest peer brings everything.
            await honest.submit(records)
            await victim.connect(honest.addrs()[0])
            await wait_for(lambda: all(victim.store.has(r.id) for r in records), timeout=20)
    assert no_bugs(caplog) == []


# Our own disk failing: the node says so, refuses what it cannot store, blames no peer, and
# takes everything in once space returns.

FULL_DISK_CHILD = Path(__file__).with_name("full_disk_child.py")


async def test_a_full_disk_is_visible_and_nothing_is_lost_once_space_returns(
    dirs: Callable[[str], Path],
) -> None:
    before = [f.project(), *(f.contribution(summary=f"before {i}") for i in range(20))]
    during = [f.contribution(summary=f"during {i}") for i in range(200)]
    home = dirs("full")
    home.mkdir()
    with trio.fail_after(90):
        async with running(dirs("source"), role="bootstrap") as source:
            await source.submit(before)
            log = (home.parent / "full.log").open("w")
            process = subprocess.Popen(
                [sys.executable, str(FULL_DISK_CHILD), str(home), source.addrs()[0]],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
            try:
                assert process.stdout is not None
                lines = process.stdout

                async def said(word: str) -> None:
                    line = await trio.to_thread.run_sync(lines.readline, abandon_on_cancel=True)
                    assert line.strip() == word, (home.parent / "full.log").read_text()[-3000:]

                await said("ready")
                api = Client.connect(home)
                status = await trio.to_thread.run_sync(api.status)
                assert status["store"] == {"writable": True, "error": None}
                await wait_for(lambda: _held(api) == len(before), timeout=30)

                process.send_signal(signal.SIGUSR2)
                await said("full")
                await source.submit(during)
                # Gossip (and sync, every second) cannot store them: the node says so.
                await wait_for(lambda: not _status(api)["store"]["writable"], timeout=30)
                shown = _status(api)["store"]["error"]
                assert "File too large" in shown or "No space" in shown, shown
                with pytest.raises(DaemonError) as refused:
                    await trio.to_thread.run_sync(lambda: api.set_profile(name="carol"))
                assert refused.value.status == 503 and refused.value.type == "StorageError"
                assert "free space" in refused.value.hint
                assert _held(api) == len(before)
                # No peer was blamed for our disk.
                assert not source.peers.is_banned(_peer(api)) and not _strikes(source)

                process.send_signal(signal.SIGUSR1)
                await said("space")
                await wait_for(lambda: _held(api) == len(before) + len(during), timeout=30)
                assert _status(api)["store"]["writable"]
                api.close()
                process.send_signal(signal.SIGTERM)
                assert await trio.to_thread.run_sync(process.wait) == 0
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)
                log.close()


def _status(api: Client) -> dict[str, Any]:
    return api.status()  # type: ignore[no-any-return]


def _held(api: Client) -> int:
    return int(_status(api)["records"])


def _peer(api: Client) -> str:
    return str(_status(api)["peer_id"])


def _strikes(node: Node) -> list[float]:
    return [t for strikes in node.peers.book._strikes.values() for t in strikes]
