"""Interop with js-libp2p: a JavaScript GossipSub peer and one of our nodes exchange batches.

The peer is scripts/interop/peer.mjs (js-libp2p 2.x, @chainsafe/libp2p-gossipsub 14.x, Noise,
yamux), run under Node. It needs `node` and the packages package.json pins (scripts/setup runs
`npm install`); without them the test is skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
from libp2p.peer.id import ID

from node.net.gossip import topic_name
from protocol import Record, decode
from protocol.topics import META
from protocol.wire import decode_batch, encode_batch
from tests.support import factories as f
from tests.support.nodes import has_all, running, wait_for

ROOT = Path(__file__).resolve().parents[2]
PEER = ROOT / "scripts" / "interop" / "peer.mjs"
PACKAGES = (
    "libp2p",
    "@libp2p/tcp",
    "@libp2p/identify",
    "@chainsafe/libp2p-noise",
    "@chainsafe/libp2p-yamux",
    "@chainsafe/libp2p-gossipsub",
    "@multiformats/multiaddr",
)
TOPIC = topic_name(META)
# Enough records that each side's batch is tens of kilobytes: several Noise frames and yamux
# windows, as real batches are, rather than one small packet.
RECORDS = 300
# The peer stops by itself after this long whatever happens; the test stops it much sooner.
PEER_SECONDS = 60


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    for package in PACKAGES:
        if not (ROOT / "node_modules" / package / "package.json").is_file():
            return f"node_modules/{package} is missing: run scripts/setup"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def forged(record: Record) -> bytes:
    """Returns the envelope of `record` with one bit of its signature flipped."""
    author, signature, body = msgpack.unpackb(record.raw)
    signature = bytes([signature[0] ^ 1]) + signature[1:]
    return msgpack.packb([author, signature, body], use_bin_type=True)  # type: ignore[no-any-return]


class Events:
    """The JavaScript peer's events, read from its stdout as they come."""

    def __init__(self) -> None:
        self.all: list[dict[str, Any]] = []

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.all if e["event"] == kind]

    async def read(self, stream: trio.abc.ReceiveStream) -> None:
        buffer = b""
        async for chunk in stream:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            self.all.extend(json.loads(line) for line in lines if line.strip())

    async def wait(self, kind: str, *, timeout: float) -> dict[str, Any]:
        """Returns the first event of `kind`; fails at once if the peer failed or exited."""
        with trio.fail_after(timeout):
            while not self.of(kind):
                assert not self.of("error"), self.of("error")
                assert not self.of("exit"), f"the peer exited early: {self.all}"
                await trio.sleep(0.02)
        return self.of(kind)[0]

    def record_ids(self, sender: str) -> set[bytes]:
        """Returns the ids of the records in every batch the peer received from `sender`."""
        ids: set[bytes] = set()
        for message in self.of("message"):
            assert message["topic"] == TOPIC
            if message["from"] == sender:
                blobs = decode_batch(bytes.fromhex(message["data"]))
                ids.update(decode(blob).id for blob in blobs)
        return ids


@asynccontextmanager
async def js_peer(args: dict[str, Any], log: Path) -> AsyncIterator[Events]:
    """Runs the JavaScript peer while the block runs; it is stopped, or killed, on the way out."""
    events = Events()
    with log.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            ["node", str(PEER), json.dumps(args)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        assert process.stdin is not None and process.stdout is not None
        # The reader runs until the peer's stdout closes, so the peer's last lines (its exit)
        # are read too.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(events.read, process.stdout)
            try:
                yield events
            finally:
                # What the peer said, for the report of a failing test (pytest shows the output
                # of failed tests only); message payloads are left out.
                for event in events.all:
                    print({k: v for k, v in event.items() if k != "data"})
                # Shielded, so that a test failing on a timeout still stops the process it
                # started. Closing stdin asks the peer to stop; one still running 10 s later is
                # killed.
                with trio.CancelScope(shield=True):
                    await process.stdin.aclose()
                    with trio.move_on_after(10):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
    assert process.returncode == 0, log.read_text()
    assert events.of("exit")[-1]["reason"] == "stdin closed", events.of("exit")


async def test_js_libp2p_peer(dirs: Callable[[str], Path], tmp_path: Path) -> None:
    ours = [f.profile(f"py{i}") for i in range(RECORDS)]
    theirs = [f.profile(f"js{i}") for i in range(RECORDS)]
    # A valid record and a forged one: a batch is judged whole, so neither may be stored.
    honest, victim = f.profile("frank"), f.profile("erin")
    bad_batch = encode_batch([honest.raw, forged(victim)])

    with trio.fail_after(90):
        async with running(dirs("a"), role="bootstrap") as node:
            args = {
                "dial": node.addrs()[0],
                "topic": TOPIC,
                "publish": [encode_batch([r.raw for r in theirs]).hex(), bad_batch.hex()],
                "seconds": PEER_SECONDS,
            }
            async with js_peer(args, tmp_path / "peer.stderr") as peer:
                ready = await peer.wait("ready", timeout=20)
                await peer.wait("connected", timeout=15)

                # (a) Records our node submits reach the JavaScript peer. Our router sends its
                # own messages to mesh peers only, so the peer must be in our mesh first.
                stack = node._stack
                assert stack is not None
                await stack.gossipsub.wait_for_mesh(ID.from_base58(ready["peerId"]), TOPIC, 15)
                await node.submit(ours)
                with trio.fail_after(15):
                    while not {r.id for r in ours} <= peer.record_ids(str(node.peer_id)):
                        await trio.sleep(0.05)

                # (b) The peer's batch is validated and stored; its batch with a forged record
                # is refused, counted as invalid, and none of it is stored.
                await wait_for(has_all(node, [r.id for r in theirs]), timeout=15)
                await wait_for(lambda: node.gossip.counters.invalid_messages == 1, timeout=15)
                published = peer.of("published")
                assert [e["index"] for e in published] == [0, 1]
                # Both sides chose GossipSub 1.2, each for the stream it opened.
                assert published[0]["streams"] == [
                    "inbound /meshsub/1.2.0",
                    "outbound /meshsub/1.2.0",
                ]
                assert not node.store.has(honest.id)
                assert not node.store.has(victim.id)
                # Counted when the validator resumes after its worker thread's write, a moment
                # after the records are visible in the store.
                await wait_for(lambda: node.gossip.counters.stored == len(theirs), timeout=5)
