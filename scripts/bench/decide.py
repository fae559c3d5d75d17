#!/usr/bin/env python3
"""Benchmarks a tally (`node.decisions.decide`) with the credits cache against without it.

A store holds one project with EPOCHS anchored epochs of LEAVES accepted contributions each
(by 50 authors), a proposal counting all of them and VOTERS votes. `decide` reads the anchored
epochs' manifests, acceptances and contributions (the credits) and tallies; the cache keeps the
credits per (project, snapshot, deciding roots). The cold run clears the cache before every
call (what every call cost before the cache); the warm one does not. The floor is
`protocol.tally.tally` alone on the same votes and power: what no cache can remove. Cold and
warm alternate, in the same run.

Run: .venv/bin/python scripts/bench/decide.py [--epochs N] [--leaves N] [--samples N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from node import decisions  # noqa: E402
from node.decisions import _all, credits_of, decide  # noqa: E402
from protocol.tally import powers, tally  # noqa: E402
from storage import Store  # noqa: E402
from tests.support import factories as f  # noqa: E402

AUTHORS = [f"member-{i}" for i in range(50)]


def build(store: Store, epochs: int, leaves: int, voters: int) -> Any:
    """Fills the store; returns the proposal."""
    project = f.project()
    store.ingest([project], now=f.T0 + 10**6)
    for epoch in range(epochs):
        works, accepted = [], []
        for i in range(leaves):
            work = f.contribution(AUTHORS[i % len(AUTHORS)], summary=f"work {epoch}.{i}")
            works.append(work)
            accepted.append(f.acceptance(work, weight=1 + i % 7, epoch=epoch))
        anchored = f.anchoring(accepted, works, epoch=epoch)
        result = store.ingest([*works, *accepted, *anchored], now=f.T0 + 10**6)
        assert not result.rejected and not result.orphaned, result.rejected[:1]
    question = f.proposal("member-0", snapshot=epochs - 1)
    votes = [f.vote(question, AUTHORS[i % len(AUTHORS)]) for i in range(voters)]
    store.ingest([question, *votes], now=f.T0 + 10**6)
    return question


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--leaves", type=int, default=500)
    parser.add_argument("--voters", type=int, default=50)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "store") as store:
        question = build(store, args.epochs, args.leaves, args.voters)
        now = f.T0 + 200
        project = store.project(question.body.project_id)
        assert project is not None
        found = credits_of(store, project, args.epochs - 1)
        power = powers(found, args.epochs - 1)
        votes = _all(store.votes, question.id)
        cold, warm, floor = [], [], []
        for _ in range(args.samples):
            decisions._kept.clear()
            start = time.perf_counter()
            first = decide(store, question, now=now)
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            again = decide(store, question, now=now)
            warm.append(time.perf_counter() - start)
            assert first.tally == again.tally
            start = time.perf_counter()
            tally(question, votes, power)
            floor.append(time.perf_counter() - start)
        out = {
            "credits": len(found),
            "epochs": args.epochs,
            "votes": len(votes),
            "cold_ms": round(statistics.median(cold) * 1000, 2),
            "warm_ms": round(statistics.median(warm) * 1000, 2),
            "floor_ms": round(statistics.median(floor) * 1000, 3),
        }
        out["cold_over_warm"] = round(out["cold_ms"] / out["warm_ms"], 1)
        out["warm_over_floor"] = round(out["warm_ms"] / out["floor_ms"], 1)
    if args.json:
        print(json.dumps(out))
        return
    print(
        f"{out['credits']:,} credits in {out['epochs']} anchored epochs, {out['votes']} votes\n"
        f"decide, cache cleared: {out['cold_ms']} ms (median of {args.samples})\n"
        f"decide, cached credits: {out['warm_ms']} ms\n"
        f"tally alone (floor): {out['floor_ms']} ms\n"
        f"cold / warm: {out['cold_over_warm']}x; warm / floor: {out['warm_over_floor']}x"
    )


if __name__ == "__main__":
    main()
