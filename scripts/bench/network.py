#!/usr/bin/env python3
"""Network benchmarks: gossip throughput, propagation latency, sync catch-up, memory.

Every figure that depends on the machine is also given as a ratio to a baseline measured in the
same run. For throughput and catch-up it is the raw Ed25519 verify rate: libsodium's
crypto_sign_open over the same records' signed bytes, one call after another on one thread, in
the process that receives (which itself checks signatures on every core). For latency it is
one hop between two node processes.

    throughput  two node processes; one publishes N records, the other verifies and stores
                them from gossip alone (periodic sync off, so a loss would show).
    latency     ten node processes on 127.0.0.1, a sparse network (each dials the bootstrap node
                and keeps PEERS peers); two of them publish single records at a steady total
                rate. The time from submit to stored, for every (record, other node) pair,
                against the same figure for two node processes (one hop) in the same run.
    catchup     a node process holding N records and a fresh one that syncs them all; the
                fresh node's records/s, and its peak RSS once it holds them.
    lag         the event loop's lag in a node process holding N records while it serves
                catch-up to three fresh node processes at once and stores GOSSIP records
                published by a fourth: a task that sleeps 10 ms, again and again, records how
                late each wake-up is; against the same figure for the same node idle, measured
                first in the same run (the raw baseline). Target: max < 50 ms.
    rss         a node process started on a store of N records (filled by another process,
                which ends first): its peak RSS and anonymous memory once started, and after
                reading every topic's ids and every record's bytes. Not part of `all`.

Run: .venv/bin/python scripts/bench/network.py [throughput|latency|catchup|lag|rss|all]
     [--records N] [--rate R] [--seconds S] [--gossip G] [--json]. Only 127.0.0.1 is used; child processes
     end by themselves, and the parent stops them by pid when it leaves.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import msgpack
import trio
from nacl.bindings import crypto_sign_open
from nacl.signing import SigningKey

from node import daemon
from node.config import NetworkConfig
from node.daemon import tune_gc
from node.net import host
from node.net.node import Node
from protocol import (
    SIGNING_DOMAIN,
    Contribution,
    Project,
    decode,
    encode_body,
    project_id,
    sign,
)
from protocol.topics import topic as topic_of

NOW = int(time.time()) - 3600
CHILD_TIMEOUT = 600
# Latency: peers each node dials for (a sparse network), and how long after the last publish
# the nodes wait for deliveries.
PEERS = 3
DRAIN = 5.0
# Records per `Node.submit` call of the throughput publisher.
SUBMIT = 2000


def _key(i: int) -> SigningKey:
    return SigningKey(hashlib.sha256(b"bench key %d" % i).digest())


def _sign_range(args: tuple[int, int]) -> list[bytes]:
    start, stop = args
    owner = _key(0)
    pid = project_id(bytes(owner.verify_key), "bench")
    out = []
    for i in range(start, stop):
        body = Contribution(
            NOW + i // 1000,
            pid,
            f"Contribution {i}: fixed the flaky test in module {i % 97}.",
            f"https://example.org/pr/{i}",
            hashlib.sha256(b"%d" % i).digest(),
            30 + i % 90,
            hashlib.sha256(b"payout %d" % (i % 50)).digest()[:20],
        )
        out.append(sign(body, _key(1 + i % 16)).raw)
    return out


def make_records(count: int) -> list[bytes]:
    """Returns a project and `count` - 1 contributions to it, signed on every core."""
    owner = _key(0)
    project = sign(
        Project(NOW, 0, "bench", "Benchmark", "", ("python",), b"\x01" * 20, 0, "open", ()), owner
    )
    step = 5000
    with Pool() as pool:
        chunks = pool.map(
            _sign_range, [(i, min(i + step, count - 1)) for i in range(0, count - 1, step)]
        )
    return [project.raw, *(raw for chunk in chunks for raw in chunk)]


def raw_verify_rate(raws: list[bytes], sample: int = 20_000) -> float:
    """Returns crypto_sign_open calls per second over the signed bytes of these records."""
    records = [decode(raw) for raw in raws[:sample]]
    signed = [(r.signature + SIGNING_DOMAIN + encode_body(r.body), r.author) for r in records]
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for message, author in signed:
            crypto_sign_open(message, author)
        best = max(best, len(signed) / (time.perf_counter() - start))
    return best


def raw_verify_cpu_us(raws: list[bytes], sample: int = 5_000) -> float:
    """Returns the CPU time of one crypto_sign_open over these records' signed bytes, in us:
    the thread's CPU time, which a busy machine disturbs much less than the wall time."""
    records = [decode(raw) for raw in raws[:sample]]
    signed = [(r.signature + SIGNING_DOMAIN + encode_body(r.body), r.author) for r in records]
    best = float("inf")
    for _ in range(3):
        start = time.thread_time()
        for message, author in signed:
            crypto_sign_open(message, author)
        best = min(best, (time.thread_time() - start) / len(signed) * 1e6)
    return best


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """Returns the CPU time this process used so far, every thread's, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def tree_cpu_seconds(pid: int, *, itself: bool = True) -> float:
    """Returns the CPU time (user and system) of process `pid` and of its descendants alive now,
    read from /proc; 0 for a process that has ended."""
    total = 0.0
    try:
        if itself:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += tree_cpu_seconds(int(child))
    except (OSError, IndexError, ValueError):
        pass
    return total


def emit(**event: Any) -> None:
    print(json.dumps(event), flush=True)


async def read_line() -> str:
    """Reads a line from the parent without blocking the event loop."""
    # trio-typing's stubs (see node.net.gossip) lack abandon_on_cancel.
    return await trio.to_thread.run_sync(
        sys.stdin.readline,
        abandon_on_cancel=True,  # type: ignore[call-arg]
    )


async def until_stopped() -> None:
    """Returns when the parent says stop (or closes stdin), or after CHILD_TIMEOUT."""
    with trio.move_on_after(CHILD_TIMEOUT):
        await read_line()


async def start(nursery: trio.Nursery, data: Path, **config: Any) -> Node:
    """Starts a node in a child process as the daemon does (its collector tuned likewise).

    The authors' rations are off unless `config` says otherwise: these benchmarks measure the
    pipeline, and their records come from 16 keys with no accepted work and no proof of work,
    which the default rations (docs/PROTOCOL.md, Network: Admission) hold to 200 records and
    then 2 per second for all of them together, as they would a flood: the throughput and
    catch-up runs never finished, and the latency run lost deliveries (the tests turn the
    rations off likewise, tests/support/nodes.py).
    """
    config.setdefault("author_rate", 0.0)
    node = Node(data, NetworkConfig(**config))
    await nursery.start(node.run)
    tune_gc()
    return node


# Child processes.


async def child_receiver(data: Path, expect: int, raws_file: Path) -> None:
    raws = msgpack.unpackb(raws_file.read_bytes())
    baseline = raw_verify_rate(raws)
    del raws
    arrivals: list[float] = []
    async with trio.open_nursery() as nursery:
        node = await start(nursery, data, role="bootstrap", sync_interval=1e9)
        node.gossip.on_stored.append(lambda ids: arrivals.extend([time.time()] * len(ids)))
        emit(event="ready", addr=node.addrs()[0], baseline=baseline)
        cpu_ready = cpu_seconds()
        with trio.move_on_after(CHILD_TIMEOUT):
            while len(arrivals) < expect:
                await trio.sleep(0.05)
            # A little longer, to see anything arriving late or twice.
        await trio.sleep(0.5)
        emit(
            event="done",
            stored=len(arrivals),
            first=arrivals[0] if arrivals else 0,
            last=arrivals[-1] if arrivals else 0,
            counters=vars(node.gossip.counters),
            baseline=baseline,
            rss_mib=peak_rss_mib(),
            cpu_s=cpu_seconds() - cpu_ready,
            # The verifying workers start with the first large batch: all their CPU is the run's.
            workers_cpu_s=tree_cpu_seconds(os.getpid(), itself=False),
        )
        nursery.cancel_scope.cancel()


async def child_publisher(data: Path, addr: str, raws_file: Path) -> None:
    records = [decode(raw, verify=False) for raw in msgpack.unpackb(raws_file.read_bytes())]
    async with trio.open_nursery() as nursery:
        node = await start(nursery, data, role="bootstrap", bootstrap=(addr,), sync_interval=1e9)
        with trio.fail_after(30):
            while not node.peers.connected():
                await trio.sleep(0.05)
        await trio.sleep(2.0)  # two heartbeats: the mesh forms
        began = time.time()
        cpu_began = cpu_seconds()
        emit(event="publishing", at=began)
        new = 0  # what it did not have already (sync may have brought some, the project say)
        for i in range(0, len(records), SUBMIT):
            new += len((await node.submit(records[i : i + SUBMIT])).added)
        # Wait until the publisher has handed every batch to py-libp2p.
        with trio.move_on_after(CHILD_TIMEOUT):
            while node.gossip.counters.published_records < new:
                await trio.sleep(0.01)
        emit(
            event="published",
            at=time.time(),
            counters=vars(node.gossip.counters),
            cpu_s=cpu_seconds() - cpu_began,
        )
        await until_stopped()
        nursery.cancel_scope.cancel()


async def seed(node: Node, raws_file: Path) -> int:
    """Stores the records of `raws_file` in the node's store; returns how many it holds."""
    raws = msgpack.unpackb(raws_file.read_bytes())
    for i in range(0, len(raws), 5000):
        chunk = [decode(r, verify=False) for r in raws[i : i + 5000]]
        await node.gateway.write(node.store.ingest, chunk, now=time.time())
    return sum(await node.gateway.read(lambda: [node.store.topic_count(t) for t in node.topics()]))


async def child_seed(data: Path, raws_file: Path) -> None:
    async with trio.open_nursery() as nursery:
        node = await start(nursery, data, role="bootstrap", sync_interval=1e9)
        held = await seed(node, raws_file)
        emit(event="ready", addr=node.addrs()[0], held=held)
        await until_stopped()
        nursery.cancel_scope.cancel()


def proc_status() -> dict[str, float]:
    """Returns this process's memory figures from /proc/self/status, in MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
            out[name] = round(int(value.split()[0]) / 1024, 1)
    return out


async def child_holder(data: Path) -> None:
    """A node started on a store filled beforehand by another process: it holds the records
    without ever having had them in memory as a list. It counts and sums every topic, reads
    every topic's ids page by page (what answering a fresh peer's sync reads) and reads every
    record's bytes once (what serving its fetches reads); then says what its memory is."""
    async with trio.open_nursery() as nursery:
        node = await start(nursery, data, role="bootstrap", sync_interval=1e9)
        started = proc_status()

        def read_all() -> int:
            count = 0
            for topic in node.topics():
                node.store.topic_summary(topic)
                cursor = None
                while True:
                    page = node.store.topic_ids(topic, cursor=cursor)
                    for _, rid in page.items:
                        count += node.store.get_raw(rid) is not None
                    cursor = page.cursor
                    if cursor is None:
                        break
            return count

        held = await node.gateway.read(read_all)
        emit(event="done", held=held, started=started, after=proc_status())
        nursery.cancel_scope.cancel()


TICK = 0.01


async def lags(late: list[float], queued: list[float] | None = None) -> None:
    """Sleeps TICK again and again (until cancelled); adds how late each wake-up was, in s.

    With `queued`, also adds how long the loop's thread waited on the kernel's run queue for a
    core during each tick (/proc/thread-self/schedstat): of a late wake-up, the part that was
    the machine's, not the GIL's or the loop's own work.
    """
    schedstat = os.open("/proc/thread-self/schedstat", os.O_RDONLY) if queued is not None else -1
    try:
        while True:
            waited = int(os.pread(schedstat, 100, 0).split()[1]) if queued is not None else 0
            start = trio.current_time()
            await trio.sleep(TICK)
            late.append(trio.current_time() - start - TICK)
            if queued is not None:
                queued.append((int(os.pread(schedstat, 100, 0).split()[1]) - waited) / 1e9)
    finally:
        if queued is not None:
            os.close(schedstat)


def queued_stats(late: list[float], queued: list[float]) -> dict[str, Any]:
    """The run-queue waits of the latest ticks, and of all of them, in ms."""
    worst = sorted(range(len(queued)), key=lambda i: late[i], reverse=True)[:10]
    return {
        "worst_ticks_late_ms": [round(1000 * late[i], 1) for i in worst],
        "worst_ticks_queued_ms": [round(1000 * queued[i], 1) for i in worst],
        "late_total_s": round(sum(late), 2),
        "queued_total_s": round(sum(queued), 2),
    }


def lag_stats(late: list[float]) -> dict[str, float]:
    late = sorted(late)
    return {
        "ticks": len(late),
        "p50_ms": 1000 * _percentile(late, 0.5),
        "p99_ms": 1000 * _percentile(late, 0.99),
        "max_ms": 1000 * late[-1],
    }


class GcPauses:
    """A gc callback that times the cyclic collector's passes, by generation."""

    def __init__(self) -> None:
        self.began = 0.0
        self.pauses: list[tuple[float, int]] = []

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.began = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self.began, info["generation"]))

    def summary(self) -> dict[str, Any]:
        longest = sorted(self.pauses, reverse=True)[:5]
        return {
            "collections_by_generation": [
                sum(1 for _, g in self.pauses if g == gen) for gen in range(3)
            ],
            "longest_ms": [[round(1000 * s, 1), gen] for s, gen in longest],
        }


async def child_lag_server(data: Path, raws_file: Path, idle_seconds: float) -> None:
    async with trio.open_nursery() as nursery:
        node = await start(nursery, data, role="bootstrap", sync_interval=1e9)
        held = await seed(node, raws_file)
        emit(event="ready", addr=node.addrs()[0], held=held)
        idle: list[float] = []
        with trio.move_on_after(idle_seconds):
            await lags(idle)
        emit(event="idle", **lag_stats(idle))
        await read_line()  # "go"
        measured: list[float] = []
        queued: list[float] = []
        cpu_began = cpu_seconds()
        steps_file = os.environ.get("WORKWORK_BENCH_STEPS")
        if steps_file:
            sys.path.insert(0, str(Path(__file__).parent))  # scripts/bench/steps.py
            from steps import Steps

            steps = Steps()
            trio.lowlevel.add_instrument(steps)
        pauses = GcPauses()
        gc.callbacks.append(pauses)
        with trio.move_on_after(CHILD_TIMEOUT):
            async with trio.open_nursery() as ticking:
                ticking.start_soon(lags, measured, queued)
                await read_line()  # "stop measuring"
                ticking.cancel_scope.cancel()
        gc.callbacks.remove(pauses)
        emit(
            event="done",
            cpu_s=cpu_seconds() - cpu_began,
            gossip=vars(node.gossip.counters),
            **lag_stats(measured),
            queued=queued_stats(measured, queued),
            gc=pauses.summary(),
        )
        if steps_file:
            trio.lowlevel.remove_instrument(steps)
            Path(steps_file).write_text(json.dumps(steps.summary(), indent=1))
        await until_stopped()
        nursery.cancel_scope.cancel()


async def child_fresh(data: Path, addr: str, expect: int, raws_file: Path) -> None:
    raws = msgpack.unpackb(raws_file.read_bytes())
    baseline = raw_verify_rate(raws)
    baseline_cpu_us = raw_verify_cpu_us(raws)
    del raws
    async with trio.open_nursery() as nursery:
        began = time.time()
        cpu_began = cpu_seconds()
        node = await start(nursery, data, role="bootstrap", bootstrap=(addr,), sync_interval=1e9)

        def holds() -> int:
            return sum(node.store.topic_count(t) for t in node.topics())

        # Until it holds what the seed holds (a sync with another fresh node, which has less,
        # ends well too: that is not the end of catching up).
        with trio.move_on_after(CHILD_TIMEOUT):
            while await node.gateway.read(holds) < expect:
                await trio.sleep(0.05)
        took = time.time() - began
        cpu_s = cpu_seconds() - cpu_began
        # The verifying workers started during the catch-up: all of their CPU is the catch-up's.
        workers_cpu_s = tree_cpu_seconds(os.getpid(), itself=False)
        held = await node.gateway.read(holds)
        emit(
            event="done",
            held=held,
            seconds=took,
            cpu_s=cpu_s,
            workers_cpu_s=workers_cpu_s,
            baseline_cpu_us=baseline_cpu_us,
            reports=[vars(r) for r in [*node.sync.reports, *node.sync.active()]],
            baseline=baseline,
            rss_mib=peak_rss_mib(),
        )
        nursery.cancel_scope.cancel()


async def child_peer(config: dict[str, Any]) -> None:
    """One node of the latency network; prints when it stored which record, by id.

    Every node holds the project first, so that contributions are never orphans. A publisher
    submits records k = publisher, publisher + publishers, ... at start_at + k / rate.
    """
    raws = msgpack.unpackb(Path(config["records"]).read_bytes())
    records = [decode(raw, verify=False) for raw in raws]
    follow = (project_id(bytes(_key(0).verify_key), "bench"),)
    stored: dict[str, float] = {}
    sent: dict[str, float] = {}

    def listener(ids: Any) -> None:
        now = time.time()
        for rid in ids:
            stored.setdefault(rid.hex(), now)

    async with trio.open_nursery() as nursery:
        node = await start(
            nursery,
            Path(config["data"]),
            follow=follow,
            bootstrap=tuple(config.get("bootstrap", ())),
            sync_interval=1e9,
            target_peers=PEERS,
        )
        node.store.ingest(records[:1], now=time.time())
        node.gossip.on_stored.append(listener)
        emit(event="ready", addr=node.addrs()[0])
        with trio.fail_after(60):
            while not node.peers.connected():
                await trio.sleep(0.05)
        emit(event="connected")
        with trio.fail_after(CHILD_TIMEOUT):
            line = await read_line()
        go = json.loads(line)
        cpu_began = cpu_seconds()
        start_at, seconds = go["start_at"], go["seconds"]
        publisher = config.get("publisher")
        if publisher is not None:
            step, rate = config["publishers"], config["rate"]
            for k in range(publisher, len(records) - 1, step):
                await trio.sleep(max(0.0, start_at + k / rate - time.time()))
                record = records[1 + k]
                sent[record.id.hex()] = time.time()
                await node.submit([record])
        await trio.sleep(max(0.0, start_at + seconds + DRAIN - time.time()))
        emit(
            event="done",
            sent=sent,
            stored=stored,
            connected=len(node.peers.connected()),
            mesh=len(node.gossip.mesh(topic_of(records[-1]))),
            counters=vars(node.gossip.counters),
            cpu_s=cpu_seconds() - cpu_began,
        )
        nursery.cancel_scope.cancel()


# The parent.


class Child:
    """A child process of this script, read line by line; stopped by its pid only."""

    def __init__(self, *args: str, nice: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-P", __file__, "--child", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self, event: str, timeout: float = CHILD_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"child exited before {event!r}")
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("event") == event:
                return message  # type: ignore[no-any-return]
        raise TimeoutError(event)

    def stop(self, grace: float = 5.0) -> None:
        """Tells the child to stop and waits for it to end, then terminates it.

        A child ended by a signal leaves its verify workers' semaphores to multiprocessing's
        resource tracker, which warns about them ("leaked semaphore objects").
        """
        with contextlib.suppress(OSError):  # it has ended already
            self.send("stop")
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def throughput(count: int, tmp: Path) -> dict[str, Any]:
    raws_file = tmp / "records.msgpack"
    raws_file.write_bytes(msgpack.packb(make_records(count)))
    receiver = Child("receiver", str(tmp / "rx"), str(count), str(raws_file))
    publisher = None
    try:
        ready = receiver.read("ready", 120)
        publisher = Child("publisher", str(tmp / "tx"), ready["addr"], str(raws_file))
        began = publisher.read("publishing", 60)["at"]
        published = publisher.read("published")
        done = receiver.read("done")
        rate = done["stored"] / max(done["last"] - began, 1e-9)
        return {
            "records": count,
            "stored_from_gossip": done["stored"],
            "lossless": done["stored"] == count,
            "records_per_s": rate,
            "raw_verify_per_s": done["baseline"],
            "ratio": rate / done["baseline"],
            "first_stored_after_s": done["first"] - began,
            "last_stored_after_s": done["last"] - began,
            "publisher_seconds": published["at"] - began,
            "publisher_cpu_s": published["cpu_s"],
            "receiver_cpu_s": done["cpu_s"],
            "receiver_workers_cpu_s": done["workers_cpu_s"],
            # CPU per record stored, in microseconds: what the two cores had to share.
            "us_per_record": {
                "publisher": round(1e6 * published["cpu_s"] / max(done["stored"], 1), 1),
                "receiver_process": round(1e6 * done["cpu_s"] / max(done["stored"], 1), 1),
                "receiver_workers": round(1e6 * done["workers_cpu_s"] / max(done["stored"], 1), 1),
            },
            "publisher": published["counters"],
            "receiver": done["counters"],
        }
    finally:
        if publisher:
            publisher.stop()
        receiver.stop()


def catchup(count: int, tmp: Path) -> dict[str, Any]:
    raws_file = tmp / "records.msgpack"
    raws_file.write_bytes(msgpack.packb(make_records(count)))
    seed = Child("seed", str(tmp / "seed"), str(raws_file))
    fresh = None
    try:
        ready = seed.read("ready", 300)
        seed_cpu = tree_cpu_seconds(seed.proc.pid)
        load = os.getloadavg()[0]
        fresh = Child("fresh", str(tmp / "fresh"), ready["addr"], str(count), str(raws_file))
        done = fresh.read("done")
        seed_cpu = tree_cpu_seconds(seed.proc.pid) - seed_cpu
        rate = done["held"] / done["seconds"]
        per = 1e6 / done["held"]
        return {
            "records": count,
            "held": done["held"],
            "seconds": done["seconds"],
            "records_per_s": rate,
            "raw_verify_per_s": done["baseline"],
            "ratio": rate / done["baseline"],
            "rounds": sum(r["rounds"] for r in done["reports"]),
            "peak_rss_mib": done["rss_mib"],
            # Where each record's CPU went, in microseconds, and the machine's load meanwhile.
            "us_per_record": {
                "fresh_process": round(done["cpu_s"] * per, 1),
                "fresh_workers": round(done["workers_cpu_s"] * per, 1),
                "seed_process": round(seed_cpu * per, 1),
                "raw_verify": round(1e6 / done["baseline"], 1),
                "raw_verify_cpu": round(done["baseline_cpu_us"], 1),
            },
            "load_before": load,
            "load_after": os.getloadavg()[0],
        }
    finally:
        if fresh:
            fresh.stop()
        seed.stop()


def rss(count: int, tmp: Path, runs: int = 1) -> dict[str, Any]:
    """A node process holding `count` records: its memory once started, and after reading
    them all (`child_holder`). Another process fills the store first and ends; then `runs`
    node processes, one after another, each start on it and read it all."""
    raws_file = tmp / "records.msgpack"
    raws_file.write_bytes(msgpack.packb(make_records(count)))
    seed = Child("seed", str(tmp / "node"), str(raws_file))
    try:
        filled = seed.read("ready", 1800)
    finally:
        seed.stop()
    raws_file.unlink()
    each = []
    for _ in range(runs):
        holder = Child("holder", str(tmp / "node"))
        try:
            each.append(holder.read("done", 1800))
        finally:
            holder.stop()
    done = each[0]
    return {
        "records": count,
        "held": filled["held"],
        "read": done["held"],
        "started_mib": done["started"],
        "after_reading_all_mib": done["after"],
        "runs": [{"started_mib": d["started"], "after_reading_all_mib": d["after"]} for d in each],
        "store_on_disk_mib": round(
            sum(f.stat().st_size for f in (tmp / "node").rglob("*") if f.is_file()) / 2**20, 1
        ),
    }


def child_logging(role: str) -> None:
    """Sends a child's node.* logs at INFO to a file of its own, if --log named a directory."""
    log_dir = os.environ.get("WORKWORK_BENCH_LOG")
    if log_dir:
        import logging

        logging.basicConfig(
            filename=str(Path(log_dir) / f"{role}-{os.getpid()}.log"),
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        logging.getLogger("libp2p").setLevel(logging.WARNING)


def _percentile(values: list[float], q: float) -> float:
    return values[int(q * (len(values) - 1))]


def lag(
    count: int, gossip: int, tmp: Path, *, fresh: int = 3, clients_nice: int = 0
) -> dict[str, Any]:
    """A node serving `fresh` catch-ups of `count` records and storing `gossip` records.

    The fresh nodes and the publisher stand in for peers on other machines; with
    `clients_nice`, they run at that nice value, so that on this machine's cores they take what
    the serving node leaves rather than compete with it as equals.
    """
    raws = make_records(count + gossip)
    seed_file, gossip_file = tmp / "seed.msgpack", tmp / "gossip.msgpack"
    seed_file.write_bytes(msgpack.packb(raws[:count]))
    gossip_file.write_bytes(msgpack.packb([raws[0], *raws[count:]]))
    del raws
    server = Child("lagserver", str(tmp / "server"), str(seed_file), "5")
    children: list[Child] = []
    try:
        addr = server.read("ready", 300)["addr"]
        idle = server.read("idle", 60)
        server.send("go")
        began = time.time()
        load_began = os.getloadavg()[0]
        for i in range(fresh):
            children.append(
                Child(
                    "fresh",
                    str(tmp / f"fresh{i}"),
                    addr,
                    str(count),
                    str(seed_file),
                    nice=clients_nice,
                )
            )
        publisher = Child(
            "publisher", str(tmp / "publisher"), addr, str(gossip_file), nice=clients_nice
        )
        children.append(publisher)
        catchups = [child.read("done") for child in children[:fresh]]
        published = publisher.read("published")
        server.send("stop")
        load = server.read("done")
    finally:
        for child in children:
            child.stop()
        server.stop()
    return {
        "records": count,
        "catch_ups": fresh,
        "gossip_records": gossip,
        "idle": {k: idle[k] for k in ("ticks", "p50_ms", "p99_ms", "max_ms")},
        "load": {k: load[k] for k in ("ticks", "p50_ms", "p99_ms", "max_ms")},
        "max_ratio": load["max_ms"] / max(idle["max_ms"], 1e-3),
        "p99_ratio": load["p99_ms"] / max(idle["p99_ms"], 1e-3),
        "seconds": time.time() - began,
        "catch_up_records_per_s": [round(c["held"] / c["seconds"]) for c in catchups],
        "caught_up": [c["held"] for c in catchups],
        "gossip_stored": load["gossip"]["stored"],
        "gossip_published_s": published["at"] - began,
        "server_cpu_s": load["cpu_s"],
        "run_queue": load["queued"],
        "server_gc": load["gc"],
        "clients_nice": clients_nice,
        "gc_thresholds": os.environ.get("WORKWORK_BENCH_GC")
        or ",".join(str(t) for t in daemon.GC_THRESHOLDS),
        # The machine's 1-minute load average when the measuring began and ended.
        "load_average": [round(load_began, 1), round(os.getloadavg()[0], 1)],
    }


def _network(nodes_count: int, rate: float, seconds: float, raws_file: Path, tmp: Path) -> Any:
    """Runs `nodes_count` peer processes and returns the delays from submit to stored, in s.

    Node 0 is the bootstrap node every other dials; nodes 1 and 2 (or 1 alone) publish.
    """
    publishers = [1, 2][: max(1, nodes_count - 2)]
    peers: list[Child] = []
    try:
        boot = Child("peer", json.dumps({"data": str(tmp / "n0"), "records": str(raws_file)}))
        peers.append(boot)
        addr = boot.read("ready", 120)["addr"]
        for i in range(1, nodes_count):
            config = {
                "data": str(tmp / f"n{i}"),
                "records": str(raws_file),
                "bootstrap": [addr],
                "publisher": publishers.index(i) if i in publishers else None,
                "publishers": len(publishers),
                "rate": rate,
            }
            peers.append(Child("peer", json.dumps(config)))
            # One at a time: nine processes importing the node at once while the bootstrap
            # node handshakes with all of them made dials time out on a loaded machine, and a
            # node left without a peer after 60 s ended the run (3 of 6 runs at load 8-27).
            peers[-1].read("connected", 120)
        boot.read("connected", 120)
        time.sleep(3.0)  # heartbeats: meshes form
        start_at = time.time() + 1.0
        for peer in peers:
            peer.send(json.dumps({"start_at": start_at, "seconds": seconds}))
        done = [peer.read("done", seconds + 120) for peer in peers]
    finally:
        for peer in peers:
            peer.stop()
    sent = {rid: at for d in done for rid, at in d["sent"].items()}
    delays = [at - sent[rid] for d in done for rid, at in d["stored"].items() if rid in sent]
    expected = len(sent) * (nodes_count - 1)
    delays.sort()
    return {
        "nodes": nodes_count,
        "records": len(sent),
        "deliveries": len(delays),
        "expected_deliveries": expected,
        "p50_ms": 1000 * _percentile(delays, 0.5),
        "p99_ms": 1000 * _percentile(delays, 0.99),
        "max_ms": 1000 * delays[-1],
        "connections": [d["connected"] for d in done],
        "cpu_s": [round(d["cpu_s"], 2) for d in done],
    }


def latency(tmp: Path, *, rate: float, seconds: float, nodes_count: int = 10) -> dict[str, Any]:
    """Ten node processes against the baseline, two node processes (one hop), at one load."""
    raws_file = tmp / "records.msgpack"
    raws_file.write_bytes(msgpack.packb(make_records(int(rate * seconds) + 1)))
    (tmp / "one_hop").mkdir()
    (tmp / "network").mkdir()
    one_hop = _network(2, rate, seconds, raws_file, tmp / "one_hop")
    network = _network(nodes_count, rate, seconds, raws_file, tmp / "network")
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "mesh": os.environ.get("WORKWORK_BENCH_MESH")
        or f"{host.DEGREE},{host.DEGREE_LOW},{host.DEGREE_HIGH}",
        "one_hop": one_hop,
        "network": network,
        "p50_ratio": network["p50_ms"] / one_hop["p50_ms"],
        "p99_ratio": network["p99_ms"] / one_hop["p99_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "which",
        nargs="?",
        default="all",
        choices=["throughput", "latency", "catchup", "lag", "rss", "all"],
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=10.0, help="latency: records/s in all")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency: publishing time")
    parser.add_argument("--gossip", type=int, default=20_000, help="lag: records published")
    parser.add_argument("--fresh", type=int, default=3, help="lag: catch-ups served at once")
    parser.add_argument(
        "--clients-nice",
        type=int,
        default=0,
        help="lag: nice value of the fresh nodes and the publisher (stand-ins for remote peers)",
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="rss: node processes started on the filled store"
    )
    parser.add_argument("--log", help="children log here (node.* at INFO), one file each")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--steps", help="lag: the serving node's longest task steps go here")
    parser.add_argument(
        "--mesh",
        help="GossipSub mesh degrees D,D_low,D_high for every node (default: node.net.host's)",
    )
    parser.add_argument(
        "--gc", help="the collector's thresholds in every node (default: node.daemon's)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.log:
        os.environ["WORKWORK_BENCH_LOG"] = args.log
    if args.mesh:
        os.environ["WORKWORK_BENCH_MESH"] = args.mesh
    if args.gc:
        os.environ["WORKWORK_BENCH_GC"] = args.gc
    if args.steps:
        os.environ["WORKWORK_BENCH_STEPS"] = str(Path(args.steps).resolve())
    if args.child:
        child_logging(args.child[0])
        if thresholds := os.environ.get("WORKWORK_BENCH_GC"):
            gen0, gen1, gen2 = (int(t) for t in thresholds.split(","))
            daemon.GC_THRESHOLDS = (gen0, gen1, gen2)
        if mesh := os.environ.get("WORKWORK_BENCH_MESH"):
            host.DEGREE, host.DEGREE_LOW, host.DEGREE_HIGH = (int(d) for d in mesh.split(","))
        role, *rest = args.child
        match role:
            case "receiver":
                trio.run(child_receiver, Path(rest[0]), int(rest[1]), Path(rest[2]))
            case "publisher":
                trio.run(child_publisher, Path(rest[0]), rest[1], Path(rest[2]))
            case "seed":
                trio.run(child_seed, Path(rest[0]), Path(rest[1]))
            case "peer":
                trio.run(child_peer, json.loads(rest[0]))
            case "fresh":
                trio.run(child_fresh, Path(rest[0]), rest[1], int(rest[2]), Path(rest[3]))
            case "holder":
                trio.run(child_holder, Path(rest[0]))
            case "lagserver":
                trio.run(child_lag_server, Path(rest[0]), Path(rest[1]), float(rest[2]))
        return
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="workwork-bench-") as tmp:
        base = Path(tmp)
        for name in ("throughput", "catchup", "latency", "lag", "rss"):
            if args.which == name or (args.which == "all" and name != "rss"):
                (base / name).mkdir()
                if name == "latency":
                    results[name] = latency(base / name, rate=args.rate, seconds=args.seconds)
                elif name == "lag":
                    results[name] = lag(
                        args.records,
                        args.gossip,
                        base / name,
                        fresh=args.fresh,
                        clients_nice=args.clients_nice,
                    )
                elif name == "rss":
                    results[name] = rss(args.records, base / name, args.runs)
                else:
                    results[name] = {"throughput": throughput, "catchup": catchup}[name](
                        args.records, base / name
                    )
                if not args.json:
                    print(name, json.dumps(results[name], indent=1), flush=True)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
