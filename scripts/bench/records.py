#!/usr/bin/env python3
"""Benchmark: decode + verify of signed records, against raw PyNaCl verification.

Both loops run over the same records in the same process, alternating, best of --rounds: the
baseline is libsodium's crypto_sign_open on exactly the bytes each record's signature covers, so
the ratio says how much our decoding, canonical checks, field validation and hashing add to the
signature check itself (target: decode+verify >= 0.8 x raw verify).

Run: .venv/bin/python scripts/bench/records.py [--records N] [--rounds R] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

from nacl.bindings import crypto_sign_open
from nacl.signing import SigningKey

from protocol import (
    SIGNING_DOMAIN,
    Acceptance,
    Contribution,
    Profile,
    Project,
    Record,
    decode,
    encode_body,
    project_id,
    sign,
)

T0 = 1_767_225_600


def records(count: int) -> list[Record]:
    """A realistic mix: mostly contributions and acceptances, some postings and profiles."""
    keys = [SigningKey(hashlib.sha256(b"bench %d" % i).digest()) for i in range(16)]
    owner = keys[0]
    pid = project_id(bytes(owner.verify_key), "bench")
    out: list[Record] = []
    for i in range(count):
        key = keys[i % len(keys)]
        payout = hashlib.sha256(b"payout %d" % i).digest()[:20]
        match i % 10:
            case 0:
                body: object = Profile(
                    T0 + i,
                    i,
                    f"Contributor {i}",
                    "human",
                    ("python", "rust"),
                    ("p2p",),
                    payout,
                    "50 USD/h",
                    "",
                )
            case 1:
                body = Project(
                    T0 + i,
                    i,
                    "bench",
                    "A benchmark project",
                    "Make things faster.\n" * 10,
                    ("python",),
                    payout,
                    86_400,
                    "open",
                    (),
                )
            case 2 | 3 | 4 | 5 | 6:
                body = Contribution(
                    T0 + i,
                    pid,
                    f"Contribution number {i}: fixed a bug.",
                    f"https://example.org/pr/{i}",
                    hashlib.sha256(b"%d" % i).digest(),
                    30,
                    payout,
                )
            case _:
                body = Acceptance(
                    T0 + i, 0, pid, hashlib.sha256(b"c%d" % i).digest(), i // 1000, 10
                )
        out.append(sign(body, key))  # type: ignore[arg-type]
    return out


def bench(count: int, rounds: int) -> dict[str, float]:
    sample = records(count)
    raws = [r.raw for r in sample]
    signed = [(r.signature + SIGNING_DOMAIN + encode_body(r.body), r.author) for r in sample]

    def raw_verify() -> None:
        for message, author in signed:
            crypto_sign_open(message, author)

    def decode_verify() -> None:
        for raw in raws:
            decode(raw)

    best = {"raw": float("inf"), "ours": float("inf")}
    for _ in range(rounds):
        for name, fn in (("raw", raw_verify), ("ours", decode_verify)):
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {
        "records": count,
        "mean_record_bytes": sum(map(len, raws)) / count,
        "raw_verify_per_s": count / best["raw"],
        "decode_verify_per_s": count / best["ours"],
        "ratio": best["raw"] / best["ours"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = bench(args.records, args.rounds)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"records                 {result['records']:>10,} (mean {result['mean_record_bytes']:.0f} B)"
    )
    print(f"raw Ed25519 verify      {result['raw_verify_per_s']:>10,.0f} /s")
    print(f"decode + verify         {result['decode_verify_per_s']:>10,.0f} /s")
    print(f"ratio (target >= 0.8)   {result['ratio']:>10.2f}")


if __name__ == "__main__":
    main()
