#!/usr/bin/env python3
"""Benchmarks `node.chain.audit.audit_epoch` on an epoch of 100,000 contributions against raw verify.

The workload: one project, N contributions from a pool of contributor keys, each accepted by the
owner into epoch 0 (N contributions + N acceptances in a real store), the epoch anchored on an
embedded chain (eth-tester) and its epoch root stored. Two phases are timed, in the same process:

- baseline: libsodium's `crypto_sign_open` on the signed bytes of the same 2N records, one
  after another, in one thread: the raw cost of the signatures an audit must check;
- audit: `audit_epoch` of the epoch, with the chain: reading every record from LevelDB,
  decoding and verifying each again (in worker threads), the rules, the tree, the chain's anchor.

The ratio is baseline time / audit time: 1.0 would mean the audit costs no more than checking
the signatures alone in one thread (it uses THREADS threads for those, so it can pass 1.0 on a
quiet machine with free cores). Rounds alternate the two phases; the best of each is kept.

Run: .venv/bin/python scripts/bench/audit.py [--contributions N] [--rounds N] [--json]
     .venv/bin/python scripts/bench/audit.py --quick      (10,000 contributions)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from nacl.bindings import crypto_sign_open
from nacl.signing import SigningKey

from node.chain.audit import audit_epoch
from node.chain.client import ChainClient
from node.net.verify import THREADS
from protocol import (
    SIGNING_DOMAIN,
    Acceptance,
    Contribution,
    EpochRoot,
    Project,
    Record,
    encode_body,
    project_id,
    sign,
)
from protocol.epoch import Summary, manifest
from protocol.merkle import Leaf, MerkleTree
from storage import Store

T0 = 1_767_225_600
CONTRIBUTORS = 256
BATCH = 1000


def _key(label: str) -> SigningKey:
    return SigningKey(hashlib.sha256(b"bench audit " + label.encode()).digest())


def build(store: Store, chain: ChainClient, count: int) -> tuple[bytes, list[Record]]:
    """Fills the store with the epoch's records and anchors it; returns the project id and them."""
    owner = _key("owner")
    project = sign(
        Project(
            created_at=T0,
            revision=0,
            name="bench",
            title="Audit benchmark",
            description="",
            skills=(),
            payout=chain.sender,
            epoch_length=0,
            status="open",
            reviewers=(),
        ),
        owner,
    )
    pid = project_id(project.author, "bench")
    keys = [_key(f"contributor {i}") for i in range(CONTRIBUTORS)]
    store.ingest([project], now=T0 + 10**6)
    records: list[Record] = [project]
    leaves = []
    listed: list[bytes] = []
    for start in range(0, count, BATCH):
        batch = []
        for i in range(start, min(count, start + BATCH)):
            payout = (i % CONTRIBUTORS + 1).to_bytes(20, "big")
            work = sign(
                Contribution(
                    created_at=T0 + 1,
                    project_id=pid,
                    summary=f"contribution {i}",
                    evidence_uri="https://example.org/work",
                    evidence_hash=b"",
                    effort=60,
                    payout=payout,
                ),
                keys[i % CONTRIBUTORS],
            )
            weight = i % 100 + 1
            accepted = sign(
                Acceptance(
                    created_at=T0 + 2,
                    revision=0,
                    project_id=pid,
                    contribution_id=work.id,
                    epoch=0,
                    weight=weight,
                ),
                owner,
            )
            batch += [work, accepted]
            leaves.append(Leaf(work.id, payout, weight))
            listed.append(accepted.id)
        result = store.ingest(batch, now=T0 + 10**6)
        assert len(result.added) == len(batch), result.rejected[:3]
        records += batch
    tree = MerkleTree.build(leaves)
    summary = Summary(tree.root, len(tree), sum(leaf.weight for leaf in leaves))
    receipt = chain.transact(chain.sign_anchor(pid, 0, summary))
    parts = manifest(pid, 0, listed, created_at=T0 + 3, sign=lambda body: sign(body, owner))
    root = sign(
        EpochRoot(
            created_at=T0 + 3,
            project_id=pid,
            epoch=0,
            root=summary.root,
            leaf_count=summary.leaf_count,
            total_weight=summary.total_weight,
            manifest=parts[0].id,
            parts=len(parts),
            chain_id=chain.chain_id,
            contract=chain.address,
            tx_hash=bytes(receipt["transactionHash"]),
        ),
        owner,
    )
    store.ingest([*parts, root], now=T0 + 10**6)
    return pid, [*records, *parts, root]


def cpu_seconds() -> float:
    """Returns the CPU time of this process (every thread) and of its child processes alive
    now (the verifying workers), read from /proc."""

    def tree(pid: int) -> float:
        total = 0.0
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                with contextlib.suppress(OSError):
                    total += tree(int(child))
        return total

    return tree(os.getpid())


def baseline(signed: list[tuple[bytes, bytes]]) -> float:
    start = time.perf_counter()
    for message, author in signed:
        crypto_sign_open(message, author)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--contributions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10,000 contributions")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    count = 10_000 if args.quick else args.contributions

    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "store") as store:
        chain = ChainClient.embedded(Account.from_key(hashlib.sha256(b"bench audit").digest()))
        start = time.perf_counter()
        pid, records = build(store, chain, count)
        setup = time.perf_counter() - start
        signed = [(r.signature + SIGNING_DOMAIN + encode_body(r.body), r.author) for r in records]
        raw_times, audit_times, raw_cpu, audit_cpu = [], [], [], []
        report = None
        for _ in range(args.rounds):
            cpu = cpu_seconds()
            raw_times.append(baseline(signed))
            raw_cpu.append(cpu_seconds() - cpu)
            start, cpu = time.perf_counter(), cpu_seconds()
            report = audit_epoch(store, chain, pid, 0, now=T0 + 10**6)
            audit_times.append(time.perf_counter() - start)
            audit_cpu.append(cpu_seconds() - cpu)
        assert report is not None and report.ok, report and report.summary()
        assert report.records == len(records), (report.records, len(records))

    raw, audit = min(raw_times), min(audit_times)
    figures: dict[str, Any] = {
        "contributions": count,
        "signatures": len(signed),
        "threads": THREADS,
        "setup_s": round(setup, 2),
        "raw_verify_s": round(raw, 3),
        "raw_verify_per_s": round(len(signed) / raw),
        "audit_s": round(audit, 3),
        "audit_records_per_s": round(len(signed) / audit),
        "ratio": round(raw / audit, 3),
        "rounds": {
            "raw": [round(t, 3) for t in raw_times],
            "audit": [round(t, 3) for t in audit_times],
        },
        # CPU per record, in us, of this process and its verifying workers: the load moves it
        # much less than the wall times.
        "cpu_us_per_record": {
            "raw": [round(t / len(signed) * 1e6, 1) for t in raw_cpu],
            "audit": [round(t / len(signed) * 1e6, 1) for t in audit_cpu],
        },
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"epoch of {count:,} contributions + {count:,} acceptances ({len(signed):,} records)")
    print(f"  setup (sign, ingest, anchor):   {setup:.1f} s")
    print(f"  raw Ed25519 verify, 1 thread:   {raw:.3f} s ({len(signed) / raw:,.0f} /s)")
    print(
        f"  audit_epoch, {THREADS} threads:        {audit:.3f} s ({len(signed) / audit:,.0f} records/s)"
    )
    print(f"  ratio raw / audit:              {raw / audit:.3f}")


if __name__ == "__main__":
    main()
