"""Epoch closing, without I/O: which ended epochs of the projects this node owns are due.

Epoch n of a project with epoch length L covers Unix time [n L, (n + 1) L) and closes GRACE
seconds after it ends, so that acceptances dated up to the clock-skew limit before its end have
arrived. A closed epoch with accepted contributions and no epoch root published by this node on
this chain is due for anchoring. Projects with no epoch length close their epochs only on the
owner's command. The functions take `now` (wall time) and the store's facts, and return what
is due and when the next epoch closes, so the service can sleep until then.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from protocol.validate import MAX_SKEW

# An epoch of a project with an epoch length closes this long after it ends.
GRACE = MAX_SKEW
# The longest the service sleeps between two looks (new acceptances may arrive any time).
CLOSE_INTERVAL = 30.0


@dataclass(frozen=True, slots=True)
class Owned:
    """A project this node owns, as epoch closing sees it.

    Attributes:
        project_id: the project.
        epoch_length: seconds per epoch; 0 means epochs close only on the owner's command.
        accepted: the epochs with accepted contributions, ascending (at least those due).
        published: those of them with an epoch root this node published on this chain.
    """

    project_id: bytes
    epoch_length: int
    accepted: Sequence[int]
    published: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Plan:
    """What epoch closing decided at one time.

    Attributes:
        due: the (project, epoch) pairs to anchor now, in project then epoch order.
        wake: the time at which the next known epoch becomes due, or None if none will.
    """

    due: tuple[tuple[bytes, int], ...]
    wake: float | None


def last_due(epoch_length: int, now: float, grace: float = GRACE) -> int:
    """Returns the last epoch of a project with `epoch_length` that has closed at `now`, or -1.

    Epoch n covers [n L, (n + 1) L) and closes `grace` seconds after it ends.
    """
    if epoch_length <= 0:
        return -1
    return max(-1, math.floor((now - grace) / epoch_length) - 1)


def closes_at(epoch_length: int, epoch: int, grace: float = GRACE) -> float:
    """Returns when an epoch closes: its end plus the grace period."""
    return (epoch + 1) * epoch_length + grace


def due(projects: Iterable[Owned], now: float, grace: float = GRACE) -> Plan:
    """Returns the ended epochs, not yet published, that are to be anchored at `now`.

    An epoch is due once `closes_at` has passed; projects without an epoch length never are.
    """
    found: list[tuple[bytes, int]] = []
    wake: float | None = None
    for project in projects:
        if project.epoch_length <= 0:
            continue
        for epoch in sorted(project.accepted):
            at = closes_at(project.epoch_length, epoch, grace)
            if at > now:
                wake = at if wake is None else min(wake, at)
                break
            if epoch not in project.published:
                found.append((project.project_id, epoch))
    return Plan(tuple(found), wake)
