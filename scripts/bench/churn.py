#!/usr/bin/env python3
"""Fifty node processes on 127.0.0.1 with churn: propagation, convergence, bytes and memory.

One bootstrap node and N - 1 personal nodes (each a real `Node` in its own process, with its own
data dir and a fixed port, started as scripts/bench/network.py starts its children), all
following one project's shard. Once every node has a peer, two nodes (never killed) publish
single records at RATE records/s in all for SECONDS. Meanwhile CHURN of the other nodes (20%)
are killed with SIGKILL at random times in the first half of the window, and each is
restarted over the same data dir and port DOWN seconds later. Reported:

    propagation   p50/p99 of the delay from submit to stored, over every (record, node) pair
                  (gossip or sync; a node that was down counts from the submit all the same),
                  and the same for the nodes never killed;
    convergence   the time from the last restart until every node holds every record;
    bytes         bytes each node read and wrote on its libp2p connections during the run,
                  per record published (all traffic: gossip, IHAVE/IWANT, sync, DHT, identify);
    rss           each node's resident memory at the end, and its peak.

Each child appends its arrivals to a file as they happen, so a child killed with SIGKILL loses
nothing the report needs. It stops by itself: every child ends CHILD_TIMEOUT after it started
if nobody stops it, and the parent stops only its own children, by pid.

Run: .venv/bin/python scripts/bench/churn.py [--nodes 50] [--rate 2] [--seconds 60]
     [--churn 0.2] [--down 5] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgpack
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

# scripts/bench/network.py: records, node start-up, child I/O.
import network

from protocol import decode, project_id

# Long enough for 50 start-ups on a busy machine (one run took 15 min to start them all).
CHILD_TIMEOUT = 3000
STATUS_EVERY = 1.0


# The child: one node.


async def child_node(config: dict[str, Any]) -> None:
    from libp2p.io.trio import TrioTCPStream

    # Counted across restarts: a restarted node goes on from what its last run reported.
    previous = _status(Path(config["data"])).get("bytes", 0)
    counted = {"read": previous, "written": 0}
    read, write = TrioTCPStream.read, TrioTCPStream.write

    # Bytes on the wire, every libp2p connection of this process (instrumentation only).
    async def counting_read(self: TrioTCPStream, n: int | None = None) -> bytes:
        data = await read(self, n)
        counted["read"] += len(data)
        return data

    async def counting_write(self: TrioTCPStream, data: bytes) -> None:
        counted["written"] += len(data)
        await write(self, data)

    TrioTCPStream.read = counting_read  # type: ignore[method-assign]
    TrioTCPStream.write = counting_write  # type: ignore[method-assign]

    data = Path(config["data"])
    raws = msgpack.unpackb(Path(config["records"]).read_bytes())
    records = [decode(raw, verify=False) for raw in raws]
    arrivals_file = data / "arrivals.log"
    held: set[bytes] = set()
    if arrivals_file.exists():  # a restart: what it held before it was killed
        for line in arrivals_file.read_text().splitlines():
            held.add(bytes.fromhex(line.split()[0]))
    arrivals = arrivals_file.open("a", buffering=1)

    def arrived(ids: Any) -> None:
        now = time.time()
        for rid in ids:
            if rid not in held:
                held.add(rid)
                arrivals.write(f"{rid.hex()} {now}\n")

    follow = (project_id(bytes(network._key(0).verify_key), "bench"),)
    role = "bootstrap" if config.get("bootstrap_node") else "personal"
    with trio.move_on_after(CHILD_TIMEOUT):
        async with trio.open_nursery() as nursery:
            node = await network.start(
                nursery,
                data,
                role=role,
                listen=(f"/ip4/127.0.0.1/tcp/{config['port']}",),
                bootstrap=tuple(config.get("bootstrap", ())),
                follow=follow,
                sync_interval=config["sync_interval"],
                target_peers=config["target"],
            )
            await node.gateway.write(node.store.ingest, records[:1], now=time.time())
            node.gossip.on_stored.append(arrived)
            network.emit(event="ready", addr=node.addrs()[0], pid=os.getpid())
            nursery.start_soon(_poll, node, records, arrived)
            nursery.start_soon(_report, node, data, held, counted)
            go = json.loads(await network.read_line())
            if go.get("publish"):
                step, rate = go["publishers"], go["rate"]
                start_at = go["start_at"]
                for k in range(go["publisher"], len(records) - 1, step):
                    await trio.sleep(max(0.0, start_at + k / rate - time.time()))
                    record = records[1 + k]
                    arrived([record.id])
                    await node.submit([record])
            await network.until_stopped()
            nursery.cancel_scope.cancel()


async def _poll(node: Any, records: list[Any], arrived: Any) -> None:
    """Notes records that came by sync (gossip's listener sees only gossip)."""
    missing = [r.id for r in records]
    while missing:
        have = await node.gateway.read(_held, node, missing)
        arrived(have)
        gone = set(have)
        missing = [rid for rid in missing if rid not in gone]
        await trio.sleep(1.0)


def _held(node: Any, ids: list[bytes]) -> list[bytes]:
    return [rid for rid in ids if node.store.has(rid)]


async def _report(node: Any, data: Path, held: set[bytes], counted: dict[str, int]) -> None:
    """Writes the node's status file every STATUS_EVERY seconds, for the parent to read."""
    while True:
        status = {
            "held": len(held),
            "peers": len(node.peers.connected()),
            "known": len(node.peers.known()),
            "bytes": counted["read"] + counted["written"],
            "rss_mib": _rss_mib(),
            "peak_rss_mib": network.peak_rss_mib(),
            "at": time.time(),
        }
        tmp = data / "status.tmp"
        tmp.write_text(json.dumps(status))
        tmp.replace(data / "status.json")
        await trio.sleep(STATUS_EVERY)


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# The parent.


class Child(network.Child):
    """A node process of this script; stopped by its pid only."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        Path(config["data"]).mkdir(parents=True, exist_ok=True)
        with open(Path(config["data"]) / "stderr.log", "a") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", __file__, "--child", json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )

    def kill(self) -> None:
        """SIGKILL, by pid: the node gets no chance to close anything."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(data: Path) -> dict[str, Any]:
    try:
        return json.loads((data / "status.json").read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {}


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    count = int(args.rate * args.seconds)
    raws_file = tmp / "records.msgpack"
    raws_file.write_bytes(msgpack.packb(network.make_records(count + 1)))
    ids = [decode(raw, verify=False).id for raw in msgpack.unpackb(raws_file.read_bytes())[1:]]

    def config(i: int, **extra: Any) -> dict[str, Any]:
        return {
            "data": str(tmp / f"n{i}"),
            "records": str(raws_file),
            "port": _free_port(),
            "sync_interval": args.sync_interval,
            "target": args.target,
            **extra,
        }

    children: list[Child] = []
    began = time.time()
    try:
        boot = Child(config(0, bootstrap_node=True))
        children.append(boot)
        addr = boot.read("ready", 120)["addr"]
        for i in range(1, args.nodes):
            children.append(Child(config(i, bootstrap=[addr])))
            if i % 5 == 0:  # pace start-up on a shared machine
                for child in children[i - 4 : i + 1]:
                    child.read("ready", 180)
        for child in children[1 + 5 * ((args.nodes - 1) // 5) :]:
            child.read("ready", 180)
        started = time.time() - began
        # Every node has a peer before records flow.
        deadline = time.time() + 120
        while time.time() < deadline:
            if all(_status(Path(c.config["data"])).get("peers", 0) > 0 for c in children):
                break
            if any(c.proc.poll() is not None for c in children):
                raise RuntimeError("a node process died: see its stderr.log (--dir)")
            time.sleep(0.5)
        bytes_before = sum(_status(Path(c.config["data"])).get("bytes", 0) for c in children)
        publishers = [1, 2]
        killable = list(range(3, args.nodes))
        victims = rng.sample(killable, round(args.churn * args.nodes))
        start_at = time.time() + 2.0
        for i, child in enumerate(children):
            go: dict[str, Any] = {}
            if i in publishers:
                go = {
                    "publish": True,
                    "publisher": publishers.index(i),
                    "publishers": len(publishers),
                    "rate": args.rate,
                    "start_at": start_at,
                }
            child.send(json.dumps(go))
        # Churn: kill each victim at a random time of the first half, restart it DOWN later.
        plan = sorted((start_at + rng.uniform(0, args.seconds / 2), "kill", i) for i in victims)
        plan += [(t + args.down, "restart", i) for t, _, i in plan]
        plan.sort()
        last_restart = start_at
        for at, what, i in plan:
            time.sleep(max(0.0, at - time.time()))
            if what == "kill":
                children[i].kill()
            else:
                fresh = Child({**children[i].config})
                fresh.read("ready", 180)
                fresh.send("{}")
                children[i] = fresh
                last_restart = time.time()
        end_publish = start_at + args.seconds
        time.sleep(max(0.0, end_publish - time.time()))
        # Convergence: every node holds every record.
        converged_at = None
        deadline = time.time() + args.converge_timeout
        while time.time() < deadline:
            held = [_status(Path(c.config["data"])).get("held", 0) for c in children]
            if min(held) >= count + 1:  # the project, and every record
                converged_at = time.time()
                break
            time.sleep(0.5)
        statuses = [_status(Path(c.config["data"])) for c in children]
    finally:
        for child in children:  # all told first: they stop together
            with contextlib.suppress(OSError):
                child.send("stop")
        for child in children:
            child.stop()
    # Arrival times, from the files (they survive SIGKILL).
    sent: dict[str, float] = {}
    arrivals: list[dict[str, float]] = []
    for c in children:
        got: dict[str, float] = {}
        path = Path(c.config["data"]) / "arrivals.log"
        for line in path.read_text().splitlines() if path.exists() else []:
            rid, at = line.split()
            got.setdefault(rid, float(at))
        arrivals.append(got)
    for i in publishers:
        for rid, at in arrivals[i].items():
            sent.setdefault(rid, at)
    sent = {rid: min(a[rid] for a in (arrivals[1], arrivals[2]) if rid in a) for rid in sent}
    wanted = {rid.hex() for rid in ids}

    def delays(nodes: list[int]) -> list[float]:
        out = []
        for i in nodes:
            if i in publishers:
                continue
            for rid, at in arrivals[i].items():
                if rid in sent and rid in wanted:
                    out.append(at - sent[rid])
        return sorted(out)

    everyone = delays(list(range(args.nodes)))
    # The last arrival of any published record anywhere: when the network had converged.
    last_arrival = max(
        (at for a in arrivals for rid, at in a.items() if rid in wanted), default=0.0
    )
    steady = delays([i for i in range(args.nodes) if i not in victims])
    published = len([rid for rid in sent if rid in wanted])
    traffic = [s.get("bytes", 0) for s in statuses]
    return {
        "nodes": args.nodes,
        "killed_and_restarted": len(victims),
        "records": published,
        "rate_per_s": args.rate,
        "start_up_s": round(started, 1),
        "deliveries": len(everyone),
        "expected_deliveries": published * (args.nodes - len(publishers)),
        "propagation_ms": _stats(everyone),
        "propagation_never_killed_ms": _stats(steady),
        "converged": converged_at is not None,
        "converge_after_last_restart_s": (
            round(converged_at - last_restart, 2) if converged_at else None
        ),
        "last_arrival_after_last_restart_s": round(last_arrival - last_restart, 2),
        "last_arrival_after_last_publish_s": round(last_arrival - end_publish, 2),
        "converge_after_last_publish_s": (
            round(converged_at - end_publish, 2) if converged_at else None
        ),
        "bytes_per_record_per_node": round(
            (sum(traffic) - bytes_before) / max(1, published) / args.nodes
        ),
        "rss_mib": _dist([s.get("rss_mib", 0.0) for s in statuses]),
        "peak_rss_mib": _dist([s.get("peak_rss_mib", 0.0) for s in statuses]),
        "peers": _dist([float(s.get("peers", 0)) for s in statuses]),
    }


def _stats(delays: list[float]) -> dict[str, float]:
    if not delays:
        return {}
    pick = network._percentile
    return {
        "p50": round(1000 * pick(delays, 0.5)),
        "p99": round(1000 * pick(delays, 0.99)),
        "max": round(1000 * delays[-1]),
    }


def _dist(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "min": round(values[0], 1),
        "median": round(values[len(values) // 2], 1),
        "max": round(values[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--rate", type=float, default=2.0, help="records/s in all")
    parser.add_argument("--seconds", type=float, default=60.0, help="publishing time")
    parser.add_argument("--churn", type=float, default=0.2, help="share of nodes killed")
    parser.add_argument("--down", type=float, default=5.0, help="seconds a killed node is down")
    parser.add_argument("--target", type=int, default=4, help="network.target_peers")
    parser.add_argument("--sync-interval", type=float, default=10.0)
    parser.add_argument("--converge-timeout", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--dir", help="data dirs here, kept (default: a temporary dir)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        trio.run(child_node, json.loads(args.child))
        return
    if args.dir:  # kept afterwards: each node's stderr.log, arrivals.log, status.json
        Path(args.dir).mkdir(parents=True, exist_ok=True)
        result = run(args, Path(args.dir))
    else:
        with tempfile.TemporaryDirectory(prefix="workwork-churn-") as tmp:
            result = run(args, Path(tmp))
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
