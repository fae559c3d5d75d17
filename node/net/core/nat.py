"""A home node's relay slots and reachability checks, decided without I/O.

Theory of operation. `Slots` keeps the reservations a node holds on relays. node/net/nat.py
asks it which relays to ask (`to_ask(now, relays)`: those whose slot nears its end, then new
ones up to `wanted`), performs the reservations, and reports how each went (`granted`,
`refused`) and which relays left (`lost`). Time is only the `now` it is given (wall time: the
relays' expiry times are wall time).

Rules:
- A slot is renewed once less than RENEW_SHARE of `ttl` is left before it expires.
- New relays are asked only while fewer than `wanted` slots are held, in the order given
  (the caller lists connected relays).
- A relay that refused (full, or no relay at all) is not asked again for REFUSED_WAIT seconds;
  a refusal of a renewal drops the slot.
- `ask_reachability` says when to ask AutoNAT servers again: in "auto" mode, while the answer
  is unknown, and RECHECK_AFTER seconds after the last answer (a home router may change).
- `verdict` turns the servers' answers into the node's reachability: one vote per server IP
  address (peer ids cost nothing, an address does; servers behind one address that disagree
  cast no vote), and the majority wins; a tie is no verdict. A lone server is believed: there
  is nobody to outvote it, and the answer is asked again after RECHECK_AFTER.
- `pick_servers` asks servers at distinct addresses first, so that one address with many
  peer ids cannot fill the round.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

RENEW_SHARE = 0.25
REFUSED_WAIT = 60.0
RECHECK_AFTER = 600.0
UNKNOWN, PUBLIC, PRIVATE = "unknown", "public", "private"


@dataclass(frozen=True, slots=True)
class Reservation:
    """A slot this node holds on a relay, and the relayed addresses it gives the node."""

    relay: str
    addrs: tuple[str, ...]
    expires: float


@dataclass
class Slots:
    """The relay slots a private node holds; see the module's theory of operation.

    Args:
        wanted: slots to hold (`network.relay_slots`).
        ttl: a reservation's lifetime as the node asks for it (`network.relay_ttl`).
    """

    wanted: int
    ttl: float
    held: dict[str, Reservation] = field(default_factory=dict)
    _refused: dict[str, float] = field(default_factory=dict)

    def to_ask(self, now: float, relays: Iterable[str]) -> list[str]:
        """Returns the relays to ask for a slot now: renewals first, then new relays."""
        renew = [r.relay for r in self.held.values() if r.expires - now < self.ttl * RENEW_SHARE]
        room = self.wanted - len(self.held)
        fresh = [
            relay
            for relay in relays
            if relay not in self.held and self._refused.get(relay, 0.0) <= now
        ]
        return renew + list(dict.fromkeys(fresh))[: max(room, 0)]

    def granted(self, reservation: Reservation) -> bool:
        """A relay granted (or renewed) a slot; returns whether the node's addresses changed."""
        before = self.held.get(reservation.relay)
        self.held[reservation.relay] = reservation
        self._refused.pop(reservation.relay, None)
        return before is None or before.addrs != reservation.addrs

    def refused(self, relay: str, now: float) -> bool:
        """A relay refused, or failed; returns whether a held slot was lost with it."""
        self._refused[relay] = now + REFUSED_WAIT
        return self.held.pop(relay, None) is not None

    def lost(self, relay: str) -> bool:
        """The relay disconnected; returns whether a slot was held there."""
        return self.held.pop(relay, None) is not None

    def short(self, candidates: int) -> bool:
        """Whether fewer slots are held than wanted, and than `candidates` (connected peers that
        may be relays) could give."""
        return len(self.held) < min(self.wanted, candidates)

    def addrs(self) -> list[str]:
        """The relayed addresses of every slot held."""
        return [a for r in self.held.values() for a in r.addrs]


def ask_reachability(mode: str, reachability: str, asked_at: float | None, now: float) -> bool:
    """Whether to ask AutoNAT servers now. `mode` is `network.reachability`; `asked_at` is when
    the last answer came (None: never)."""
    if mode != "auto":
        return False
    return reachability == UNKNOWN or asked_at is None or now - asked_at >= RECHECK_AFTER


def verdict(answers: Iterable[tuple[str, bool]]) -> str:
    """The reachability that AutoNAT answers say: (server's IP address, whether it dialed us
    back) each; see the module's rules."""
    by_address: dict[str, set[bool]] = {}
    for address, ok in answers:
        by_address.setdefault(address, set()).add(ok)
    votes = [next(iter(said)) for said in by_address.values() if len(said) == 1]
    public = sum(votes)
    private = len(votes) - public
    if public > private:
        return PUBLIC
    if private > public:
        return PRIVATE
    return UNKNOWN


def pick_servers(servers: Sequence[tuple[str, str]], count: int) -> list[str]:
    """Of (server, its IP address) pairs, `count` servers to ask: one per address first, in the
    order given, then the others."""
    seen: set[str] = set()
    first: list[str] = []
    rest: list[str] = []
    for server, address in servers:
        (rest if address in seen else first).append(server)
        seen.add(address)
    return (first + rest)[:count]
