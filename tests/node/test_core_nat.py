"""The relay slots of a home node (node/net/core/nat.py), driven with plain numbers for `now`."""

from __future__ import annotations

from node.net.core.nat import (
    PRIVATE,
    PUBLIC,
    RECHECK_AFTER,
    REFUSED_WAIT,
    UNKNOWN,
    Reservation,
    Slots,
    ask_reachability,
)

T0 = 1_800_000_000.0
TTL = 3600.0


def slot(relay: str, expires: float = T0 + TTL) -> Reservation:
    return Reservation(relay, (f"/ip4/203.0.113.1/tcp/4001/p2p/{relay}/p2p-circuit",), expires)


def test_asks_new_relays_until_it_holds_what_it_wants() -> None:
    slots = Slots(wanted=2, ttl=TTL)
    assert slots.to_ask(T0, ["r1", "r2", "r3"]) == ["r1", "r2"]
    assert slots.granted(slot("r1"))
    assert slots.to_ask(T0, ["r1", "r2", "r3"]) == ["r2"]
    assert slots.granted(slot("r2"))
    assert slots.to_ask(T0, ["r1", "r2", "r3"]) == []
    assert not slots.short(candidates=3)
    assert slots.addrs() == [slot("r1").addrs[0], slot("r2").addrs[0]]


def test_renews_with_a_quarter_of_the_lifetime_left() -> None:
    slots = Slots(wanted=1, ttl=TTL)
    slots.granted(slot("r1", expires=T0 + TTL))
    assert slots.to_ask(T0 + 0.75 * TTL - 1, ["r1"]) == []
    assert slots.to_ask(T0 + 0.75 * TTL + 1, ["r1"]) == ["r1"]
    # A renewal with the same addresses does not change what the node advertises.
    assert not slots.granted(slot("r1", expires=T0 + 2 * TTL))
    assert slots.to_ask(T0 + 0.75 * TTL + 1, ["r1"]) == []


def test_a_relay_that_refused_is_left_alone_for_a_while() -> None:
    slots = Slots(wanted=1, ttl=TTL)
    assert not slots.refused("r1", T0)
    assert slots.to_ask(T0 + REFUSED_WAIT - 1, ["r1", "r2"]) == ["r2"]
    assert slots.to_ask(T0 + REFUSED_WAIT, ["r1", "r2"]) == ["r1"]
    # A refused renewal loses the slot: the node's addresses change.
    slots.granted(slot("r2"))
    assert slots.refused("r2", T0 + 1)
    assert slots.held == {}


def test_a_relay_that_leaves_takes_its_slot_and_another_is_asked() -> None:
    slots = Slots(wanted=1, ttl=TTL)
    slots.granted(slot("r1"))
    assert slots.lost("r1") and not slots.lost("r1")
    assert slots.short(candidates=1)
    assert slots.to_ask(T0, ["r2"]) == ["r2"]


def test_wants_no_more_slots_than_there_are_peers_to_give_them() -> None:
    slots = Slots(wanted=2, ttl=TTL)
    assert not slots.short(candidates=0)
    slots.granted(slot("r1"))
    assert not slots.short(candidates=1)
    assert slots.short(candidates=2)


def test_when_to_ask_autonat() -> None:
    assert ask_reachability("auto", UNKNOWN, None, T0)
    assert not ask_reachability("auto", PRIVATE, T0, T0 + RECHECK_AFTER - 1)
    assert ask_reachability("auto", PRIVATE, T0, T0 + RECHECK_AFTER)
    assert not ask_reachability("private", UNKNOWN, None, T0)
    assert not ask_reachability("public", PUBLIC, None, T0)
