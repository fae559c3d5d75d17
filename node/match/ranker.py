"""The ranker: open projects ordered for one seeker, each with four scored, explained parts.

Theory of operation. Every score is a pure function of the seeker, the openings and `now`:

- love: the seeker's interests and `about` text as a BM25F query against the project's
  title, skills and description, as a share of what a project naming the query's three
  strongest terms would score. An interest tag is chosen on purpose, a sentence of prose
  says things in passing: the about text's terms weigh ABOUT of an interest's, and its words
  (not its concepts) share a fixed weight between them once it has more than ABOUT_WORDS, so
  that a long text does not outweigh what it names. The reason says which of the two matched;
  a term of both is credited to the one that gives it the more weight, an interest on a tie;
- good at: how much of what the project asks for (the concepts its skills name, and those its
  title and description name, at less weight) the seeker covers, and by what evidence: a
  declared skill counts DECLARED, accepted work ACCEPTED and anchored work ANCHORED, each
  growing with the weight accepted; blended with a BM25F match of that evidence as a query;
- needs and paid: see `node.match.pay`.

The overall score is Ikigai's intersection: fit (good at, multiplied up by love; see `_fit`)
times a factor between 0.7 and 1.0 that need and pay set, so that a well-paid project nobody
here can do stays at the bottom and a good fit is lifted, not replaced, by pay and need.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from node.match import bm25, pay
from node.match.model import Component, Match, Opening, Seeker, Similarity, Work
from node.match.terms import IMPLIED, analyze, concept_of_tag

# Evidence of a skill, from a claim to work on chain; weight lifts proven work up to 1.0.
DECLARED = 0.55
ACCEPTED = 0.7
ANCHORED = 0.8
# The weight of the about text's terms against an interest's, and how many distinct words it
# has before they share one weight.
ABOUT = 0.75
ABOUT_WORDS = 24
# How much each field of a project says about what it asks for.
ASKS = {"skills": 1.0, "title": 0.8, "description": 0.5}
# With the semantic extra: the share of meaning in love and in good at's text match, and the
# cosine similarities that map to 0 and to 1.
SEMANTIC = 0.5
LOW = 0.15
HIGH = 0.6
# How fit comes from good at and love (see `_fit`), and how much need and pay move it.
LOVE = 0.6
ALONE = 0.2
NEEDS = 0.15
PAID = 0.15


@dataclass
class _Proof:
    """Accepted work of the seeker behind one concept."""

    count: int = 0
    weight: int = 0
    anchored_weight: int = 0
    projects: set[bytes] = field(default_factory=set)

    def strength(self) -> float:
        base = ANCHORED if self.anchored_weight else ACCEPTED
        # Anchored weight counts twice: it is on chain, not only in the owner's word.
        lift = min(1.0, math.log1p(self.weight + self.anchored_weight) / math.log1p(100))
        return base + (1.0 - base) * lift


@dataclass(frozen=True, slots=True)
class _Origin:
    """Where the evidence of a concept comes from: a skill tag the seeker lists, or their
    accepted work on a concept (which may be narrower: pytorch work is some evidence of
    machine learning)."""

    tag: str | None = None
    proof: str | None = None


@dataclass
class _Profile:
    """A seeker analyzed once per ranking: queries and evidence by concept."""

    love: dict[str, float]
    # Love's terms that come from the about text only, and the concepts it only implies.
    from_about: set[str]
    implied: set[str]
    skills: dict[str, float]
    evidence: dict[str, float]
    origin: dict[str, _Origin]
    proofs: dict[str, _Proof]
    words: dict[str, str]
    rate: int | None


def _love_query(seeker: Seeker) -> tuple[dict[str, float], set[str], set[str], dict[str, str]]:
    """Returns love's query (interests, then the about text at ABOUT), the terms only the
    about text gives, the concepts only implied, and the words behind the stems."""
    tags = analyze("", seeker.interests, surface=True)
    prose = analyze(seeker.about, surface=True)
    love = bm25.query(tags)
    about = bm25.query(prose, ABOUT)
    spread = min(1.0, ABOUT_WORDS / len(prose.words)) if prose.words else 1.0
    for word in prose.words:
        about[word] *= spread
    from_about = set()
    for term, weight in about.items():
        # A concept the interests only imply and the text names is the text's.
        if weight > love.get(term, 0.0):
            from_about.add(term)
            love[term] = weight
    implied = {
        bm25.CONCEPT + c
        for found in (tags, prose)
        for c in found.concepts
        if c not in tags.named and c not in prose.named
    }
    return love, from_about, implied, {**prose.surface, **tags.surface}


def _profile(seeker: Seeker) -> _Profile:
    love, from_about, implied, surface = _love_query(seeker)
    words = dict(surface)
    origin: dict[str, _Origin] = {}
    evidence: dict[str, float] = {}

    def credit(concept: str, strength: float, source: _Origin) -> None:
        if strength > evidence.get(concept, 0.0):
            evidence[concept] = strength
            origin[concept] = source

    for tag in seeker.skills:
        found = analyze("", (tag,), surface=True)
        words.update(found.surface)
        for concept, strength in found.concepts.items():
            credit(concept, DECLARED * strength, _Origin(tag=tag))
    proofs = _proofs(seeker.work)
    for proven, proof in proofs.items():
        for concept, strength in IMPLIED[proven].items():
            credit(concept, proof.strength() * strength, _Origin(proof=proven))
    skills_query = {bm25.CONCEPT + c: e for c, e in evidence.items()}
    for tag in seeker.skills:
        for s in analyze("", (tag,)).words:
            skills_query[s] = bm25.WORD_SHARE * DECLARED
    return _Profile(
        love,
        from_about,
        implied,
        skills_query,
        evidence,
        origin,
        proofs,
        words,
        pay.parse_rate(seeker.rate),
    )


def _proofs(work: Iterable[Work]) -> dict[str, _Proof]:
    """Returns the seeker's accepted work by the concepts of the projects it was done in."""
    proofs: dict[str, _Proof] = {}
    for item in work:
        if item.weight <= 0:
            continue
        # The skills a project asked for say what the work was; its title only if it has none.
        # What those imply is credited from them, at a discount (`_profile`).
        found = analyze("" if item.skills else item.title, item.skills)
        for concept in found.named:
            proof = proofs.setdefault(concept, _Proof())
            proof.count += 1
            proof.weight += item.weight
            proof.anchored_weight += item.weight if item.anchored else 0
            proof.projects.add(item.project_id)
    return proofs


def _asks(doc: bm25.Document) -> dict[str, float]:
    """Returns the concepts a project asks for, each with how clearly it asks."""
    asks: dict[str, float] = {}
    for name, weight in ASKS.items():
        for concept in doc.fields[name].named:
            asks[concept] = max(asks.get(concept, 0.0), weight)
    return asks


def _credit(concept: str, evidence: dict[str, float]) -> tuple[float, str]:
    """Returns the seeker's credit for a concept: direct evidence, or evidence of a concept it
    implies at that concept's discount (asked for pytorch, a machine-learning hand half fits)."""
    best, via = evidence.get(concept, 0.0), concept
    for broader, strength in IMPLIED[concept].items():
        if broader != concept and evidence.get(broader, 0.0) * strength > best:
            best, via = evidence[broader] * strength, broader
    return best, via


def _label(term: str, words: dict[str, str]) -> str:
    if term.startswith(bm25.CONCEPT):
        return term[len(bm25.CONCEPT) :].replace("-", " ")
    return words.get(term, term)


def _close(meaning: float | None) -> float:
    """Returns a cosine similarity of sentence embeddings as a share: unrelated texts sit
    near LOW, paraphrases above HIGH."""
    if meaning is None:
        return 0.0
    return min(1.0, max(0.0, (meaning - LOW) / (HIGH - LOW)))


def _love(
    me: _Profile,
    doc: bm25.Document,
    idf: dict[str, float],
    scale: float,
    meaning: float | None = None,
) -> Component:
    if not me.love:
        return Component(0.0, "love: your profile names no interests and has no about text")
    raw = bm25.score(me.love, doc, idf)
    close = _close(meaning)
    if raw <= 0:
        if close > 0:
            return Component(
                SEMANTIC * close,
                f"love: close in meaning to your interests (similarity {meaning:.2f})",
            )
        return Component(
            0.0, "love: none of your interests or about text is in its title, skills or text"
        )
    score = min(1.0, raw / scale) if scale > 0 else 0.0
    reason = "love: it is about " + _why_love(me, bm25.contributions(me.love, doc, idf))
    if meaning is not None:
        score = (1.0 - SEMANTIC) * score + SEMANTIC * close
        reason += f" (similarity {meaning:.2f})"
    return Component(score, reason)


def _why_love(me: _Profile, found: list[tuple[float, str]]) -> str:
    """Names the three terms that matched most, what the seeker named before what it only
    implies, and says which came from the interests and which from the about text."""
    named = [t for _, t in found if t not in me.implied]
    shown: list[str] = []
    top: dict[bool, list[str]] = {False: [], True: []}
    for term in [*named, *(t for _, t in found)]:
        label = _label(term, me.words)
        # "vision" says nothing once "computer vision" is named.
        if label in shown or any(label in s.split() for s in shown):
            continue
        shown.append(label)
        top[term in me.from_about].append(label)
        if len(shown) == 3:
            break
    said = []
    if top[False]:
        said.append(f"{', '.join(top[False])}, among your interests")
    if top[True]:
        said.append(f"{', '.join(top[True])}, from your about text")
    return ", and ".join(said)


def _good_at(
    me: _Profile,
    doc: bm25.Document,
    idf: dict[str, float],
    scale: float,
    meaning: float | None = None,
) -> Component:
    asks = _asks(doc)
    text = min(1.0, bm25.score(me.skills, doc, idf) / scale) if scale > 0 else 0.0
    if meaning is not None:
        text = (1.0 - SEMANTIC) * text + SEMANTIC * _close(meaning)
    if not asks:
        if text <= 0:
            return Component(0.0, "good at: it names no skill, and its text matches none of yours")
        return Component(text, "good at: it names no skill; its text matches some of yours")
    credits = {c: _credit(c, me.evidence) for c in asks}
    covered = sum(asks[c] * credits[c][0] for c in asks) / sum(asks.values())
    score = 0.65 * covered + 0.35 * text
    shown = sorted(
        ((asks[c] * credit, c, via) for c, (credit, via) in credits.items() if credit > 0),
        reverse=True,
    )[:2]
    if not shown:
        wanted = ", ".join(c.replace("-", " ") for c in sorted(asks, key=lambda c: -asks[c])[:3])
        return Component(score, f"good at: it asks for {wanted}; your profile shows none of it")
    told: set[str] = set()
    said = [_because(me, c, via, told) for _, c, via in shown]
    return Component(score, "good at: " + "; ".join(said))


def _because(me: _Profile, concept: str, via: str, told: set[str]) -> str:
    """Says why the seeker is credited with a concept: their proven work, or their claim.
    Work already described (`told`) is named once."""
    name = concept.replace("-", " ")
    source = me.origin[via]
    if source.proof is not None:
        if source.proof in told:
            return f"it asks for {name}, related to that work"
        told.add(source.proof)
        proof = me.proofs[source.proof]
        anchored = f", {proof.anchored_weight} anchored" if proof.anchored_weight else ""
        said = (
            f"{proof.count} accepted contribution(s) tagged {source.proof.replace('-', ' ')} "
            f"(weight {proof.weight}{anchored}, in {len(proof.projects)} project(s))"
        )
        return said if source.proof == concept else f"it asks for {name}, related to your {said}"
    tag = source.tag or via
    if concept_of_tag(tag) == concept:
        return f"you list {tag}"
    return f"it asks for {name}, related to {tag} that you list"


def _fit(good_at: float, love: float) -> float:
    """Returns how well a project fits, in [0, 1], from the good-at and love scores.

    Being able to do the work comes first, and loving it multiplies that; love alone keeps a
    small weight, so that a project in the seeker's field but beyond their skills is still
    listed, below the ones they can do.
    """
    return (good_at * (1.0 - LOVE + LOVE * love) + ALONE * love) / (1.0 + ALONE)


def _texts(seeker: Seeker, openings: Sequence[Opening]) -> tuple[str, str, list[str]]:
    """Returns what the semantic extra compares: the seeker's interests, their skills and
    work, and each project, as sentences."""
    love = ". ".join(p for p in (", ".join(seeker.interests), seeker.about) if p)
    done = "; ".join(w.title for w in seeker.work if w.weight > 0)
    skills = ". ".join(p for p in (", ".join(seeker.skills), done) if p)
    projects = [f"{o.title}. {', '.join(o.skills)}. {o.description[:1000]}" for o in openings]
    return love, skills, projects


def rank(
    seeker: Seeker,
    openings: Sequence[Opening],
    *,
    now: int,
    limit: int | None = None,
    similarity: Similarity | None = None,
) -> list[Match]:
    """Returns the openings ranked for the seeker, best first, each with its reasons.

    The seeker's own projects are left out. Ties keep the order of higher need and pay, then
    of project id, so the same inputs always give the same list. With `similarity` (the
    semantic extra, `node.match.semantic.Embedder`), love and the text part of good at blend
    in how close the texts are in meaning.
    """
    candidates = [o for o in openings if o.author != seeker.author]
    if not candidates:
        return []
    me = _profile(seeker)
    docs = [bm25.document(o.title, o.skills, o.description) for o in candidates]
    idf = bm25.idf({*me.love, *me.skills}, docs)
    love_scale = bm25.ideal(me.love, idf)
    skill_scale = bm25.ideal(me.skills, idf)
    money = [pay.per_weight(o) for o in candidates]
    best = max((m[0] or 0 for m in money), default=0)
    loving: list[float | None] = [None] * len(candidates)
    able: list[float | None] = [None] * len(candidates)
    if similarity is not None:
        love_text, skill_text, texts = _texts(seeker, candidates)
        if love_text:
            loving = list(similarity.similarity(love_text, texts))
        if skill_text:
            able = list(similarity.similarity(skill_text, texts))
    found = []
    for i, (opening, doc) in enumerate(zip(candidates, docs, strict=True)):
        love = _love(me, doc, idf, love_scale, loving[i])
        good_at = _good_at(me, doc, idf, skill_scale, able[i])
        needs = pay.needs(opening, now, money[i])
        paid = pay.paid(opening, me.rate, seeker.rate, best, money[i])
        fit = _fit(good_at.score, love.score)
        score = fit * (1.0 - NEEDS - PAID + NEEDS * needs.score + PAID * paid.score)
        found.append(Match(opening.project_id, opening.title, score, love, good_at, needs, paid))
    found.sort(key=lambda m: (-m.score, -(m.needs.score + m.paid.score), m.project_id))
    return found if limit is None else found[:limit]
