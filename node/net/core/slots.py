"""Connection slots: which connections a node past its limit keeps, decided without I/O.

Theory of operation. A node takes `limit` connections (`network.max_connections`) and holds
`spare` more for a while: py-libp2p's own ceiling is set to `limit + spare` (node/net/host.py),
and refuses a connection beyond it before the Noise handshake, with nothing but a closed socket.
A connection taken in a spare slot is a full one, so a newcomer whose only known peer is this
node still gets what it came for, the peer exchange, and with it the rest of the network. Then
`Slots` trims the surplus, as go-libp2p's connection manager does past its high watermark and
devp2p does with "too many peers": `tick(now)` returns a `HangUp` for each connection too many.

Rules:
- A connection is *settled* once GRACE seconds have passed since it opened, or LINGER seconds
  after this node answered its peer exchange (what a newcomer came for; the linger lets the
  answer reach it). Only settled connections are trimmed: a new one gets its chance to prove
  useful, and a flood of dialers cannot make the node drop the peers it has for newer ones.
- While more than `limit` peers are connected, the least useful ones are hung up, as many as
  there are too many, each once it has settled: never fewer than `limit` remain, never a
  protected peer (a bootstrap node of the operator's), and never a more useful peer in the
  place of a less useful one still in its grace period (else a flood of dialers would push
  out the node's peers one grace period at a time).
- Usefulness, most useful first: protected; sent records that this node stored within
  USEFUL_WINDOW; holds a relay reservation here (its relayed address goes through this node;
  go-libp2p's relay tags such peers in its connection manager for the same reason, and not
  with protection: whoever asks gets a reservation, and they are bounded on their own); in one
  of its GossipSub meshes; dialed by this node (it chose them); known before this connection
  (reached before); connected longest.
  So a newcomer is not trimmed for being newest: an old peer that does nothing for the node
  goes before a new one that brings records.
- A peer hung up on is no longer counted: it is on its way out, and is not hung up on twice.

Times are the `now` the caller passes, on one clock (node/net/peers.py passes wall time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from node.net.core.peers import HangUp

# Seconds a new connection is kept before it may be trimmed (Kubo's connection manager and
# py-libp2p's use 20 s as well): `network.grace_period`.
GRACE = 20.0
# Seconds after this node answered a connection's peer exchange before it may be trimmed.
LINGER = 1.0
# Records stored from a peer within this many seconds count as its recent traffic.
USEFUL_WINDOW = 600.0


@dataclass(slots=True)
class Slot:
    """One connected peer, as the trimming sees it.

    Attributes:
        peer_id: the peer.
        opened: when the connection opened.
        outbound: this node dialed it.
        protected: never trimmed (a bootstrap node of the operator's).
        known: this node had reached the peer before this connection.
        served: when this node last answered its peer exchange (0: never).
        useful: when records it sent were last stored (0: never).
        reserved: it holds a relay reservation on this node.
    """

    peer_id: str
    opened: float
    outbound: bool = False
    protected: bool = False
    known: bool = False
    served: float = 0.0
    useful: float = 0.0
    reserved: bool = False

    def settles(self, grace: float) -> float:
        """Returns when this connection may be trimmed."""
        after_exchange = self.served + LINGER if self.served else float("inf")
        return min(self.opened + grace, after_exchange)


@dataclass
class Slots:
    """The node's connections and the trimming of the surplus; see the module's theory.

    Args:
        limit: connected peers the node keeps (`network.max_connections`).
        grace: seconds a new connection is kept before it may be trimmed.
    """

    limit: int
    grace: float = GRACE
    _open: dict[str, Slot] = field(default_factory=dict, init=False)
    _leaving: set[str] = field(default_factory=set, init=False)
    # Connections hung up on since the start (what status shows).
    trimmed: int = field(default=0, init=False)

    # Inputs.

    def opened(
        self,
        peer_id: str,
        now: float,
        *,
        outbound: bool = False,
        protected: bool = False,
        known: bool = False,
    ) -> None:
        """A connection with `peer_id` opened (a second one with it changes nothing)."""
        if peer_id not in self._open:
            self._open[peer_id] = Slot(peer_id, now, outbound, protected, known)

    def closed(self, peer_id: str) -> None:
        """Every connection with `peer_id` closed."""
        self._open.pop(peer_id, None)
        self._leaving.discard(peer_id)

    def served(self, peer_id: str, now: float) -> None:
        """This node answered `peer_id`'s peer exchange."""
        slot = self._open.get(peer_id)
        if slot is not None:
            slot.served = now

    def useful(self, peer_id: str, now: float) -> None:
        """Records `peer_id` sent were stored."""
        slot = self._open.get(peer_id)
        if slot is not None:
            slot.useful = now

    def reserved(self, peer_id: str) -> None:
        """`peer_id` was granted a relay reservation on this node."""
        slot = self._open.get(peer_id)
        if slot is not None:
            slot.reserved = True

    def tick(self, now: float, mesh: Iterable[str] = ()) -> list[HangUp]:
        """Returns hang-ups for the surplus that has settled, least useful first.

        Args:
            now: the time.
            mesh: the peers in any of the node's GossipSub meshes now.
        """
        surplus = self.count() - self.limit
        if surplus <= 0:
            return []
        in_mesh = set(mesh)
        candidates = [
            s for s in self._open.values() if s.peer_id not in self._leaving and not s.protected
        ]
        candidates.sort(key=lambda s: self._worth(s, now, in_mesh))
        out = []
        # The least useful go, each once it has settled; a more useful peer is never taken in
        # the place of one still in its grace period.
        for slot in candidates[:surplus]:
            if slot.settles(self.grace) <= now:
                self._leaving.add(slot.peer_id)
                self.trimmed += 1
                out.append(HangUp(slot.peer_id))
        return out

    def next_wakeup(self, now: float) -> float:
        """Returns when `tick` may have work: the next surplus connection to settle."""
        if self.count() <= self.limit:
            return float("inf")
        # The least useful may change by then (a mesh, records): every settling is a wake-up.
        pending = [
            settles
            for s in self._open.values()
            if s.peer_id not in self._leaving
            and not s.protected
            and (settles := s.settles(self.grace)) > now
        ]
        return min(pending, default=float("inf"))

    # Queries.

    def count(self) -> int:
        """Connected peers not on their way out."""
        return len(self._open) - len(self._leaving)

    def get(self, peer_id: str) -> Slot | None:
        return self._open.get(peer_id)

    def missing(self, connected: Iterable[str]) -> list[str]:
        """Returns the peers counted here that are not in `connected` (closed unseen)."""
        return list(self._open.keys() - set(connected))

    def _worth(
        self, slot: Slot, now: float, mesh: set[str]
    ) -> tuple[bool, bool, bool, bool, bool, bool, float]:
        """The sort key of `slot`: lower is trimmed first."""
        return (
            slot.protected,
            bool(slot.useful) and now - slot.useful < USEFUL_WINDOW,
            slot.reserved,
            slot.peer_id in mesh,
            slot.outbound,
            slot.known,
            -slot.opened,
        )
