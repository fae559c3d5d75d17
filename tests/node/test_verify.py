"""The verifying worker processes (node/net/verify.py, node/net/worker.py), as real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import trio

from node.net import verify
from protocol import ProtocolError, decode, encode_body
from protocol.codec import pack
from tests.node.test_gossip import work_records


def expected(blobs: list[bytes]) -> list[object]:
    out: list[object] = []
    for blob in blobs:
        try:
            out.append(decode(blob).id)
        except ProtocolError as exc:
            out.append((type(exc), str(exc)))
    return out


def outcome(valid: list, errors: list[ProtocolError]) -> list[object]:
    return [r.id for r in valid] + [(type(e), str(e)) for e in errors]


def hostile_batch() -> list[bytes]:
    records = work_records(verify.POOL_FROM + 10)
    blobs = [r.raw for r in records]
    forged = records[3]
    blobs[3] = pack((forged.author, bytes(64), encode_body(forged.body)))
    blobs[7] = blobs[7][:-2]
    return blobs


def test_a_worker_imports_nothing_of_the_node() -> None:
    """A worker starts in a fraction of a second: it imports `protocol`, not trio, libp2p, web3,
    eth-tester or LevelDB (multiprocessing's spawned workers imported the parent's main module,
    all of the node, 1.5-3.5 s of CPU each at the start of a catch-up)."""
    heavy = ("trio", "libp2p", "web3", "eth_tester", "plyvel", "node.net.verify")
    code = f"import sys, node.net.worker; print(*[m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == []


async def test_a_dead_worker_changes_no_verdict(caplog: pytest.LogCaptureFixture) -> None:
    """A worker killed between batches: the next batch's results are still exactly what
    `decode` gives blob by blob, errors included, and a new worker takes its place."""
    blobs = hostile_batch()
    want = expected(blobs)
    want = [w for w in want if isinstance(w, bytes)] + [w for w in want if isinstance(w, tuple)]
    limit = verify.limiter()
    with trio.fail_after(60):
        assert outcome(*await verify.decode_all(blobs, limit, now=None)) == want
        pids = verify.worker_pids()
        assert pids
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert outcome(*await verify.decode_all(blobs, limit, now=None)) == want
        assert "a verifying worker process died" in caplog.text
        assert outcome(*await verify.decode_all(blobs, limit, now=None)) == want
    assert verify.worker_pids()
    assert not set(verify.worker_pids()) & set(pids)


@pytest.mark.parametrize("size", [1, 2, verify.INLINE_UP_TO + 1, verify.SPLIT_FROM + 8])
async def test_every_path_gives_the_verdicts_of_decode(size: int) -> None:
    """A batch checked on the event loop (one or two records), in threads, or split: each gives
    exactly what `decode` gives blob by blob, errors included, for a forged and a cut record."""
    records = work_records(size + 2)
    forged = records[0]
    blobs = [pack((forged.author, bytes(64), encode_body(forged.body)))]
    blobs += [records[1].raw[:-2]] + [r.raw for r in records[2:]]
    for batch in (blobs[:size], blobs[-size:]):
        want = expected(batch)
        want = [w for w in want if isinstance(w, bytes)] + [w for w in want if isinstance(w, tuple)]
        with trio.fail_after(30):
            assert outcome(*await verify.decode_all(batch, verify.limiter(), now=None)) == want
