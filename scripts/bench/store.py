#!/usr/bin/env python3
"""Benchmarks storage.Store: ingest against raw plyvel writes of the same bytes, query latency.

The workload is a network's history: projects, each with CONTRIBUTIONS contributions from a
pool of contributor keys, acceptances for half of them spread over EPOCHS epochs, one epoch
root per epoch, and a profile per key. Records are signed once, in worker processes, into a
temporary file; both timed phases then read that file batch by batch and time only the write:

- baseline: for each batch, a plyvel write_batch putting (b"R" + id, envelope) per record, in
  a fresh LevelDB with the store's options and sync setting;
- ingest: for each batch, `Store.ingest` of the records, decoded beforehand (decoding and
  signature checks are the protocol's cost, not the store's), with every rule and index.

The ratio is baseline time / ingest time: 1.0 would mean indexing and validation are free.
Each phase also reports, per record, its writing thread's CPU and the rest of its wall time
(waiting, for LevelDB's compaction thread mostly), and LevelDB's compaction work.

With --floor, one more ingest (untimed) logs every write batch the store makes, and rounds of
`replay` write those batches again with raw plyvel, timing the writes only: the store's LevelDB
work without any of its Python. baseline / replay is the most ingest could reach at this key
schema (floor_ratio).
Query latency is then measured on the full store: the first page (100) of "contributions of
project P" and of "acceptances of (P, epoch)", for random P and epochs.

Run: .venv/bin/python scripts/bench/store.py [--records N] [--batch N] [--rounds N] [--sync]
                                                [--samples N] [--floor] [--json]
     .venv/bin/python scripts/bench/store.py --quick      (about 20,000 records)

Each phase runs in a fresh process, so that each has its own peak RSS; rounds alternate
baseline and ingest on fresh databases, and the best of each is kept (the machines are shared).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import multiprocessing
import os
import random
import resource
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import msgpack
import plyvel
from nacl.signing import SigningKey

from protocol import (
    Acceptance,
    Contribution,
    EpochRoot,
    Profile,
    Project,
    Record,
    decode,
    project_id,
    sign,
)
from protocol.epoch import manifest
from storage import Page, Store
from storage.store import LEVELDB_OPTIONS
from storage.values import LevelStats, level_stats

CONTRIBUTIONS = 1000
EPOCHS = 10
CONTRIBUTORS = 256
OWNERS = 32
T0 = 1_767_225_600
# The project, contributions, acceptances, and per epoch a manifest of one part and a root.
PER_PROJECT = 1 + CONTRIBUTIONS + CONTRIBUTIONS // 2 + 2 * EPOCHS


def _key(kind: str, i: int) -> SigningKey:
    return SigningKey(f"bench {kind} {i}".encode().ljust(32, b".")[:32])


def _address(i: int) -> bytes:
    return (i + 1).to_bytes(20, "big")


def _project(k: int) -> list[bytes]:
    """Returns the records of project number k, in the order a node would first see them."""
    owner = _key("owner", k % OWNERS)
    start = T0 + k * 10_000
    posting = Project(
        created_at=start,
        revision=0,
        name=f"project-{k}",
        title=f"Project {k}",
        description="A project of the storage benchmark. " * 4,
        skills=("python", "storage"),
        payout=_address(k),
        epoch_length=86_400,
        status="open",
        reviewers=(),
    )
    pid = project_id(bytes(owner.verify_key), posting.name)
    out = [sign(posting, owner).raw]
    works = []
    for i in range(CONTRIBUTIONS):
        body = Contribution(
            created_at=start + 1 + i,
            project_id=pid,
            summary=f"Contribution {i} to project {k}: a paragraph describing the work done.",
            evidence_uri=f"https://example.org/{k}/{i}",
            evidence_hash=bytes(32),
            effort=30 + i % 90,
            payout=_address(1000 + i % CONTRIBUTORS),
        )
        record = sign(body, _key("contributor", (k + i) % CONTRIBUTORS))
        works.append(record.id)
        out.append(record.raw)
    listed: list[list[bytes]] = [[] for _ in range(EPOCHS)]
    for i, work in enumerate(works[::2]):
        verdict = Acceptance(
            created_at=start + 2000 + i,
            revision=0,
            project_id=pid,
            contribution_id=work,
            epoch=i % EPOCHS,
            weight=1 + i % 100,
        )
        record = sign(verdict, owner)
        listed[i % EPOCHS].append(record.id)
        out.append(record.raw)
    for epoch in range(EPOCHS):
        (part,) = manifest(
            pid,
            epoch,
            listed[epoch],
            created_at=start + 3000 + epoch,
            sign=lambda body: sign(body, owner),
        )
        root = EpochRoot(
            created_at=start + 3000 + epoch,
            project_id=pid,
            epoch=epoch,
            root=bytes([epoch + 1]) * 32,
            leaf_count=len(listed[epoch]),
            total_weight=1000,
            manifest=part.id,
            parts=1,
            chain_id=31337,
            contract=_address(99),
            tx_hash=bytes([epoch + 2]) * 32,
        )
        out += [part.raw, sign(root, owner).raw]
    return out


def _profile(i: int) -> bytes:
    body = Profile(
        created_at=T0,
        revision=0,
        name=f"Contributor {i}",
        actor="agent" if i % 2 else "human",
        skills=("python",),
        interests=("storage",),
        payout=_address(1000 + i),
        rate="",
        about="",
    )
    return sign(body, _key("contributor", i)).raw


def generate(n: int, path: Path) -> int:
    """Signs about n records into `path` (length-prefixed envelopes); returns how many."""
    projects = max(1, (n - CONTRIBUTORS) // PER_PROJECT)
    count = 0
    with open(path, "wb") as out, multiprocessing.Pool() as pool:
        for raw in pool.imap(_profile, range(CONTRIBUTORS), chunksize=64):
            out.write(struct.pack(">I", len(raw)) + raw)
            count += 1
        for records in pool.imap(_project, range(projects)):
            for raw in records:
                out.write(struct.pack(">I", len(raw)) + raw)
            count += len(records)
    return count


def batches(path: Path, size: int) -> Iterator[list[bytes]]:
    with open(path, "rb") as source:
        batch: list[bytes] = []
        while header := source.read(4):
            batch.append(source.read(struct.unpack(">I", header)[0]))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def rss_mib() -> float:
    """Returns the peak RSS of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now() -> dict[str, float]:
    """Returns the current RSS split into anonymous memory and file pages, in MiB.

    LevelDB maps its table files into memory, so pages of files it has read count in RSS; the
    kernel can drop them at any time. Anonymous memory is what the process really holds.
    """
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("RssAnon", "RssFile"):
                out[name] = int(value.split()[0]) / 1024
    return out


Ops = Sequence[tuple[bytes, bytes | None]]


def raw_writes(
    db_dir: Path, ops_batches: Iterable[Ops], sync: bool, write: Callable[[Any, Ops], None]
) -> dict[str, Any]:
    """Writes each batch of operations in one plyvel write batch (`write` fills it), in a new
    LevelDB with the store's options; times the writes only."""
    db = plyvel.DB(str(db_dir), create_if_missing=True, **LEVELDB_OPTIONS)
    spent = cpu = 0.0
    entries = 0
    for ops in ops_batches:
        entries += len(ops)
        gc.disable()
        start, start_cpu = time.perf_counter(), time.thread_time()
        wb = db.write_batch(sync=sync)
        write(wb, ops)
        wb.write()
        spent += time.perf_counter() - start
        cpu += time.thread_time() - start_cpu
        gc.enable()
    levels = level_stats(db.get_property(b"leveldb.stats").decode())
    db.close()
    return {
        "seconds": spent,
        "cpu_seconds": cpu,
        "entries": entries,
        **compaction(levels),
        "mib": du(db_dir),
        "peak_rss_mib": rss_mib(),
    }


def _puts(wb: Any, ops: Ops) -> None:
    for key, raw in ops:
        wb.put(key, raw)


def baseline(path: Path, db_dir: Path, size: int, sync: bool) -> dict[str, Any]:
    """Writes (b"R" + id, envelope) of every record with raw plyvel; times the writes only."""
    keyed = (
        [(b"R" + hashlib.sha256(raw).digest(), raw) for raw in batch]
        for batch in batches(path, size)
    )
    return raw_writes(db_dir, keyed, sync, _puts)


def compaction(levels: tuple[LevelStats, ...]) -> dict[str, int]:
    """LevelDB's compaction work over the run: its one background thread's seconds, and the
    MiB it read and wrote (flushes of the write buffer included)."""
    return {
        "compaction_s": sum(level.seconds for level in levels),
        "compaction_read_mib": sum(level.read_mib for level in levels),
        "compaction_write_mib": sum(level.write_mib for level in levels),
    }


def ingest(path: Path, db_dir: Path, size: int, sync: bool, samples: int) -> dict[str, Any]:
    """Ingests every record into a new store, timing `Store.ingest` only; then times queries."""
    spent = cpu = 0.0
    added = 0
    now = T0 + 10**9
    with Store.open(db_dir, sync=sync) as store:
        for batch in batches(path, size):
            records = [decode(raw, verify=False) for raw in batch]
            gc.disable()
            start, start_cpu = time.perf_counter(), time.thread_time()
            result = store.ingest(records, now=now)
            spent += time.perf_counter() - start
            cpu += time.thread_time() - start_cpu
            gc.enable()
            assert not result.rejected and not result.orphaned, result
            added += len(result.added)
        levels = store.compactions()
        rss_ingest = rss_mib()
        split_ingest = rss_now()
        queries = latency(store, samples) if samples else {}
        split_queries = rss_now()
    return {
        "seconds": spent,
        "cpu_seconds": cpu,
        **compaction(levels),
        "added": added,
        "mib": du(db_dir),
        "rss_after_ingest_mib": rss_ingest,
        "anon_after_ingest_mib": split_ingest["RssAnon"],
        "file_after_ingest_mib": split_ingest["RssFile"],
        "anon_after_queries_mib": split_queries["RssAnon"],
        "file_after_queries_mib": split_queries["RssFile"],
        "peak_rss_mib": rss_mib(),
        **queries,
    }


class _Recording:
    """A plyvel write batch that also appends its operations, in order, to a log file."""

    def __init__(self, batch: Any, log: BinaryIO) -> None:
        self._batch, self._log = batch, log
        self._ops: list[tuple[bytes, bytes | None]] = []

    def put(self, key: bytes, value: bytes) -> None:
        self._ops.append((key, value))
        self._batch.put(key, value)

    def delete(self, key: bytes) -> None:
        self._ops.append((key, None))
        self._batch.delete(key)

    def write(self) -> None:
        self._batch.write()
        self._log.write(msgpack.packb(self._ops, use_bin_type=True))


class _Recorder:
    """Stands in for the store's plyvel database: its write batches are recorded."""

    def __init__(self, db: Any, log: BinaryIO) -> None:
        self._db, self._log = db, log

    def write_batch(self, **options: Any) -> _Recording:
        return _Recording(self._db.write_batch(**options), self._log)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def record_writes(
    path: Path, db_dir: Path, log_path: Path, size: int, sync: bool
) -> dict[str, Any]:
    """Ingests every record, untimed, and logs every write batch the store wrote."""
    with Store.open(db_dir, sync=sync) as store, open(log_path, "wb") as log:
        store._handle = _Recorder(store._handle, log)  # a benchmark's shim, nothing else
        for batch in batches(path, size):
            store.ingest([decode(raw, verify=False) for raw in batch], now=T0 + 10**9)
        store._handle = store._handle._db
    return {"log_mib": log_path.stat().st_size / 2**20}


def _puts_and_deletes(wb: Any, ops: Ops) -> None:
    for key, value in ops:
        if value is None:
            wb.delete(key)
        else:
            wb.put(key, value)


def replay(log_path: Path, db_dir: Path, sync: bool) -> dict[str, Any]:
    """Writes the logged batches again with raw plyvel, timing the writes only: the store's
    LevelDB work without any of its Python, the floor of ingest at this key schema."""
    with open(log_path, "rb") as log:
        return raw_writes(db_dir, msgpack.Unpacker(log, use_list=False), sync, _puts_and_deletes)


def latency(store: Store, samples: int) -> dict[str, Any]:
    pids: list[bytes] = []
    cursor = None
    while True:
        page = store.projects(cursor=cursor, limit=1000)
        pids.extend(project_id(p.author, p.expect(Project).name) for p in page.items)
        if page.cursor is None:
            break
        cursor = page.cursor
    rng = random.Random(7)
    out: dict[str, Any] = {"projects": len(pids)}
    queries: list[tuple[str, Callable[[bytes], Page[Record]]]] = [
        ("contributions", lambda pid: store.contributions(pid, limit=100)),
        ("acceptances", lambda pid: store.acceptances(pid, rng.randrange(EPOCHS), limit=100)),
    ]
    for name, query in queries:
        times = []
        for _ in range(samples):
            pid = rng.choice(pids)
            start = time.perf_counter()
            page = query(pid)
            times.append(time.perf_counter() - start)
            assert page.items
        times.sort()
        out[f"{name}_items"] = len(page.items)
        out[f"{name}_p50_ms"] = round(times[len(times) // 2] * 1000, 3)
        out[f"{name}_p99_ms"] = round(times[int(len(times) * 0.99)] * 1000, 3)
    return out


def du(path: Path) -> float:
    return sum(f.stat().st_size for f in path.iterdir()) / 2**20


def in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Runs fn in a fresh process, so that each phase has its own memory and peak RSS."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        return pool.submit(fn, *args).result()


def bench(
    n: int, size: int, sync: bool, samples: int, rounds: int, floor: bool = False
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="workwork-bench-"))
    replayed: list[dict[str, Any]] = []
    try:
        source = work / "records.bin"
        start = time.perf_counter()
        count = generate(n, source)
        signing = time.perf_counter() - start
        raws, stores = [], []
        # Alternating rounds on fresh databases: the best of each is the run least disturbed by
        # whatever else the machine was doing; every round's ratio is reported too.
        for r in range(rounds):
            raws.append(in_child(baseline, source, work / f"raw{r}", size, sync))
            last = r == rounds - 1
            stores.append(
                in_child(ingest, source, work / f"store{r}", size, sync, samples if last else 0)
            )
            assert stores[-1]["added"] == count, (stores[-1]["added"], count)
            shutil.rmtree(work / f"raw{r}")
            shutil.rmtree(work / f"store{r}")
        if floor:
            log = work / "writes.msgpack"
            in_child(record_writes, source, work / "recorded", log, size, sync)
            shutil.rmtree(work / "recorded")
            for r in range(rounds):
                replayed.append(in_child(replay, log, work / f"replay{r}", sync))
                shutil.rmtree(work / f"replay{r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    raw_s = min(r["seconds"] for r in raws)
    ingest_s = min(s["seconds"] for s in stores)
    final = stores[-1]
    return {
        "records": count,
        "projects": final["projects"],
        "batch": size,
        "sync": sync,
        "rounds": rounds,
        "signing_s": round(signing, 1),
        "baseline_s": round(raw_s, 3),
        "ingest_s": round(ingest_s, 3),
        "baseline_per_s": round(count / raw_s),
        "ingest_per_s": round(count / ingest_s),
        "ratio": round(raw_s / ingest_s, 3),
        "round_ratios": [
            round(r["seconds"] / s["seconds"], 3) for r, s in zip(raws, stores, strict=True)
        ],
        # Where each phase's time went, in its best round: the writing thread's CPU, and the
        # rest of the wall time, spent waiting (for LevelDB's compaction thread, mostly).
        **per_record("baseline", min(raws, key=lambda r: r["seconds"]), count),
        **per_record("ingest", min(stores, key=lambda s: s["seconds"]), count),
        **{k: v for k, v in final.items() if k.endswith("_ms") or k.endswith("_items")},
        "query_samples": samples,
        "store_mib": round(final["mib"], 1),
        "baseline_db_mib": round(raws[-1]["mib"], 1),
        "store_rss_after_ingest_mib": round(final["rss_after_ingest_mib"], 1),
        "store_anon_after_ingest_mib": round(final["anon_after_ingest_mib"], 1),
        "store_file_after_ingest_mib": round(final["file_after_ingest_mib"], 1),
        "store_anon_after_queries_mib": round(final["anon_after_queries_mib"], 1),
        "store_file_after_queries_mib": round(final["file_after_queries_mib"], 1),
        "store_peak_rss_mib": round(max(s["peak_rss_mib"] for s in stores), 1),
        "baseline_peak_rss_mib": round(max(r["peak_rss_mib"] for r in raws), 1),
        "cpus": os.cpu_count(),
        **(floor_figures(replayed, raw_s, count) if replayed else {}),
    }


def floor_figures(replayed: list[dict[str, Any]], raw_s: float, count: int) -> dict[str, Any]:
    best = min(replayed, key=lambda r: r["seconds"])
    return {
        "floor_entries_per_record": round(best["entries"] / count, 2),
        "floor_replay_s": round(best["seconds"], 3),
        # The most ingest could reach at this key schema: baseline / the store's writes alone.
        "floor_ratio": round(raw_s / best["seconds"], 3),
        "floor_round_ratios": [round(raw_s / r["seconds"], 3) for r in replayed],
        **per_record("floor", best, count),
    }


def per_record(name: str, phase: dict[str, Any], count: int) -> dict[str, Any]:
    us = 1e6 / count
    return {
        f"{name}_cpu_us": round(phase["cpu_seconds"] * us, 2),
        f"{name}_wait_us": round(max(0.0, phase["seconds"] - phase["cpu_seconds"]) * us, 2),
        f"{name}_compaction_s": phase["compaction_s"],
        f"{name}_compaction_io_mib": phase["compaction_read_mib"] + phase["compaction_write_mib"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records to store")
    parser.add_argument("--batch", type=int, default=1000, help="records per ingest call")
    parser.add_argument("--sync", action="store_true", help="fsync every write (both phases)")
    parser.add_argument("--samples", type=int, default=2000, help="queries to time, per query")
    parser.add_argument("--rounds", type=int, default=3, help="baseline/ingest pairs to run")
    parser.add_argument("--quick", action="store_true", help="a smoke test: about 20,000 records")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also replay the store's own write batches with raw plyvel (ingest's floor)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    n = 20_000 if args.quick else args.records
    result = bench(n, args.batch, args.sync, args.samples, args.rounds, args.floor)
    if args.json:
        print(json.dumps(result))
        return
    width = max(map(len, result)) + 2
    for name, value in result.items():
        print(f"{name:<{width}}{value}")


if __name__ == "__main__":
    main()
