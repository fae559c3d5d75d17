"""What the ranker takes and gives: plain values, built by the caller from records and figures.

The ranker reads no store and asks no chain: node/api/match.py gathers these from the node's
store and chain, the benchmark and the tests from files, and all of them rank the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Work:
    """One accepted contribution of the seeker: proven work.

    Attributes:
        project_id: the project it was accepted in.
        title: that project's title.
        skills: that project's skill tags.
        weight: the weight of its acceptance in force (> 0).
        anchored: whether its epoch's root is anchored (the owner published an epoch root):
            work that is on chain counts most.
    """

    project_id: bytes
    title: str
    skills: tuple[str, ...]
    weight: int
    anchored: bool


@dataclass(frozen=True, slots=True)
class Seeker:
    """The person or agent projects are ranked for: a profile and its accepted work.

    Attributes:
        author: the profile's public key; their own projects are never ranked.
        skills: declared skill tags.
        interests: interest tags.
        about: the profile's free text about the seeker ("" when it has none).
        rate: the profile's rate, free text; compared with pay when it reads as wei per unit of
            weight (`node.match.pay.parse_rate`).
        work: accepted contributions.
    """

    author: bytes
    skills: tuple[str, ...] = ()
    interests: tuple[str, ...] = ()
    about: str = ""
    rate: str = ""
    work: tuple[Work, ...] = ()


@dataclass(frozen=True, slots=True)
class Activity:
    """What this node knows of a project's work.

    Attributes:
        contributions: contributions stored here.
        accepted: those with an acceptance in force of weight > 0.
        waiting: those without an acceptance yet.
        contributors: distinct authors of the contributions.
        last: the time of the newest record of the project (revision, contribution or
            acceptance), in seconds since 1970.
        followed: whether this node receives the project's work shard; if not, zero counts
            mean "not known here", not "none".
    """

    contributions: int = 0
    accepted: int = 0
    waiting: int = 0
    contributors: int = 0
    last: int = 0
    followed: bool = True


@dataclass(frozen=True, slots=True)
class Epoch:
    """One anchored epoch of a project, with its pool as the chain holds it.

    Attributes:
        epoch: the epoch number.
        total_weight: the accepted weight anchored in it.
        funded: wei funded into it so far; None when the chain was not asked or did not answer.
        paid: wei claimed from it so far; None as for `funded`.
    """

    epoch: int
    total_weight: int
    funded: int | None = None
    paid: int | None = None


@dataclass(frozen=True, slots=True)
class Opening:
    """An open project as the ranker sees it: its posting and the figures the node knows.

    Attributes:
        project_id: the project's id.
        author: the owner's public key.
        title, description, skills: the posting.
        activity: its work as far as this node knows it.
        epochs: its anchored epochs.
        pool: wei that a project pool holds for work not yet anchored, once pools exist: the
            seam for them. None means no pool is known; the paid component then reads the
            anchored epochs alone.
    """

    project_id: bytes
    author: bytes
    title: str
    description: str = ""
    skills: tuple[str, ...] = ()
    activity: Activity = Activity()
    epochs: tuple[Epoch, ...] = ()
    pool: int | None = None


@dataclass(frozen=True, slots=True)
class Component:
    """One Ikigai component of a match: a score in [0, 1] and why, for a person to read."""

    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class Match:
    """One ranked project: its overall score and the four components it comes from."""

    project_id: bytes
    title: str
    score: float
    love: Component
    good_at: Component
    needs: Component
    paid: Component

    def to_json(self) -> dict[str, object]:
        """Returns the match as the API's JSON (ids hex, scores rounded for reading)."""
        return {
            "project_id": self.project_id.hex(),
            "title": self.title,
            "score": round(self.score, 4),
            **{
                name: {"score": round(part.score, 4), "reason": part.reason}
                for name, part in (
                    ("love", self.love),
                    ("good_at", self.good_at),
                    ("needs", self.needs),
                    ("paid", self.paid),
                )
            },
        }


class Similarity(Protocol):
    """What an optional semantic extra gives the ranker: how close texts are in meaning."""

    def similarity(self, query: str, texts: Sequence[str]) -> list[float]:
        """Returns the cosine similarity of `query` with each of `texts`, in [-1, 1]."""
        ...
