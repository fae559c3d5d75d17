#!/usr/bin/env python3
"""A newcomer at a full node, over real hosts on 127.0.0.1: how soon it finds the others.

A bootstrap node that keeps `--limit` connections, filled by as many personal nodes; then a
newcomer that knows only the bootstrap node (node/net/core/slots.py: it is taken in a spare
slot, gets its peer exchange, and is hung up on). Reported per run: when the newcomer first
connected, when it reached one of the others, and when the full node was back at its limit,
in seconds after the newcomer started.

Run: .venv/bin/python scripts/bench/full.py [--runs N] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.nodes import running, wait_for


async def once(limit: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        async with AsyncExitStack() as stack:
            hub = await stack.enter_async_context(
                running(root / "hub", role="bootstrap", max_connections=limit, sync_interval=1.0)
            )
            addr = hub.addrs()[0]
            peers = [
                await stack.enter_async_context(
                    running(root / f"p{i}", bootstrap=(addr,), sync_interval=1.0)
                )
                for i in range(limit)
            ]
            await wait_for(lambda: len(hub.peers.connected()) == limit, timeout=30)
            await wait_for(lambda: len(hub.peers.share()) >= limit, timeout=30)
            others = {p.peer_id for p in peers}
            start = trio.current_time()
            new = await stack.enter_async_context(
                running(root / "new", bootstrap=(addr,), sync_interval=1.0)
            )
            await wait_for(lambda: bool(new.peers.connected()), timeout=30, step=0.005)
            first = trio.current_time() - start
            await wait_for(
                lambda: bool(others & set(new.peers.connected())), timeout=30, step=0.005
            )
            other = trio.current_time() - start
            await wait_for(lambda: len(hub.peers.connected()) <= limit, timeout=60, step=0.005)
            back = trio.current_time() - start
            return first, other, back


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=3)
    args = parser.parse_args()
    for run in range(args.runs):
        first, other, back = await once(args.limit)
        print(
            f"run {run + 1}: first connection {first:.2f} s, another peer {other:.2f} s, "
            f"full node back at {args.limit} {back:.2f} s",
            flush=True,
        )


if __name__ == "__main__":
    trio.run(main)
