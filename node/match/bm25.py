"""BM25F over a project's fields: title, skills and description, in words and in concepts.

A project becomes a `Document`: for every term, a pseudo term frequency that adds up its
fields, each weighted (a word in the title or the skill list says more than one in the
description) and normalized by the field's length against a typical length. The typical lengths
are fixed rather than averaged over the projects of a request, so that a document depends on
its own text only: it is computed once per posting and kept (`document` is memoized), which is
what makes ranking a thousand projects cheap.

Terms are concepts, written `@<concept>` (from `node.match.terms`, with implied concepts at
their strength), and word stems as they are (a stem never holds an `@`). A query is a mapping of terms to weights; `score` is BM25's saturating sum with the
inverse document frequency of each term over the projects being ranked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from node.match.terms import Analysis, analyze

K1 = 1.2
# Field weights, and how much a field's length matters (BM25's b) with its typical length.
FIELDS = {
    "title": (3.0, 0.3, 6.0),
    "skills": (3.0, 0.2, 3.0),
    "description": (1.0, 0.75, 60.0),
}
# The mark of a concept among the terms: words are their bare stems, which never hold it.
CONCEPT = "@"
# A concept carries meaning that a bare word may not ("go", "crop"); words still catch what the
# table does not know ("beekeeping").
WORD_SHARE = 0.4


@dataclass(frozen=True, slots=True)
class Document:
    """A project's terms: term -> pseudo frequency, and what each field names.

    Attributes:
        tf: term -> the fields' weighted, length-normalized frequencies added up.
        fields: field -> its analysis, for requirements and reasons.
    """

    tf: Mapping[str, float]
    fields: Mapping[str, Analysis]


def _terms(found: Analysis) -> dict[str, float]:
    out = {s: float(n) for s, n in found.words.items()}
    for concept, strength in found.concepts.items():
        out[CONCEPT + concept] = float(found.named.get(concept, 0)) or strength
    return out


@lru_cache(maxsize=8192)
def document(title: str, skills: tuple[str, ...], description: str) -> Document:
    """Returns a posting's document (memoized: the same text gives the same document)."""
    parts = {
        "title": analyze(title),
        "skills": analyze("", skills),
        "description": analyze(description),
    }
    tf: dict[str, float] = {}
    for name, found in parts.items():
        weight, b, typical = FIELDS[name]
        norm = 1.0 - b + b * (max(found.length, 1) / typical)
        for term, count in _terms(found).items():
            tf[term] = tf.get(term, 0.0) + weight * count / norm
    return Document(tf, parts)


def query(found: Analysis, scale: float = 1.0) -> dict[str, float]:
    """Returns the query terms of an analysis: concepts at their strength, words at a share."""
    out = dict.fromkeys(found.words, WORD_SHARE * scale)
    for concept, strength in found.concepts.items():
        out[CONCEPT + concept] = strength * scale
    return out


def idf(terms: Iterable[str], documents: list[Document]) -> dict[str, float]:
    """Returns BM25's inverse document frequency of each term over `documents`."""
    wanted = set(terms)
    counts = dict.fromkeys(wanted, 0)
    for doc in documents:
        tf = doc.tf
        for term in wanted:
            if term in tf:
                counts[term] += 1
    n = len(documents)
    return {t: math.log(1.0 + (n - df + 0.5) / (df + 0.5)) for t, df in counts.items()}


def score(q: Mapping[str, float], doc: Document, weights: Mapping[str, float]) -> float:
    """Returns the BM25F score of a document for a query, given the terms' idf."""
    tf = doc.tf
    total = 0.0
    for term, qw in q.items():
        f = tf.get(term)
        if f:
            total += qw * weights[term] * f / (K1 + f)
    return total


def contributions(
    q: Mapping[str, float], doc: Document, weights: Mapping[str, float]
) -> list[tuple[float, str]]:
    """Returns each matching term's share of the score, largest first (for reasons)."""
    tf = doc.tf
    found = [
        (qw * weights[term] * tf[term] / (K1 + tf[term]), term)
        for term, qw in q.items()
        if tf.get(term)
    ]
    return sorted(found, reverse=True)


def ideal(q: Mapping[str, float], weights: Mapping[str, float], top: int = 3) -> float:
    """Returns what a project naming the query's `top` strongest terms once in its skill list
    would score: the scale that turns a score into a share in [0, 1]."""
    weight, b, typical = FIELDS["skills"]
    f = weight / (1.0 - b + b * (1 / typical))
    best = sorted((qw * weights[t] for t, qw in q.items()), reverse=True)[:top]
    return sum(best) * f / (K1 + f)
