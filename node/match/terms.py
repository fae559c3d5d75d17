"""Text and tags as terms: words reduced to stems, and the concepts of `synonyms.TABLE`.

Both sides of a match, a profile and a project, go through the same functions, so whatever the
stemmer does to a word it does on both sides: "writers", "writing" and "write" all become
`writ`, and an alias of the table is compared stem by stem.

Two kinds of terms come out of a text (`analyze`):
- words: the stems of the words that are not stopwords, with their counts;
- concepts: the table's concepts named in it, each with a strength: 1.0 where it is named,
  BROADER for each step up the table's `>` links (pytorch -> deep learning -> machine
  learning), the strongest path kept.

Tags are read as the phrase they spell ("machine-learning" is "machine learning"), and also as a
whole against the table's tag-only aliases ("go", "r", "k8s").
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from node.match.synonyms import TABLE

# The credit a concept gets from a narrower one it is implied by, per step up the table.
BROADER = 0.5
# How many steps up a concept's implications are followed.
DEPTH = 2
# The longest alias, in words.
MAX_PHRASE = 4
# How much of a text is read (characters).
MAX_TEXT = 4000

# Words keep +, # and inner dots and slashes: c++, c#, node.js, ci/cd.
_WORD = re.compile(r"[a-z0-9](?:[a-z0-9+#]|[./](?=[a-z0-9]))*[+#]*")
_VOWEL = re.compile(r"[aeiouy]")

_STOPWORDS = """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further get got had has have having he her here hers him his how i if in into is it its
    itself just let me more most my no nor not now of off on once only or other our ours out
    over own per same she should so some such than that the their theirs them then there these
    they this those through to too under until up us very was we were what when where which
    while who whom why will with would you your yours want wants need needs needed looking
    someone somebody anyone help helps new project projects work working works make making
    good great like well way ways use using used one two three many much lot lots etc e.g i.e
    please thanks able will would via within without across every each first next last
"""
STOPWORDS = frozenset(_STOPWORDS.split())


# Words whose stem would merge them with a common word of another meaning ("accounting" with
# "account", "networking" with "network", "docker" with "dock", "state" with "stats"): they stay
# whole on both sides of a match.
_WHOLE = """
    accounting marketing networking engine programming programmer developer docker container
    containers shipping soldering mixing housing state states scripting testing
"""
WHOLE = frozenset(_WHOLE.split())


def stem(word: str) -> str:
    """Returns a word's stem: a light suffix stripper in the manner of Porter's first steps.

    It only has to be consistent, not linguistic: both sides of a match are stemmed alike.
    Words with digits or symbols (c++, k8s, web3) stay as they are, and so do those of WHOLE.
    """
    if len(word) <= 3 or not word.isalpha() or word in WHOLE:
        return word
    w = word
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and _VOWEL.search(w[: -len(suffix)]) and len(w) - len(suffix) >= 3:
            w = _undouble(w[: -len(suffix)])
            break
    if w.endswith("er") and len(w) >= 5 and _VOWEL.search(w[:-2]):
        w = _undouble(w[:-2])
    elif w.endswith("ion") and len(w) >= 7:
        w = w[:-3]
    elif w.endswith("or") and len(w) >= 7:
        w = w[:-2]
    if w.endswith("e") and len(w) >= 4:
        w = w[:-1]
    return w


# The terms of the words seen so far: stems, and "" for stopwords (a plain dict: the hot loop's
# lookup is cheaper than a call). Bounded, so that a flood of new words cannot grow it without
# end; past the bound, new words are stemmed again each time.
_TERMS: dict[str, str] = dict.fromkeys(STOPWORDS, "")
MAX_TERMS = 200_000


def term(word: str) -> str:
    """Returns a word's term: its stem, or "" for a stopword (memoized)."""
    found = _TERMS.get(word)
    if found is None:
        found = stem(word)
        if len(_TERMS) < MAX_TERMS:
            _TERMS[word] = found
    return found


def _undouble(w: str) -> str:
    # "programm" -> "program", "plann" -> "plan"; "ll", "ss" and "zz" stay ("install").
    if len(w) >= 4 and w[-1] == w[-2] and w[-1] not in "lsz" and w[-1].isalpha():
        return w[:-1]
    return w


def words(text: str) -> list[str]:
    """Returns the lowercase words of a text (or of a tag, whose dashes separate words)."""
    return _WORD.findall(text.lower().replace("-", " ").replace("_", " "))


@dataclass(frozen=True, slots=True)
class Concept:
    """One line of the table: a concept, its aliases and the concepts it implies."""

    name: str
    aliases: tuple[str, ...]
    tags: tuple[str, ...]
    broader: tuple[str, ...]


def _parse(table: str) -> dict[str, Concept]:
    concepts: dict[str, Concept] = {}
    for line in table.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        listed, _, up = rest.partition(">")
        entries = [a.strip() for a in listed.split(",") if a.strip()]
        tags = tuple(a[1:] for a in entries if a.startswith("="))
        aliases = tuple(a for a in entries if not a.startswith("="))
        if name not in tags:
            aliases = (name.replace("-", " "), *aliases)
        broader = tuple(b.strip() for b in up.split(",") if b.strip())
        if name in concepts:
            raise ValueError(f"concept {name!r} is listed twice")
        concepts[name] = Concept(name, aliases, (name, *tags), broader)
    for concept in concepts.values():
        for up_name in concept.broader:
            if up_name not in concepts:
                raise ValueError(f"{concept.name} names an unknown broader concept {up_name!r}")
    return concepts


CONCEPTS = _parse(TABLE)


def _phrases(concepts: dict[str, Concept]) -> dict[tuple[str, ...], str]:
    found: dict[tuple[str, ...], str] = {}
    for concept in concepts.values():
        for alias in concept.aliases:
            # Stopwords inside an alias ("ruby on rails") are "" here as in any text.
            key = tuple(term(w) for w in words(alias))
            if any(key) and len(key) <= MAX_PHRASE:
                # The first concept to claim a phrase keeps it: the table lists the more
                # specific meaning where two lines could share one.
                found.setdefault(key, concept.name)
    return found


_PHRASES = _phrases(CONCEPTS)
# The first stem of every alias, with the longest alias it begins.
_STARTS: dict[str, int] = {}
for _key in _PHRASES:
    _STARTS[_key[0]] = max(_STARTS.get(_key[0], 0), len(_key))
_TAGS = {tag: c.name for c in CONCEPTS.values() for tag in c.tags}


def _closure(concepts: dict[str, Concept]) -> dict[str, dict[str, float]]:
    """Returns, for every concept, itself and what it implies, each with its strength."""
    out: dict[str, dict[str, float]] = {}
    for name in concepts:
        reach = {name: 1.0}
        frontier = [name]
        for _ in range(DEPTH):
            step = []
            for current in frontier:
                for up_name in concepts[current].broader:
                    strength = reach[current] * BROADER
                    if strength > reach.get(up_name, 0.0):
                        reach[up_name] = strength
                        step.append(up_name)
            frontier = step
        out[name] = reach
    return out


IMPLIED = _closure(CONCEPTS)


@dataclass(frozen=True, slots=True)
class Analysis:
    """The terms of one text: stems of its words, and its concepts with their strengths.

    Attributes:
        words: stem -> count, stopwords left out.
        named: concept -> how many times the text names it.
        concepts: concept -> strength, the named ones (1.0) and those they imply.
        length: how many words the text has (stopwords left out), for length normalization.
        surface: stem -> the first word that gave it, to name it in a reason (when asked).
    """

    words: Counter[str]
    named: Counter[str]
    concepts: dict[str, float]
    length: int
    surface: dict[str, str]


def concept_of_tag(tag: str) -> str | None:
    """Returns the concept a whole tag names ("k8s" -> "kubernetes"), or None."""
    found = _TAGS.get(tag.lower())
    if found is not None:
        return found
    return _PHRASES.get(tuple(term(w) for w in words(tag)))


def analyze(
    text: str, tags: tuple[str, ...] | list[str] = (), *, surface: bool = False
) -> Analysis:
    """Returns the terms of a text and of a list of tags (tags counted as text too).

    Concepts are found by the longest alias first, left to right, so "search engine
    optimization" is SEO and not "optimization". Only the first MAX_TEXT characters of a text
    are read: terms saturate long before (BM25), and a 16 KiB description must not cost a
    ranking of a thousand projects its time. With `surface`, the analysis also keeps the word
    behind each stem, to name it in a reason (the seeker's side needs it; projects do not).
    """
    named: Counter[str] = Counter()
    stems: list[str] = []
    shown: dict[str, str] = {}
    known = _TERMS.get
    for part, is_tag in [*((t, True) for t in tags), (text[:MAX_TEXT], False)]:
        found = words(part)
        terms = [t if (t := known(w)) is not None else term(w) for w in found]
        whole = _TAGS.get(part.lower()) if is_tag else None
        if whole is not None:
            named[whole] += 1
        else:
            _scan(terms, named)
        if surface:
            for w, t in zip(found, terms, strict=True):
                if t and t not in shown:
                    shown[t] = w
        stems += [t for t in terms if t]
    concepts: dict[str, float] = {}
    for name in named:
        for implied, strength in IMPLIED[name].items():
            if strength > concepts.get(implied, 0.0):
                concepts[implied] = strength
    return Analysis(Counter(stems), named, concepts, len(stems), shown)


def _scan(stems: list[str], named: Counter[str]) -> None:
    """Adds the concepts whose aliases occur in a sequence of stems, longest match first."""
    i, end = 0, len(stems)
    starts, phrases = _STARTS, _PHRASES
    while i < end:
        # Most words begin no alias: one lookup, and on to the next.
        longest = starts.get(stems[i])
        if longest is None:
            i += 1
            continue
        for size in range(min(longest, end - i), 0, -1):
            found = phrases.get(tuple(stems[i : i + size]))
            if found is not None:
                named[found] += 1
                i += size
                break
        else:
            i += 1
