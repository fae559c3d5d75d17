"""Real nodes on 127.0.0.1 for network tests, and bounded waits on conditions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from node.config import NetworkConfig
from node.net.node import Node
from protocol.topics import META


@asynccontextmanager
async def running(
    data_dir: Path, *, everywhere: bool = False, **config: Any
) -> AsyncIterator[Node]:
    """Runs a node over `data_dir` until the block exits, then stops it.

    Like every node of the tests, its store refuses calls from the node's own tasks on the event
    loop (strict mode, tests/conftest.py). With `everywhere`, it refuses them from the test's
    task too, so that a service the test drives directly (the settlement service, say) is held
    to the rule as well: the test then reads the store through the gateway.
    """
    config.setdefault("sync_interval", 3600.0)  # tests that rely on periodic sync say so
    # Authors' rations are off unless a test says otherwise (tests/node/test_admission.py):
    # most tests send thousands of records by a few fresh keys to test other things.
    config.setdefault("author_rate", 0.0)
    node = Node(data_dir, NetworkConfig(**config))
    if everywhere:
        node.io_root = trio.lowlevel.current_task()
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        try:
            yield node
        finally:
            nursery.cancel_scope.cancel()


async def wait_for(condition: Callable[[], bool], *, timeout: float, step: float = 0.05) -> None:
    """Waits until `condition()` holds; fails the test after `timeout` seconds."""
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(step)


def has_all(node: Node, ids: Iterable[bytes]) -> Callable[[], bool]:
    wanted = list(ids)
    return lambda: all(node.store.has(rid) for rid in wanted)


def meshed(*nodes: Node, topic: str = META) -> Callable[[], bool]:
    """Whether each node's GossipSub mesh of `topic` holds every connected peer that follows
    it (a heartbeat after they subscribed): until then, a publish may reach nobody."""

    def check() -> bool:
        for node in nodes:
            followers = node.gossip.subscribers(topic)
            if not followers or not followers <= node.gossip.mesh(topic):
                return False
        return True

    return check
