"""Measured quality: graded judgments, NDCG, and the exact-tag-overlap baseline.

The evaluation set (tests/data/match/, with its README on how it was judged) is parsed JSON
here: `load` turns it into the ranker's values, so the benchmark (scripts/bench/match.py) and
the tests rank exactly what a node would.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from node.match.model import Activity, Epoch, Opening, Seeker, Work
from node.match.pay import DAY, ETHER

# The clock of the evaluation set: `days_ago` counts back from it.
NOW = 1_767_225_600


@dataclass(frozen=True, slots=True)
class Case:
    """One judged profile: the seeker, its split and its grades by project key."""

    key: str
    split: str
    seeker: Seeker
    grades: Mapping[str, int]


def key_id(key: str) -> bytes:
    """Returns the 32-byte id that stands for a project key of the set."""
    return hashlib.sha256(b"workwork eval " + key.encode()).digest()


def _epoch(number: int, data: Mapping[str, Any]) -> Epoch:
    return Epoch(
        number,
        int(data["total_weight"]),
        int(data["funded_eth"] * ETHER),
        int(data["paid_eth"] * ETHER),
    )


def load(projects: Sequence[Mapping[str, Any]], profiles: Sequence[Mapping[str, Any]]) -> tuple[
    list[Opening], list[Case]
]:  # fmt: skip
    """Returns the set's projects as openings and its profiles as cases."""
    owner = key_id("owner")
    openings = []
    for p in projects:
        act = p["activity"]
        activity = Activity(
            act["contributions"],
            act["accepted"],
            act["waiting"],
            act["contributors"],
            NOW - act["days_ago"] * DAY,
        )
        openings.append(
            Opening(
                key_id(p["key"]),
                owner,
                p["title"],
                p["description"],
                tuple(p["skills"]),
                activity,
                tuple(_epoch(i, e) for i, e in enumerate(p["epochs"])),
            )
        )
    cases = []
    for u in profiles:
        work = tuple(
            Work(
                key_id(f"{u['key']}-{i}"),
                w["title"],
                tuple(w["skills"]),
                w["weight"],
                w["anchored"],
            )
            for i, w in enumerate(u["work"])
        )
        seeker = Seeker(
            key_id(u["key"]),
            tuple(u["skills"]),
            tuple(u["interests"]),
            u["about"] or "",
            u["rate"],
            work,
        )
        cases.append(Case(u["key"], u["split"], seeker, dict(u["relevant"])))
    return openings, cases


def ndcg(ranked: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    """Returns NDCG@k of a ranking of keys (gain 2^grade - 1, log2 discount)."""

    def dcg(gains: Sequence[int]) -> float:
        return sum(float(2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains[:k]))

    best = dcg(sorted(grades.values(), reverse=True))
    if best == 0:
        return 0.0
    return dcg([grades.get(key, 0) for key in ranked]) / best


def overlap(seeker: Seeker, openings: Sequence[Opening]) -> list[Opening]:
    """The baseline: projects by how many of their skill tags equal one of the seeker's skill or
    interest tags, exactly (then by id, as a plain sort would leave them)."""
    mine = {t.lower() for t in (*seeker.skills, *seeker.interests)}
    return sorted(openings, key=lambda o: (-len(mine & set(o.skills)), o.project_id))


Ranker = Callable[[Seeker, Sequence[Opening]], Sequence[bytes]]


def evaluate(
    ranker: Ranker, openings: Sequence[Opening], cases: Sequence[Case], keys: Mapping[bytes, str]
) -> dict[str, dict[str, float]]:
    """Returns mean NDCG@5 and @10 of a ranker, over all cases and by split."""
    scores: dict[str, list[tuple[float, float]]] = {}
    for case in cases:
        ranked = [keys[pid] for pid in ranker(case.seeker, openings)]
        pair = (ndcg(ranked, case.grades, 5), ndcg(ranked, case.grades, 10))
        scores.setdefault("all", []).append(pair)
        scores.setdefault(case.split, []).append(pair)
    return {
        split: {
            "ndcg@5": sum(p[0] for p in pairs) / len(pairs),
            "ndcg@10": sum(p[1] for p in pairs) / len(pairs),
            "profiles": float(len(pairs)),
        }
        for split, pairs in scores.items()
    }
