#!/usr/bin/env python3
"""Benchmarks evidence files between two real nodes on 127.0.0.1 over /workwork/evidence/1.

Node A stores a file of SIZE random bytes and a contribution naming it; node B, connected to A,
fetches it (`EvidenceService.fetch`: request, transfer, decode, sha256 check) ROUNDS times, and
once through `get`, which also writes it to B's evidence store (fsync). Prints the median fetch
time and throughput, and the time of the first `get`.

Run: .venv/bin/python scripts/bench/evidence.py [--size BYTES] [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from node.config import EvidenceConfig, NetworkConfig
from node.net.node import Node
from protocol.uri import evidence_uri
from tests.support import factories as f


async def bench(size: int, rounds: int) -> dict[str, float]:
    data = os.urandom(size)
    config = EvidenceConfig(max_bytes=max(size, 1), peer_burst=10_000.0)
    with tempfile.TemporaryDirectory() as tmp:
        a = Node(Path(tmp, "a"), NetworkConfig(sync_interval=3600.0), evidence=config)
        b = Node(Path(tmp, "b"), NetworkConfig(sync_interval=3600.0), evidence=config)
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            await nursery.start(b.run)
            sha = await trio.to_thread.run_sync(a.evidence.put, data)
            work = f.contribution(evidence_uri=evidence_uri(sha), evidence_hash=sha)
            await a.submit([f.project(), work])
            await b.connect(a.addrs()[0])
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                got = await b.evidence_net.fetch(a.peer_id, work.id, sha)
                times.append(time.perf_counter() - start)
                assert got == data
            start = time.perf_counter()
            await b.evidence_net.get(work.id, sha)
            kept = time.perf_counter() - start
            nursery.cancel_scope.cancel()
    median = statistics.median(times)
    return {
        "size": size,
        "rounds": rounds,
        "fetch_median_s": round(median, 4),
        "fetch_mib_per_s": round(size / median / 2**20, 1),
        "get_and_keep_s": round(kept, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=16 * 2**20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = trio.run(bench, args.size, args.rounds)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['size']:,} bytes: fetch median {result['fetch_median_s']} s "
            f"({result['fetch_mib_per_s']} MiB/s), get and keep {result['get_and_keep_s']} s"
        )


if __name__ == "__main__":
    main()
