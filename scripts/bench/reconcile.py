#!/usr/bin/env python3
"""Benchmarks protocol.reconcile over SortedItems: rounds, bytes each way, CPU, and bytes / ideal.

The ideal is what a perfect oracle would send: the 32-byte ids of the symmetric difference and
nothing else. Each scenario runs a whole reconciliation between an initiator and a responder in
one process, with no transport: "rounds" counts responder answers (round trips), "up" is bytes
initiator -> responder, "down" the other way, and CPU is process time on each side.

Scenarios (sizes scale with --scale):
  fresh        a fresh node (0 items) initiates with a peer holding 100,000
  fresh-peer   a node holding 100,000 initiates with a fresh peer (it learns what the peer
               lacks from an empty id list, so it beats the "ideal" of sending the ids)
  1%-random    100,000 each, 1% of each side's items unique to it, spread over the whole year
               the items span: the worst case of range-based reconciliation
  1%-recent    100,000 each, the unique 1% among the most recent items (a node back online)
  identical    1,000,000 identical items on each side
  one-differs  1,000,000 on each side, one item on one side only

Then, over a real store (`--store N`, default 100,000 signed records on one topic; 0 skips it):
the periodic sync of two nodes in sync, as `node.net.sync` runs it over `storage.Store`: the first
reconciliation (which builds the topic's id sum) and the next ones, against the baseline of one
raw plyvel scan of the topic's index keys, measured in the same run.

Run: .venv/bin/python scripts/bench/reconcile.py [--scale F] [--frame-limit N] [--buckets N]
         [--id-list-threshold N] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass

from protocol.reconcile import (
    DEFAULT_BUCKETS,
    DEFAULT_FRAME_LIMIT,
    DEFAULT_ID_LIST_THRESHOLD,
    ID_SIZE,
    Item,
    Reconciler,
    SortedItems,
)

T0 = 1_700_000_000
SPAN = 365 * 24 * 3600  # Items spread over a year.


@dataclass
class Result:
    scenario: str
    initiator: int
    responder: int
    differing: int
    rounds: int
    up_bytes: int
    down_bytes: int
    largest_message: int
    initiator_cpu_s: float
    responder_cpu_s: float
    ratio: float | None


def make(n: int, rng: random.Random, lo: int = T0, hi: int = T0 + SPAN) -> list[Item]:
    return [(rng.randrange(lo, hi), rng.randbytes(ID_SIZE)) for _ in range(n)]


def run(name: str, a: SortedItems, b: SortedItems, differing: int, **params: int) -> Result:
    """Reconciles `a` (initiator) with `b` (responder) and checks the answer is complete."""
    alice = Reconciler(a, **params)
    bob = Reconciler(b, **params)
    cpu_a = cpu_b = 0.0
    start = time.process_time()
    message: bytes | None = alice.initiate()
    cpu_a += time.process_time() - start
    up = down = rounds = largest = found = 0
    while message is not None:
        up += len(message)
        largest = max(largest, len(message))
        start = time.process_time()
        reply = bob.respond(message)
        cpu_b += time.process_time() - start
        down += len(reply)
        largest = max(largest, len(reply))
        rounds += 1
        start = time.process_time()
        step = alice.reconcile(reply)
        cpu_a += time.process_time() - start
        found += len(step.have) + len(step.need)
        message = step.next
    assert found == differing, f"{name}: found {found} differences, expected {differing}"
    ideal = differing * ID_SIZE
    return Result(
        name,
        len(a),
        len(b),
        differing,
        rounds,
        up,
        down,
        largest,
        round(cpu_a, 3),
        round(cpu_b, 3),
        round((up + down) / ideal, 2) if ideal else None,
    )


def scenarios(scale: float, **params: int) -> list[Result]:
    rng = random.Random(7)
    n = int(100_000 * scale)
    big = int(1_000_000 * scale)
    out = []

    full = SortedItems(make(n, rng))
    empty = SortedItems()
    out.append(run("fresh", empty, full, n, **params))
    out.append(run("fresh-peer", full, empty, n, **params))

    unique = n // 100
    common = make(n - unique, rng)
    a = SortedItems(common + make(unique, rng))
    b = SortedItems(common + make(unique, rng))
    out.append(run("1%-random", a, b, 2 * unique, **params))

    recent = T0 + SPAN - SPAN // 100
    a = SortedItems(common + make(unique, rng, lo=recent))
    b = SortedItems(common + make(unique, rng, lo=recent))
    out.append(run("1%-recent", a, b, 2 * unique, **params))
    del a, b, common, full

    # Both sides read the same object: it is read-only, and a second copy of a million items
    # would only cost memory, not change the work.
    many = make(big, rng)
    same = SortedItems(many)
    out.append(run("identical", same, same, 0, **params))
    out.append(run("one-differs", same, SortedItems(many[1:]), 1, **params))
    return out


def store_in_sync(count: int) -> dict[str, float]:
    """Times in-sync reconciliations of one topic of a real store against a raw index scan."""
    import sys
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from network import make_records  # the throughput benchmark's records: signed, one topic

    from node.net.serve import StoreItems
    from protocol import decode
    from protocol.topics import topic
    from storage import Store, keys

    records = [decode(raw, verify=False) for raw in make_records(count + 1)]
    name = topic(records[-1])
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "store") as store:
        for i in range(0, len(records), 5000):
            store.ingest(records[i : i + 5000], now=time.time())
        start = time.perf_counter()
        for _ in store._db.iterator(prefix=keys.topic_prefix(name), include_value=False):
            pass
        scan = time.perf_counter() - start
        times = []
        for _ in range(3):
            start = time.perf_counter()
            alice, bob = Reconciler(StoreItems(store, name)), Reconciler(StoreItems(store, name))
            message: bytes | None = alice.initiate()
            while message is not None:
                message = alice.reconcile(bob.respond(message)).next
            times.append(time.perf_counter() - start)
    return {
        "records": count,
        "raw_scan_ms": round(scan * 1000, 3),
        "first_ms": round(times[0] * 1000, 3),
        "next_ms": round(min(times[1:]) * 1000, 3),
        "first_over_scan": round(times[0] / scan, 2),
        "next_over_scan": round(min(times[1:]) / scan, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every set size")
    parser.add_argument("--frame-limit", type=int, default=DEFAULT_FRAME_LIMIT, help="bytes")
    parser.add_argument("--buckets", type=int, default=DEFAULT_BUCKETS)
    parser.add_argument("--id-list-threshold", type=int, default=DEFAULT_ID_LIST_THRESHOLD)
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    parser.add_argument("--store", type=int, default=100_000, help="records; 0: skip")
    args = parser.parse_args()
    in_sync = store_in_sync(args.store) if args.store else None
    results = scenarios(
        args.scale,
        frame_limit=args.frame_limit,
        buckets=args.buckets,
        id_list_threshold=args.id_list_threshold,
    )
    if args.json:
        for r in results:
            print(json.dumps(asdict(r)))
        if in_sync:
            print(json.dumps({"scenario": "store-in-sync", **in_sync}))
        return
    print(
        f"frame limit {args.frame_limit:,} bytes, {args.buckets} buckets, "
        f"id lists up to {args.id_list_threshold} ids"
    )
    head = ("scenario", "A", "B", "diff", "rounds", "A->B", "B->A", "max msg", "CPU A", "CPU B")
    print(
        f"{head[0]:<11} {head[1]:>9} {head[2]:>9} {head[3]:>7} {head[4]:>6} {head[5]:>10} "
        f"{head[6]:>10} {head[7]:>8} {head[8]:>7} {head[9]:>7}  bytes/ideal"
    )
    for r in results:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        print(
            f"{r.scenario:<11} {r.initiator:>9,} {r.responder:>9,} {r.differing:>7,} "
            f"{r.rounds:>6} {r.up_bytes:>10,} {r.down_bytes:>10,} {r.largest_message:>8,} "
            f"{r.initiator_cpu_s:>6.2f}s {r.responder_cpu_s:>6.2f}s  {ratio}"
        )

    if in_sync:
        print("store-in-sync", json.dumps(in_sync))


if __name__ == "__main__":
    main()
