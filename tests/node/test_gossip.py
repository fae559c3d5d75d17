"""Gossip between real nodes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio

from tests import factories as f
from tests.node.conftest import has_all, running, wait_for


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
            # Give the meshes a heartbeat to form before publishing.
            await trio.sleep(1.5)
            result = await a.submit(records)
            assert len(result.added) == len(records)
            await wait_for(has_all(b, [r.id for r in records]), timeout=15)
            # The validator counts after its worker thread's write returns, a moment after the
            # records become visible in the store.
            await wait_for(lambda: b.gossip.counters.stored == len(records), timeout=5)
