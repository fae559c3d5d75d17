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
    pick_servers,
    verdict,
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


def test_one_vote_per_server_address_and_the_majority_wins() -> None:
    # A liar with many peer ids on one address is one vote against two honest addresses.
    liar = [("203.0.113.9", True)] * 5
    assert verdict([*liar, ("198.51.100.1", False), ("192.0.2.7", False)]) == PRIVATE
    assert verdict([("198.51.100.1", True), ("192.0.2.7", True), ("203.0.113.9", False)]) == PUBLIC
    # A tie is no verdict: the node asks again.
    assert verdict([("198.51.100.1", True), ("192.0.2.7", False)]) == UNKNOWN
    # Servers behind one address that disagree cast no vote.
    assert verdict([("203.0.113.9", True), ("203.0.113.9", False), ("192.0.2.7", False)]) == PRIVATE
    # A lone server is believed (nobody outvotes it); no answer is no verdict.
    assert verdict([("192.0.2.7", True)]) == PUBLIC
    assert verdict([]) == UNKNOWN


def test_servers_at_distinct_addresses_are_asked_first() -> None:
    servers = [("s1", "a"), ("s2", "a"), ("s3", "a"), ("s4", "b"), ("s5", "a"), ("s6", "c")]
    assert pick_servers(servers, 4) == ["s1", "s4", "s6", "s2"]
    assert pick_servers(servers[:2], 4) == ["s1", "s2"]
