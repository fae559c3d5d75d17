#!/usr/bin/env python3
"""Flood benchmark: validly signed records from many fresh keys aimed at one node (issue 15).

Three node processes on 127.0.0.1:
    target   a bootstrap node (it follows every topic) with the default authors' rations
             (node/net/core/authors.py); it reports its disk use, its anonymous RSS (RssAnon
             of /proc/PID/status, sampled every 0.2 s, the peak) and when each honest record
             was stored.
    flooder  a node that holds the flood (pre-generated in worker processes: --records
             projects signed by --keys fresh keys) and publishes it to the target at --rate
             records/s; it rations nobody, as a forwarder that took the records over time would.
    honest   a node that publishes one record every 1/--honest-rate s, by --honest-keys keys
             taking turns, each with accepted work (a contribution accepted by another key,
             stored on both nodes first).
Phase 1 (the baseline, same run): the honest node publishes for --seconds with no flood.
Phase 2: the same while the flood runs; it lasts until the flood has been published (or
--seconds, whichever is longer). The honest records' latency is submit to stored at the
target (one hop); target p99 < 2 s.

Run: .venv/bin/python scripts/bench/flood.py [--records 100000] [--keys 1000] [--rate 2000]
     [--seconds 20] [--honest-rate 10] [--json]. The full run is --records 1000000 --keys
     10000. Children end by themselves (CHILD_TIMEOUT); the parent stops them by pid.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import msgpack
import trio
from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parent))

# scripts/bench/network.py: child processes and their line protocol.
import network
from network import emit, read_line

from node.config import NetworkConfig
from node.net import verify
from node.net.node import Node
from protocol import Acceptance, Contribution, Project, decode, project_id, sign

NOW = int(time.time()) - 3600
CHILD_TIMEOUT = 1800
# Records per submit of the flooder.
CHUNK = 200
DRAIN = 3.0
POLL = 0.1


def _key(seed: bytes) -> SigningKey:
    return SigningKey(hashlib.sha256(seed).digest())


def _flood_range(args: tuple[int, int, int]) -> list[bytes]:
    """Projects start..stop, project i signed by fresh key i % keys (a worker process)."""
    start, stop, keys = args
    out = []
    signers: dict[int, SigningKey] = {}
    for i in range(start, stop):
        k = i % keys
        signer = signers.get(k)
        if signer is None:
            signer = signers[k] = _key(b"flood key %d" % k)
        body = Project(
            NOW + i % 3000,
            0,
            f"spam-{i}",
            f"Totally real project {i}",
            "Buy now. " * 20,
            ("python",),
            b"\x02" * 20,
            0,
            "open",
            (),
        )
        out.append(sign(body, signer).raw)
    return out


def make_flood(records: int, keys: int) -> list[bytes]:
    step = 10_000
    with Pool() as pool:
        chunks = pool.map(
            _flood_range, [(i, min(i + step, records), keys) for i in range(0, records, step)]
        )
    return [raw for chunk in chunks for raw in chunk]


def make_honest(count: int, authors: int = 1) -> tuple[list[bytes], list[bytes]]:
    """The honest setup (a project by the owner and, for each of `authors` honest keys, a
    contribution accepted by the owner) and `count` contributions to publish, the keys taking
    turns. Each honest key has one accepted contribution, so its ration is twice a newcomer's
    (node/net/core/authors.py: 1,000 at once, then 2/s): one key publishing 10/s for minutes
    is rationed like anyone else, which is the policy, not the flood."""
    owner = _key(b"honest owner")
    workers = [_key(b"honest worker" + (b" %d" % k if k else b"")) for k in range(authors)]
    project = sign(
        Project(NOW, 0, "real", "Real work", "", ("python",), b"\x01" * 20, 0, "open", ()), owner
    )
    pid = project_id(bytes(owner.verify_key), "real")

    def contribution(i: int) -> Any:
        return sign(
            Contribution(
                NOW + 1,
                pid,
                f"Honest contribution {i}",
                f"https://example.org/pr/{i}",
                b"",
                60,
                b"\x03" * 20,
            ),
            workers[i % authors],
        )

    setup = [project.raw]
    for k in range(authors):
        first = contribution(-1 - k)
        setup += [first.raw, sign(Acceptance(NOW + 2, 0, pid, first.id, 0, 10), owner).raw]
    return setup, [contribution(i).raw for i in range(count)]


def rss_anon_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


def disk_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


async def start(nursery: trio.Nursery, data: Path, **config: Any) -> Node:
    """Starts a node as the daemon does (its collector tuned likewise), with its signature
    workers started: they import this script, which takes seconds on a loaded machine, and the
    first large batch would otherwise wait for them."""
    from node.daemon import tune_gc  # it imports web3: not needed by the verify workers

    node = Node(data, NetworkConfig(**config))
    await nursery.start(node.run)
    tune_gc()
    probe = make_honest(0)[0][:1] * verify.POOL_FROM
    await verify.decode_all(probe, verify.limiter(), now=None)
    return node


async def seed(node: Node, raws: list[bytes]) -> None:
    records = [decode(raw, verify=False) for raw in raws]
    await node.gateway.write(node.store.ingest, records, now=time.time())


# Child processes.


async def child_target(
    data: Path, setup_file: Path, sync_interval: float, honest_file: Path
) -> None:
    stored: dict[str, float] = {}
    # When each honest record was first seen in the store by any path (gossip or sync),
    # polled every POLL s: gossip's listener alone misses what sync brought.
    wanted = [decode(raw, verify=False).id for raw in msgpack.unpackb(honest_file.read_bytes())]
    seen: dict[str, float] = {}
    peak = [0.0]

    async def sample() -> None:
        while True:
            peak[0] = max(peak[0], rss_anon_mib())
            await trio.sleep(0.2)

    async def poll(node: Node) -> None:
        def present(ids: list[bytes]) -> list[bytes]:
            return [rid for rid in ids if node.store.has(rid)]

        pending = list(wanted)
        while pending:
            there = await node.gateway.read(present, pending)
            now = time.time()
            for rid in there:
                seen[rid.hex()] = now
            pending = [rid for rid in pending if rid.hex() not in seen]
            await trio.sleep(POLL)

    def listener(ids: Any) -> None:
        now = time.time()
        for rid in ids:
            stored.setdefault(rid.hex(), now)

    with trio.move_on_after(CHILD_TIMEOUT):
        async with trio.open_nursery() as nursery:
            node = await start(nursery, data, role="bootstrap", sync_interval=sync_interval)
            await seed(node, msgpack.unpackb(setup_file.read_bytes()))
            node.gossip.on_stored.append(listener)
            nursery.start_soon(sample)
            nursery.start_soon(poll, node)
            emit(event="ready", addr=node.addrs()[0], rss_anon_mib=rss_anon_mib())
            while (line := (await read_line()).strip()) not in ("", "stop"):
                if line == "report":
                    emit(
                        event="report",
                        stored=stored,
                        seen=seen,
                        counters=vars(node.gossip.counters),
                        syncs=[vars(r) for r in node.sync.reports],
                        rss_anon_mib=rss_anon_mib(),
                        peak_rss_anon_mib=peak[0],
                        disk_mib=disk_mib(data),
                        # Honest records the target left out for their authors' rations.
                        honest_rationed=sum(
                            node.intake.rationed.recent(rid, time.time()) for rid in wanted
                        ),
                    )
                    stored = {}
                    node.gossip.on_stored[:] = [listener]
                    peak[0] = rss_anon_mib()
            nursery.cancel_scope.cancel()


async def child_honest(data: Path, addr: str, setup_file: Path, records_file: Path) -> None:
    records = [decode(raw, verify=False) for raw in msgpack.unpackb(records_file.read_bytes())]
    with trio.move_on_after(CHILD_TIMEOUT):
        async with trio.open_nursery() as nursery:
            node = await start(nursery, data, role="bootstrap", bootstrap=(addr,), target_peers=1)
            await seed(node, msgpack.unpackb(setup_file.read_bytes()))
            with trio.fail_after(30):
                while not node.peers.connected():
                    await trio.sleep(0.05)
            emit(event="connected")
            used = 0
            while (line := (await read_line()).strip()) not in ("", "stop"):
                go = json.loads(line)
                sent: dict[str, float] = {}
                count, rate = go["count"], go["rate"]
                began = time.time()
                for k in range(count):
                    await trio.sleep(max(0.0, began + k / rate - time.time()))
                    record = records[used]
                    used += 1
                    sent[record.id.hex()] = time.time()
                    await node.submit([record])
                emit(event="sent", sent=sent)
            nursery.cancel_scope.cancel()


async def child_flooder(data: Path, addr: str, flood_file: Path) -> None:
    raws = msgpack.unpackb(flood_file.read_bytes())
    with trio.move_on_after(CHILD_TIMEOUT):
        async with trio.open_nursery() as nursery:
            node = await start(nursery, data, role="bootstrap", bootstrap=(addr,), target_peers=1)
            with trio.fail_after(30):
                while not node.peers.connected():
                    await trio.sleep(0.05)
            emit(event="connected")
            go = json.loads(await read_line())
            rate = go["rate"]
            began = time.time()
            for i in range(0, len(raws), CHUNK):
                await trio.sleep(max(0.0, began + i / rate - time.time()))
                chunk = [decode(raw, verify=False) for raw in raws[i : i + CHUNK]]
                await node.submit(chunk)
            emit(
                event="flooded",
                seconds=time.time() - began,
                counters=vars(node.gossip.counters),
            )
            await read_line()
            nursery.cancel_scope.cancel()


# The parent.


class Child(network.Child):
    """A child process of this script, read line by line; stopped by its pid only."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-P", __file__, "--child", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def stop(self, grace: float = 10.0) -> None:
        # A target holding a flood's worth of state takes longer to stop than network.py's.
        super().stop(grace)


def _percentile(values: list[float], q: float) -> float:
    return values[int(q * (len(values) - 1))] if values else float("nan")


def latencies(sent: dict[str, float], stored: dict[str, float]) -> dict[str, Any]:
    delays = sorted(stored[rid] - at for rid, at in sent.items() if rid in stored)
    first = min(sent.values(), default=0.0)
    # When the slow ones were sent (s into the phase), to tell a stall from a steady queue.
    slow = sorted(
        (round(at - first, 1), round(stored[rid] - at, 2))
        for rid, at in sent.items()
        if rid in stored and stored[rid] - at > 1.0
    )
    return {
        "slow_sent_at_s_and_delay_s": slow[:10] + (["..."] if len(slow) > 20 else []) + slow[-10:],
        "sent": len(sent),
        "arrived": len(delays),
        "p50_ms": 1000 * _percentile(delays, 0.5),
        "p99_ms": 1000 * _percentile(delays, 0.99),
        "max_ms": 1000 * delays[-1] if delays else float("nan"),
    }


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    began = time.time()
    flood = make_flood(args.records, args.keys)
    flood_bytes = sum(len(raw) for raw in flood)
    generated = time.time() - began
    flood_seconds = args.records / args.rate
    phase = max(args.seconds, flood_seconds)
    setup, honest = make_honest(
        int(args.honest_rate * (args.seconds + phase)) + 10, args.honest_keys
    )
    (tmp / "flood.msgpack").write_bytes(msgpack.packb(flood))
    del flood
    (tmp / "setup.msgpack").write_bytes(msgpack.packb(setup))
    (tmp / "honest.msgpack").write_bytes(msgpack.packb(honest))
    children: list[Child] = []
    try:
        target = Child(
            "target",
            str(tmp / "target"),
            str(tmp / "setup.msgpack"),
            str(args.sync_interval),
            str(tmp / "honest.msgpack"),
        )
        children.append(target)
        ready = target.read("ready", 120)
        addr = ready["addr"]
        honest_node = Child(
            "honest", str(tmp / "honest"), addr, str(tmp / "setup.msgpack"),
            str(tmp / "honest.msgpack"),
        )  # fmt: skip
        flooder = Child("flooder", str(tmp / "flooder"), addr, str(tmp / "flood.msgpack"))
        children += [honest_node, flooder]
        honest_node.read("connected", 120)
        flooder.read("connected", 600)
        time.sleep(3.0)  # heartbeats: meshes form
        count = int(args.honest_rate * args.seconds)
        honest_node.send(json.dumps({"count": count, "rate": args.honest_rate}))
        sent = honest_node.read("sent", args.seconds + 120)["sent"]
        time.sleep(DRAIN)
        target.send("report")
        base = target.read("report", 120)
        baseline = latencies(sent, base["stored"])

        flooder.send(json.dumps({"rate": args.rate}))
        count = int(args.honest_rate * phase)
        honest_node.send(json.dumps({"count": count, "rate": args.honest_rate}))
        sent = honest_node.read("sent", phase + 600)["sent"]
        flooded = flooder.read("flooded", 600)
        # Long enough for a periodic sync to bring what gossip lost (--drain).
        time.sleep(args.drain)
        target.send("report")
        during = target.read("report", 120)
        under_flood = latencies(sent, during["stored"])
        by_any_path = latencies(sent, during["seen"])
    finally:
        for child in children:
            child.stop()
    counters = during["counters"]
    return {
        "flood_records": args.records,
        "flood_keys": args.keys,
        "target_sync_interval_s": args.sync_interval,
        "flood_mib": flood_bytes / 2**20,
        "generate_s": round(generated, 1),
        "flood_rate_per_s": args.rate,
        "flood_published_s": round(flooded["seconds"], 1),
        "flood_stored": counters["stored"] - base["counters"]["stored"] - under_flood["arrived"],
        "flood_rationed": counters["rationed"],
        "target_received": counters["received"],
        "target_invalid_messages": counters["invalid_messages"],
        "honest_rate_per_s": args.honest_rate,
        "honest_keys": args.honest_keys,
        "baseline": baseline,
        "under_flood": under_flood,
        # Every honest record, by gossip or sync, to POLL s: what a participant waits.
        "under_flood_any_path": by_any_path,
        "p99_ratio": under_flood["p99_ms"] / max(baseline["p99_ms"], 1e-3),
        "target_rss_anon_mib": {
            "at_start": ready["rss_anon_mib"],
            "baseline_peak": base["peak_rss_anon_mib"],
            "flood_peak": during["peak_rss_anon_mib"],
        },
        "target_disk_mib": {"baseline": base["disk_mib"], "after_flood": during["disk_mib"]},
        "honest_rationed": during["honest_rationed"],
        "target_syncs": len(during["syncs"]),
        "target_sync_rationed": sum(s.get("rationed", 0) for s in during["syncs"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2000.0, help="flood records/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="baseline phase length")
    parser.add_argument("--honest-rate", type=float, default=10.0, help="honest records/s")
    parser.add_argument(
        "--honest-keys",
        type=int,
        default=10,
        help="honest authors taking turns (each may publish 2/s past its first 1,000 records)",
    )
    parser.add_argument(
        "--sync-interval", type=float, default=30.0, help="the target's periodic sync, s"
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=DRAIN,
        help="s to wait after the flood for late honest records (sync brings them: give it "
        "more than --sync-interval to count them all)",
    )
    parser.add_argument("--log", help="children log here (node.* at INFO), one file each")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.log:
        os.environ["WORKWORK_BENCH_LOG"] = args.log
    if args.child:
        role, *rest = args.child
        network.child_logging(role)
        match role:
            case "target":
                trio.run(child_target, Path(rest[0]), Path(rest[1]), float(rest[2]), Path(rest[3]))
            case "honest":
                trio.run(child_honest, Path(rest[0]), rest[1], Path(rest[2]), Path(rest[3]))
            case "flooder":
                trio.run(child_flooder, Path(rest[0]), rest[1], Path(rest[2]))
        return
    with tempfile.TemporaryDirectory(prefix="workwork-flood-") as tmp:
        result = run(args, Path(tmp))
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
