"""Sync: a node that was offline catches up; gossip losses are repaired."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from node.net.node import Node
from protocol.topics import ALL as ALL_TOPICS
from tests.support import factories as f
from tests.support.nodes import has_all, meshed, running, wait_for


def held(node: Node) -> set[bytes]:
    """Every record id the node stores, over all topics."""
    ids: set[bytes] = set()
    for topic in ALL_TOPICS:
        cursor = None
        while True:
            page = node.store.topic_ids(topic, cursor=cursor, limit=1000)
            ids |= {rid for _, rid in page.items}
            if page.cursor is None:
                break
            cursor = page.cursor
    return ids


def batch_of(count: int, owner: str = "alice", name: str = "docs") -> list:
    posting = f.project(owner, name)
    works = [f.contribution(f"w{i % 7}", owner, name, summary=f"work {i}") for i in range(count)]
    return [posting, *works]


async def test_offline_node_catches_up(dirs: Callable[[str], Path]) -> None:
    records = batch_of(1000)
    with trio.fail_after(60):
        async with running(dirs("a"), role="bootstrap") as a:
            addr = a.addrs()[0]
            # B meets A once, then goes offline while A takes 1,001 records.
            async with running(dirs("b"), role="bootstrap", bootstrap=(addr,)) as b:
                await wait_for(lambda: len(b.peers.connected()) == 1, timeout=10)
            await a.submit(records)
            assert a.store.topic_count("meta") == 1
            # B comes back: the same data dir, so the same peer id and its known peers.
            async with running(dirs("b"), role="bootstrap") as b:
                await wait_for(has_all(b, [r.id for r in records]), timeout=40)
                # Mostly by sync; GossipSub may also hand a reconnecting peer the messages of
                # its last few seconds (IHAVE/IWANT). A sync can be cut short when both nodes
                # dial each other at once and one connection closes; the next one finishes.
                await wait_for(lambda: any(r.error is None for r in b.sync.reports), timeout=10)
                await wait_for(
                    lambda: (
                        sum(r.stored for r in b.sync.reports) + b.gossip.counters.stored
                        == len(records)
                    ),
                    timeout=5,
                )


async def test_sync_alone_transfers_a_store(dirs: Callable[[str], Path]) -> None:
    # Records that A imported (never gossiped) reach B by sync only, in few rounds.
    records = batch_of(3000)
    with trio.fail_after(60):
        async with running(dirs("a"), role="bootstrap") as a:
            a.store.ingest(records, now=a.clock())
            async with running(dirs("b"), role="bootstrap", bootstrap=(a.addrs()[0],)) as b:
                await wait_for(lambda: any(r.error is None for r in b.sync.reports), timeout=40)
                assert has_all(b, [r.id for r in records])()
                assert b.gossip.counters.received == 0
                report = next(r for r in b.sync.reports if r.error is None)
                assert report.needed == report.stored == len(records)
                # 33 topics, most of them empty (one round each); the full ones take a few.
                assert report.rounds <= 33 + 8
                # Both sides now hold the same sets, so a second sync finds nothing to do.
                again = await b.sync.sync_with(a.peer_id)
                assert again.needed == 0 and again.rounds == 33


@pytest.mark.slow
async def test_lossy_gossip_converges_through_sync(dirs: Callable[[str], Path]) -> None:
    # Each node ignores 10% of the gossip messages it receives; periodic sync repairs that.
    records = batch_of(2000)
    with trio.fail_after(90):
        async with running(dirs("a"), role="bootstrap") as a:
            boot = (a.addrs()[0],)
            common = {
                "role": "bootstrap",
                "bootstrap": boot,
                "gossip_drop": 0.1,
                "sync_interval": 2.0,
            }
            async with running(dirs("b"), **common) as b, running(dirs("c"), **common) as c:
                nodes = (a, b, c)
                await wait_for(
                    lambda: all(len(n.peers.connected()) >= 1 for n in nodes), timeout=10
                )
                await wait_for(meshed(*nodes), timeout=10)
                # Publish in small slices from every node, so that gossip carries many messages.
                for i in range(0, len(records), 50):
                    await nodes[i // 50 % 3].submit(records[i : i + 50], orphans=True)
                    await trio.sleep(0.02)
                await wait_for(
                    lambda: all(has_all(n, [r.id for r in records])() for n in nodes), timeout=60
                )
                assert sum(n.gossip.counters.dropped for n in nodes) > 0
                # Identical record sets, on every topic: exactly what was published.
                assert held(a) == held(b) == held(c) == {r.id for r in records}
