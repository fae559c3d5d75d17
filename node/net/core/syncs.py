"""The sync plan: when to sync with which peer, decided without I/O.

Theory of operation. `SyncPlan` takes what happened (a peer connected, identify said whether it
speaks our sync protocol, a sync finished well or badly, the peer left, the followed topics
changed) and, asked with `due(now)`, says which syncs to start; node/net/sync.py runs them and
reports how each ended. Time is only the `now` it is given (trio's clock in the node).

Rules:
- A new connection is synced as soon as identify says the peer speaks our protocol, or after
  IDENTIFY_WAIT if identify has not said by then. A peer that does not speak it (a libp2p peer
  that is not a WorkWork node) is never synced: it is *foreign*.
- After a sync that ended well, the next one with that peer is due `interval` later.
- After a sync that the peer broke (it hung up, timed out, answered garbage), the peer is tried
  again after a backoff, RETRY_MIN doubling to at most `interval`; and every other connected
  peer not backing off itself is due at once, so that what the broken sync would have brought
  comes from them ("fail over"), rather than at their next periodic round.
- After a sync that our store broke (a full disk), nobody is to blame: the peer is tried again
  after STORE_RETRY, and nobody else is asked meanwhile (they would meet the same disk).
- At most `max_running` syncs run at once; the peers due longest are started first.
- When the followed topics change, every connected peer is due at once (`refresh`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

IDENTIFY_WAIT = 2.0
RETRY_MIN = 1.0
STORE_RETRY = 5.0
MAX_RUNNING = 4


class Outcome(Enum):
    """How a sync with a peer ended."""

    DONE = "done"
    PEER_FAILED = "peer failed"
    STORE_FAILED = "store failed"


@dataclass
class _Peer:
    due: float
    identified: bool = False
    running: bool = False
    failures: int = 0
    # Before this, the peer is not asked again (it broke a sync lately).
    retry_at: float = 0.0


@dataclass
class SyncPlan:
    """Decides when to sync with which connected peer; see the module's theory of operation."""

    interval: float = 30.0
    max_running: int = MAX_RUNNING
    _peers: dict[str, _Peer] = field(default_factory=dict, init=False)
    _foreign: set[str] = field(default_factory=set, init=False)

    # Inputs.

    def connected(self, peer: str, now: float) -> None:
        """A connection with `peer` opened; it is synced once identify answers, or soon anyway."""
        if peer in self._foreign or peer in self._peers:
            return
        self._peers[peer] = _Peer(due=now + IDENTIFY_WAIT)

    def identified(self, peer: str, speaks: bool, now: float) -> None:
        """Identify said whether `peer` speaks our sync protocol."""
        state = self._peers.get(peer)
        if not speaks:
            self._foreign.add(peer)
            self._peers.pop(peer, None)
            return
        if state is not None and not state.identified:
            state.identified = True
            state.due = min(state.due, max(now, state.retry_at))

    def disconnected(self, peer: str) -> None:
        """Every connection with `peer` closed: nothing more is planned with it."""
        self._peers.pop(peer, None)

    def started(self, peer: str) -> None:
        """A sync with `peer` started (the node's own choice, or `due`'s)."""
        state = self._peers.get(peer)
        if state is not None:
            state.running = True

    def finished(self, peer: str, outcome: Outcome, now: float) -> None:
        """A sync with `peer` ended as `outcome` says."""
        state = self._peers.get(peer)
        if state is None:
            return  # it left meanwhile
        state.running = False
        if outcome is Outcome.DONE:
            state.failures = 0
            state.retry_at = 0.0
            state.due = now + self.interval
            return
        if outcome is Outcome.STORE_FAILED:
            state.due = now + min(STORE_RETRY, self.interval)
            return
        state.failures += 1
        backoff = min(self.interval, RETRY_MIN * (1 << min(state.failures - 1, 16)))
        state.retry_at = state.due = now + backoff
        for other, them in self._peers.items():
            if other != peer and not them.running:
                them.due = min(them.due, max(now, them.retry_at))

    def refresh(self, now: float) -> None:
        """The followed topics changed: every connected peer is due now (after its backoff)."""
        for state in self._peers.values():
            state.due = min(state.due, max(now, state.retry_at))

    def due(self, now: float) -> list[str]:
        """Returns the peers to sync with now, and counts them as started."""
        running = sum(1 for s in self._peers.values() if s.running)
        ready = sorted(
            (state.due, peer)
            for peer, state in self._peers.items()
            if not state.running and state.due <= now
        )
        chosen = [peer for _, peer in ready[: max(0, self.max_running - running)]]
        for peer in chosen:
            self._peers[peer].running = True
        return chosen

    def next_wakeup(self, now: float) -> float:
        """Returns when `due` has a sync to start next (inf: none until an input changes that).

        While `max_running` syncs run, nothing can start before one finishes (`finished`).
        """
        if sum(1 for s in self._peers.values() if s.running) >= self.max_running:
            return float("inf")
        return min((s.due for s in self._peers.values() if not s.running), default=float("inf"))

    # Queries.

    def is_foreign(self, peer: str) -> bool:
        return peer in self._foreign

    def is_running(self, peer: str) -> bool:
        state = self._peers.get(peer)
        return state is not None and state.running
