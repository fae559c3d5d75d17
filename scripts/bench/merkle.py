#!/usr/bin/env python3
"""Benchmarks protocol.merkle against the raw cost of the keccak calls a build cannot avoid.

A build of n leaves makes 3n - 1 keccak calls: n on 96-byte leaf encodings, n on their 32-byte
digests, and n - 1 on 64-byte pairs. The baseline makes exactly those calls on inputs of the
same sizes, in the same run, alternating with the build; the ratio build / baseline is the
overhead of everything else (encoding, sorting, duplicate checks, list handling).

Run: .venv/bin/python scripts/bench/merkle.py [--leaves N] [--samples N] [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import random
import resource
import time
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import sha3  # type: ignore[import-untyped]

from protocol.merkle import Leaf, MerkleTree, verify


def leaves(n: int) -> list[Leaf]:
    """Returns n distinct leaves, the same ones every run."""
    out = []
    for i in range(n):
        seed = hashlib.sha256(i.to_bytes(8, "big")).digest()
        out.append(Leaf(seed, seed[:20], int.from_bytes(seed[20:28], "big")))
    return out


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Returns the wall time and the thread CPU time of one call of fn.

    The cyclic collector stays on, as in a node: a build allocates bytes, which it does not
    track, so it barely runs (turning it off changes nothing measurable). The CPU time is the
    figure to read on a shared machine: other processes stretch the wall time, not it.
    """
    gc.collect()
    start, cpu = time.perf_counter(), time.thread_time()
    result = fn()
    elapsed, cpu = time.perf_counter() - start, time.thread_time() - cpu
    # Freeing the result is not part of the work, so it happens after the clock stops.
    del result
    return elapsed, cpu


def baseline(sample: list[Leaf]) -> Callable[[], object]:
    """Returns a function making the keccak calls of a build of `sample`, and nothing else."""
    k = sha3.keccak_256
    encoded = [leaf.encode() for leaf in sample]
    digests = [k(x).digest() for x in encoded]
    pairs = [a + b for a, b in pairwise(digests)]

    def run() -> object:
        a = [k(x).digest() for x in encoded]
        b = [k(x).digest() for x in digests]
        c = [k(x).digest() for x in pairs]
        return a, b, c

    return run


def batch_baseline(sample: list[Leaf]) -> Callable[[], object] | None:
    """Returns a function making the same keccak calls in protocol._keccak's batches, with nothing
    else (no encoding, no sort, no pair ordering), or None where the extension did not compile.

    A stricter baseline than `baseline`: the permutations alone, without a Python call each.
    """
    try:
        from protocol import _keccak
    except ImportError:
        return None
    encoded = b"".join(leaf.encode() for leaf in sample)
    digests = _keccak.hash_each(encoded, 96)
    pairs = digests[: 64 * ((len(sample) - 1) // 2)]
    rest = digests[: 64 * (len(sample) - 1 - (len(sample) - 1) // 2)]

    def run() -> object:
        return (
            _keccak.hash_each(encoded, 96),
            _keccak.hash_each(digests, 32),
            _keccak.hash_each(pairs, 64),
            _keccak.hash_each(rest, 64),
        )

    return run


def rss() -> float:
    """Returns the peak resident set size of this process so far, in MiB."""
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(n: int, samples: int, rounds: int) -> dict[str, Any]:
    start = time.perf_counter()
    data = leaves(n)
    make_leaves = time.perf_counter() - start
    rss_leaves = rss()
    # One untimed build first: the growth of the peak RSS over it is what a build needs on top
    # of its leaves, and afterwards no timed run pays for growing the heap.
    MerkleTree.build(data)
    rss_build = rss()

    raw_fn = baseline(data)
    # Baseline and build alternate, so that both see the same machine load; the best of each
    # counts.
    raw, build = float("inf"), float("inf")
    raw_cpu, build_cpu = float("inf"), float("inf")
    for _ in range(rounds):
        wall, cpu = timed(raw_fn)
        raw, raw_cpu = min(raw, wall), min(raw_cpu, cpu)
        wall, cpu = timed(lambda: MerkleTree.build(data))
        build, build_cpu = min(build, wall), min(build_cpu, cpu)
    del raw_fn
    batch_fn = batch_baseline(data)
    batch = min(timed(batch_fn)[1] for _ in range(rounds)) if batch_fn else None
    del batch_fn

    tree = MerkleTree.build(data)
    rng = random.Random(1)
    picked = [data[rng.randrange(n)] for _ in range(samples)]
    ids = [leaf.contribution_id for leaf in picked]
    tree.index_of(ids[0])  # Builds the id index once, as the first lookup of a real node would.
    prove = min(timed(lambda: [tree.proof(i) for i in ids])[0] for _ in range(3))
    proofs = [tree.proof(i) for i in ids]
    root = tree.root
    pairs = list(zip(picked, proofs, strict=True))
    check = min(timed(lambda: [verify(root, leaf, p) for leaf, p in pairs])[0] for _ in range(3))
    assert all(verify(root, leaf, p) for leaf, p in pairs)

    return {
        "leaves": n,
        "keccak_calls": 3 * n - 1,
        "rounds": rounds,
        "make_leaves_s": round(make_leaves, 3),
        "baseline_keccak_s": round(raw, 3),
        "build_s": round(build, 3),
        "ratio": round(build / raw, 3),
        "baseline_keccak_cpu_s": round(raw_cpu, 3),
        "build_cpu_s": round(build_cpu, 3),
        "cpu_ratio": round(build_cpu / raw_cpu, 3),
        "batch_keccak_cpu_s": None if batch is None else round(batch, 3),
        "cpu_ratio_to_batch": None if batch is None else round(build_cpu / batch, 3),
        "proof_samples": samples,
        "proofs_per_s": round(samples / prove),
        "verifies_per_s": round(samples / check),
        "rss_leaves_mib": round(rss_leaves, 1),
        "rss_build_extra_mib": round(rss_build - rss_leaves, 1),
        "peak_rss_mib": round(rss(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000, help="tree size")
    parser.add_argument("--samples", type=int, default=20_000, help="proofs to time")
    parser.add_argument("--rounds", type=int, default=3, help="timed baseline/build pairs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = bench(args.leaves, args.samples, args.rounds)
    if args.json:
        print(json.dumps(result))
        return
    rows = [
        ("leaves", f"{result['leaves']:,}"),
        ("keccak calls", f"{result['keccak_calls']:,}"),
        ("generate leaves", f"{result['make_leaves_s']:.3f} s (ids, Leaf objects; not timed)"),
        ("raw keccak baseline", f"{result['baseline_keccak_s']:.3f} s"),
        ("build", f"{result['build_s']:.3f} s"),
        ("build / baseline", f"{result['ratio']:.2f}x (best of {result['rounds']} each)"),
        ("the same in thread CPU time", f"{result['cpu_ratio']:.2f}x"),
        (
            "the same keccak calls in C batches",
            f"{result['batch_keccak_cpu_s']} s CPU; build / it {result['cpu_ratio_to_batch']}x",
        ),
        ("proofs generated", f"{result['proofs_per_s']:,} /s"),
        ("proofs verified", f"{result['verifies_per_s']:,} /s"),
        ("RSS of the leaves", f"{result['rss_leaves_mib']:.0f} MiB"),
        ("peak RSS added by a build", f"{result['rss_build_extra_mib']:.0f} MiB"),
        ("peak RSS", f"{result['peak_rss_mib']:.0f} MiB (with the baseline's inputs)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
