#!/usr/bin/env python3
"""Benchmarks the matching ranker: its quality on the judged set, and its speed on 1,000 projects.

Quality: every ranker ranks the 44 projects of tests/data/match/ for each of its 22 profiles;
the report gives NDCG@5 and NDCG@10 over all profiles and per split (dev, heldout), next to the
baseline measured in the same run: projects sorted by how many skill tags they share exactly
with the profile's skills and interests.

Speed: ranking N projects (1,000 by default, made from the set's texts with words shuffled in,
so no two are alike) for one profile, best of several alternating rounds: cold (no posting
seen before: every project is tokenized) and warm (postings already analyzed, as on a node that
matched before). The raw baseline, in the same rounds: a plain pass over the same projects'
text (lowercase, split into words, sort by words shared with the profile's tags), the least a
ranker that reads the text must do; the exact-tag-overlap pass is shown too.

Run: .venv/bin/python scripts/bench/match.py [--projects N] [--rounds N] [--semantic] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from node.match import Opening, Seeker, bm25, rank  # noqa: E402
from node.match.evaluate import NOW, Ranker, evaluate, key_id, load, overlap  # noqa: E402
from node.match.semantic import Embedder  # noqa: E402

DATA = ROOT / "tests" / "data" / "match"


RANKERS: dict[str, Ranker] = {
    "bm25 (default)": lambda s, o: [m.project_id for m in rank(s, o, now=NOW)],
    "baseline: exact tag overlap": lambda s, o: [p.project_id for p in overlap(s, o)],
}


def with_semantic() -> Embedder:
    """Adds the ranker with the semantic extra (it must be installed) and returns its model."""
    embedder = Embedder.load()
    RANKERS["semantic (bm25 + MiniLM)"] = lambda s, o: [
        m.project_id for m in rank(s, o, now=NOW, similarity=embedder)
    ]
    return embedder


def quality() -> dict[str, Any]:
    projects = json.loads((DATA / "projects.json").read_text())
    profiles = json.loads((DATA / "profiles.json").read_text())
    openings, cases = load(projects, profiles)
    keys = {key_id(p["key"]): p["key"] for p in projects}
    return {name: evaluate(fn, openings, cases, keys) for name, fn in RANKERS.items()}


def synthetic(openings: Sequence[Opening], n: int) -> list[Opening]:
    """Returns n distinct openings made from the set's: texts mixed, ids new."""
    rng = random.Random(7)
    vocabulary = " ".join(o.description for o in openings).split()
    out = []
    for i in range(n):
        base = openings[i % len(openings)]
        extra = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(10, 40)))
        out.append(
            replace(
                base,
                project_id=key_id(f"synthetic {i}"),
                title=f"{base.title} ({i})",
                description=f"{base.description} {extra}",
            )
        )
    return out


_WORD = re.compile(r"\w+")


def text_pass(seeker: Seeker, openings: Sequence[Opening]) -> list[Opening]:
    """The raw baseline of speed: read every project's text once, plainly (lowercase, split
    into words), and sort by the words shared with the seeker's tags: the least any ranker that
    reads the text must do."""
    mine = {w for tag in (*seeker.skills, *seeker.interests) for w in _WORD.findall(tag.lower())}
    scored = []
    for o in openings:
        found = set(_WORD.findall(f"{o.title} {' '.join(o.skills)} {o.description}".lower()))
        scored.append((-len(mine & found), o.project_id, o))
    scored.sort(key=lambda x: (x[0], x[1]))
    return [o for *_, o in scored]


def timed(fn: Callable[[], object], cpu: list[float] | None = None) -> float:
    """Returns the wall time of one call of fn; appends its CPU time to `cpu` if given (on a
    shared machine, wall time includes waiting for a core, CPU time does not)."""
    start, started = time.perf_counter(), time.thread_time()
    fn()
    if cpu is not None:
        cpu.append(time.thread_time() - started)
    return time.perf_counter() - start


def speed(n: int, rounds: int, embedder: Embedder | None) -> dict[str, Any]:
    projects = json.loads((DATA / "projects.json").read_text())
    profiles = json.loads((DATA / "profiles.json").read_text())
    openings, cases = load(projects, profiles)
    many = synthetic(openings, n)
    seeker: Seeker = next(c.seeker for c in cases if c.seeker.work and c.seeker.interests)

    # The rounds alternate, so that a burst of load on the machine hits all three alike.
    times: dict[str, list[float]] = {
        k: [] for k in ("tags", "text", "cold", "warm", "text_cpu", "cold_cpu", "warm_cpu")
    }
    for _ in range(rounds):
        times["tags"].append(timed(lambda: overlap(seeker, many)))
        times["text"].append(timed(lambda: text_pass(seeker, many), times["text_cpu"]))
        bm25.document.cache_clear()
        times["cold"].append(timed(lambda: rank(seeker, many, now=NOW), times["cold_cpu"]))
        times["warm"].append(timed(lambda: rank(seeker, many, now=NOW), times["warm_cpu"]))
    if embedder is not None:
        # Cold: every posting embedded (once; the embedder keeps them). Warm: none.
        times["semantic_cold"] = [timed(lambda: rank(seeker, many, now=NOW, similarity=embedder))]
        times["semantic_warm"] = [
            timed(lambda: rank(seeker, many, now=NOW, similarity=embedder)) for _ in range(rounds)
        ]
    best = {k: min(v) * 1000 for k, v in times.items()}
    return {
        "projects": n,
        "rounds": rounds,
        "tag_overlap_ms": best["tags"],
        "text_pass_ms": best["text"],
        "cold_ms": best["cold"],
        "warm_ms": best["warm"],
        "cold_ratio": best["cold"] / best["text"],
        "warm_ratio": best["warm"] / best["text"],
        "text_pass_cpu_ms": best["text_cpu"],
        "cold_cpu_ms": best["cold_cpu"],
        "warm_cpu_ms": best["warm_cpu"],
        **{f"{k}_ms": v for k, v in best.items() if k.startswith("semantic")},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--semantic", action="store_true", help="also the semantic extra (it must be installed)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    embedder = with_semantic() if args.semantic else None
    result = {"quality": quality(), "speed": speed(args.projects, args.rounds, embedder)}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'ranker':32} {'split':8} {'NDCG@5':>7} {'NDCG@10':>8}")
    for name, splits in result["quality"].items():
        for split in ("all", "dev", "heldout"):
            s = splits[split]
            print(f"{name:32} {split:8} {s['ndcg@5']:7.3f} {s['ndcg@10']:8.3f}")
    s = result["speed"]
    print(
        f"\nranking {s['projects']} projects, best of {s['rounds']}: "
        f"cold {s['cold_ms']:.1f} ms ({s['cold_ratio']:.1f}x the raw text pass), "
        f"warm {s['warm_ms']:.1f} ms ({s['warm_ratio']:.1f}x); "
        f"raw text pass {s['text_pass_ms']:.1f} ms, exact tag overlap {s['tag_overlap_ms']:.2f} ms"
    )
    print(
        f"CPU time: cold {s['cold_cpu_ms']:.1f} ms, warm {s['warm_cpu_ms']:.1f} ms, "
        f"raw text pass {s['text_pass_cpu_ms']:.1f} ms"
    )
    if embedder is not None:
        print(
            f"semantic extra: cold {s['semantic_cold_ms']:.0f} ms (every posting embedded), "
            f"warm {s['semantic_warm_ms']:.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
