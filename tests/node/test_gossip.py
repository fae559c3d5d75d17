"""Gossip between real nodes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio

from node.net import verify
from protocol import ProtocolError, decode, encode_body
from protocol.codec import pack
from protocol.topics import topic as topic_of
from protocol.validate import check
from tests.support import factories as f
from tests.support.nodes import has_all, meshed, running, wait_for


def work_records(count: int, owner: str = "alice") -> list:
    posting = f.project(owner)
    works = [f.contribution(f"w{i % 7}", owner, summary=f"work {i}") for i in range(count)]
    return [posting, *works]


async def test_two_nodes_gossip(dirs: Callable[[str], Path]) -> None:
    with trio.fail_after(30):
        async with (
            running(dirs("a"), role="bootstrap") as a,
            running(dirs("b"), role="bootstrap", bootstrap=(a.addrs()[0],)) as b,
        ):
            await wait_for(lambda: len(b.peers.connected()) == 1, timeout=10)
            await wait_for(lambda: len(a.peers.connected()) == 1, timeout=10)
            records = [f.profile("alice"), *work_records(50)]
            # The meshes form at a heartbeat: before, a publish may reach nobody.
            await wait_for(meshed(a, b), timeout=10)
            await wait_for(meshed(a, b, topic=topic_of(records[-1])), timeout=10)
            result = await a.submit(records)
            assert len(result.added) == len(records)
            await wait_for(has_all(b, [r.id for r in records]), timeout=15)
            # The validator counts after its worker thread's write returns, a moment after the
            # records become visible in the store.
            await wait_for(lambda: b.gossip.counters.stored == len(records), timeout=5)


async def test_large_batch_checked_in_worker_processes_as_decode_checks_it() -> None:
    """A batch big enough for the worker processes gives what decoding every blob with
    verification gives: the same records in the same order, and the same errors."""
    records = work_records(verify.POOL_FROM + 40)
    forged = records[5]
    signature = bytes([forged.signature[0] ^ 1]) + forged.signature[1:]
    future = f.contribution("carol", created_at=f.T0 + 10_000)
    blobs = [r.raw for r in records]
    blobs[5] = pack((forged.author, signature, encode_body(forged.body)))
    blobs[9] = b"\x93garbage"
    blobs[12] = future.raw
    blobs[20] = blobs[21][:-1]
    now = f.T0 + 100

    expected: list[object] = []
    for blob in blobs:
        try:
            record = decode(blob)
            check(record, now=now)
            expected.append(record.id)
        except ProtocolError as exc:
            expected.append((type(exc), str(exc)))
    assert len([e for e in expected if isinstance(e, tuple)]) == 4

    with trio.fail_after(60):
        valid, errors = await verify.decode_all(blobs, verify.limiter(), now=now)
    assert len(blobs) >= verify.POOL_FROM
    assert [r.id for r in valid] == [e for e in expected if isinstance(e, bytes)]
    assert [(type(e), str(e)) for e in errors] == [e for e in expected if isinstance(e, tuple)]
