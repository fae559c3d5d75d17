"""Connection slots without sockets (node/net/core/slots.py): which connections a node past its
limit hangs up on, and when; under trio's MockClock through the same Ticker as the node, so that
grace periods are asserted at their exact virtual time. And the dialer's side in the peer book:
a connection hung up on soon after it opened counts as a failed dial."""

from __future__ import annotations

import random

import trio
import trio.testing

from node.net.core.peers import SHORT_LIVED, Dial, HangUp, PeerBook
from node.net.core.slots import GRACE, LINGER, USEFUL_WINDOW, Slots
from node.net.core.ticker import Ticker

T0 = 1_700_000_000.0


def full(limit: int = 3, at: float = T0) -> Slots:
    slots = Slots(limit, GRACE)
    for i in range(limit):
        slots.opened(f"old{i}", at)
    return slots


def gone(actions: list[HangUp]) -> list[str]:
    return [a.peer_id for a in actions]


class Driven:
    """A `Slots` ticked by the node's Ticker on MockClock; records (virtual time, hang-up)."""

    def __init__(self, slots: Slots, mesh: set[str] | None = None) -> None:
        self.slots = slots
        self.mesh = mesh or set()
        self.start = trio.current_time()
        self.done: list[tuple[float, str]] = []
        self.ticker = Ticker(
            lambda now: slots.tick(now, self.mesh), slots.next_wakeup, self.apply, self.now
        )

    def now(self) -> float:
        return T0 + trio.current_time() - self.start

    def apply(self, actions: object) -> None:
        for action in actions:  # type: ignore[attr-defined]
            self.done.append((trio.current_time() - self.start, action.peer_id))
            # The host closes the connection; its notifee reports it.
            self.slots.closed(action.peer_id)


def test_nothing_is_trimmed_at_or_under_the_limit() -> None:
    slots = full()
    assert slots.tick(T0 + 3600) == []
    assert slots.next_wakeup(T0) == float("inf")


async def test_a_newcomer_goes_one_linger_after_its_exchange_was_answered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    driven = Driven(full(at=T0 - 3600))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driven.ticker.run)
        await trio.sleep(5)
        driven.slots.opened("new", driven.now())
        driven.ticker.poke()
        await trio.sleep(2)
        driven.slots.served("new", driven.now())
        driven.ticker.poke()
        await trio.sleep(GRACE * 3)
        nursery.cancel_scope.cancel()
    assert driven.done == [(5 + 2 + LINGER, "new")]
    assert driven.slots.count() == 3


async def test_a_newcomer_that_asks_nothing_goes_at_the_end_of_its_grace_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    driven = Driven(full(at=T0 - 3600))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driven.ticker.run)
        await trio.sleep(5)
        driven.slots.opened("new", driven.now())
        driven.ticker.poke()
        await trio.sleep(GRACE * 3)
        nursery.cancel_scope.cancel()
    assert driven.done == [(5 + GRACE, "new")]


async def test_a_flood_is_trimmed_each_at_its_own_time_and_the_useful_peers_stay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Three settled peers, in the mesh, and five dialers one second apart: each dialer goes at
    # the end of its own grace period, never one of the three in its place (before the rule
    # "never a more useful peer in the place of one in grace", the settled peers went first).
    slots = full(at=T0 - 3600)
    driven = Driven(slots, mesh={"old0", "old1", "old2"})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driven.ticker.run)
        for i in range(5):
            slots.opened(f"flood{i}", driven.now())
            driven.ticker.poke()
            await trio.sleep(1)
        await trio.sleep(GRACE * 3)
        nursery.cancel_scope.cancel()
    assert driven.done == [(i + GRACE, f"flood{i}") for i in range(5)]
    assert {f"old{i}" for i in range(3)} == {s for s in ("old0", "old1", "old2") if slots.get(s)}


def test_an_old_idle_peer_goes_before_a_newcomer_that_brings_records() -> None:
    # Not the newest only: usefulness first. The old peer is inbound, outside every mesh and has
    # sent nothing; the newcomer sent records that were stored during its grace period.
    slots = Slots(2, GRACE)
    slots.opened("idle", T0)
    slots.opened("meshed", T0)
    slots.opened("new", T0 + 100)
    slots.useful("new", T0 + 105)
    assert gone(slots.tick(T0 + 110, mesh={"meshed"})) == ["idle"]
    slots.closed("idle")
    assert slots.tick(T0 + 200, mesh={"meshed"}) == []


def test_records_are_worth_more_than_the_mesh_but_only_while_recent() -> None:
    slots = Slots(1, GRACE)
    slots.opened("feeder", T0)
    slots.opened("meshed", T0)
    slots.useful("feeder", T0 + 10)
    assert gone(slots.tick(T0 + 30, mesh={"meshed"})) == ["meshed"]
    stale = Slots(1, GRACE)
    stale.opened("feeder", T0)
    stale.opened("meshed", T0)
    stale.useful("feeder", T0 + 10)
    assert gone(stale.tick(T0 + 10 + USEFUL_WINDOW, mesh={"meshed"})) == ["feeder"]


def test_a_peer_with_a_relay_reservation_outranks_the_mesh_but_not_records() -> None:
    # Its relayed address goes through this node: trimming it would cut it off from whoever
    # dials that address. A peer that brings records still comes first.
    slots = Slots(2, GRACE)
    slots.opened("home", T0 + 50)
    slots.opened("meshed", T0)
    slots.opened("feeder", T0)
    slots.reserved("home")
    slots.useful("feeder", T0 + 60)
    assert gone(slots.tick(T0 + 100, mesh={"meshed"})) == ["meshed"]


def test_dialed_and_known_peers_outrank_strangers_and_the_newest_stranger_goes() -> None:
    slots = Slots(3, GRACE)
    slots.opened("dialed", T0 + 5, outbound=True)
    slots.opened("known", T0 + 5, known=True)
    slots.opened("stranger-old", T0)
    slots.opened("stranger-new", T0 + 1)
    assert gone(slots.tick(T0 + 60)) == ["stranger-new"]


def test_protected_peers_are_never_trimmed_and_a_hang_up_is_asked_once() -> None:
    slots = Slots(1, GRACE)
    slots.opened("boot1", T0, protected=True)
    slots.opened("boot2", T0, protected=True)
    assert slots.tick(T0 + 3600) == []
    assert slots.next_wakeup(T0 + 3600) == float("inf")
    slots.opened("x", T0 + 3600)
    assert gone(slots.tick(T0 + 3600 + GRACE)) == ["x"]
    # On its way out: not counted, not asked for again before the host reports it closed.
    assert slots.count() == 2
    assert slots.tick(T0 + 3600 + GRACE + 1) == []
    slots.closed("x")
    assert slots.get("x") is None


def test_missing_lists_the_peers_that_closed_unseen() -> None:
    slots = full()
    assert slots.missing({"old0", "old2"}) == ["old1"]


def test_a_dialer_hung_up_on_soon_after_connecting_backs_off_more_each_time() -> None:
    book = PeerBook("me", {"full": "/ip4/10.0.0.1/tcp/1/p2p/full"}, 8, random.Random(1))
    now = T0
    waits = []
    for _ in range(5):
        dialed = [a.peer_id for a in book.tick(now, connected=()) if isinstance(a, Dial)]
        assert dialed == ["full"]
        book.connected("full", now, ("/ip4/10.0.0.1/tcp/1",))
        book.dial_succeeded("full", now)
        now += 2  # answered its exchange and hung up
        book.disconnected("full", now)
        peer = book.get("full")
        assert peer is not None
        waits.append(peer.next_dial() - now)
        assert book.tick(now + 0.5, connected=()) == []  # not back at once
        now = book.retry_at(peer)  # the backoff, and the node's jitter on it
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]
    # A connection that lasted resets the count, as before.
    book.tick(now, connected=())
    book.connected("full", now)
    book.disconnected("full", now + SHORT_LIVED)
    peer = book.get("full")
    assert peer is not None and peer.failures == 0
