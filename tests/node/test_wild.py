"""The defects a hostile probe found (issue 15), each over real hosts on 127.0.0.1: what an honest
node must not suffer from another's clock, a peer's made-up peers, records on the wrong topic,
orphan floods, replays, or its own large batches. Every wait is on a condition and bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from tests.support import factories as f
from tests.support.nodes import running, wait_for

# Slow (real hosts, thousands of records, repeated): left out of the fast loop,
# `scripts/test -m "not slow"`.
pytestmark = pytest.mark.slow


def malformed(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "malformed RPC" in r.getMessage()]


@pytest.mark.parametrize("attempt", range(2))
async def test_large_batches_reach_a_peer_that_subscribes_meanwhile(
    attempt: int, dirs: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 5: a node that starts following a shard while its peer publishes large batches on
    it. The peer replays its recent messages to the new subscriber while its sending loop goes
    on writing; yamux cuts writes into 64 KiB frames, and two writes at once used to interleave
    into garbage ("sent a malformed RPC"), after which the subscriber dropped the stream and got
    nothing more by gossip. Now every RPC arrives whole."""
    project = f.project()
    records = [f.contribution(summary=f"work {i} " + "x" * 200) for i in range(8000)]
    caplog.set_level(logging.INFO, logger="node.net.host")
    with trio.fail_after(90):
        async with (
            running(dirs("publisher"), role="bootstrap") as publisher,
            running(dirs("subscriber"), bootstrap=(publisher.addrs()[0],)) as subscriber,
        ):
            await wait_for(lambda: len(subscriber.peers.connected()) == 1, timeout=10)
            await publisher.submit([project])
            await wait_for(lambda: subscriber.store.has(project.id), timeout=10)
            async with trio.open_nursery() as nursery:

                async def publish() -> None:
                    for i in range(0, len(records), 500):
                        await publisher.submit(records[i : i + 500])
                        await trio.sleep(0.01)

                nursery.start_soon(publish)
                await wait_for(lambda: publisher.gossip.counters.published_messages > 4, timeout=10)
                await subscriber.follow_project(f.pid())
            # Gossip, not only sync, brings the batches published after the subscription.
            await wait_for(lambda: subscriber.gossip.counters.received > 2000, timeout=30)
            assert malformed(caplog) == []
            assert publisher.peer_id in subscriber.gossip.subscribers("meta")
