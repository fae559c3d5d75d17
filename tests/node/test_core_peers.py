"""The peer book without sockets: dialing, backoff, strikes, bans and their end, the table's
bounds; and its ticker under trio's MockClock, where an hour of bans passes in milliseconds."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest
import trio
import trio.testing

from node.net.core.peers import (
    BACKOFF_MAX,
    BAN_SECONDS,
    LOOPBACK,
    MAX_KNOWN,
    MAX_LEARNED,
    MAX_STRIKES,
    PRIVATE,
    PUBLIC,
    STRIKE_WINDOW,
    Action,
    Block,
    Dial,
    Forget,
    HangUp,
    KnownPeer,
    PeerBook,
    Save,
    Unblock,
    scope,
    scopes_for,
)
from node.net.core.ticker import Ticker

T0 = 1_700_000_000.0
ME = "12D3KooWme"


def book(target: int = 8, **bootstrap: str) -> PeerBook:
    return PeerBook(ME, dict(bootstrap), target, random.Random(7))


def dials(actions: list[Action]) -> list[str]:
    return [a.peer_id for a in actions if isinstance(a, Dial)]


def test_dials_known_peers_until_the_target_and_backs_off_after_failures() -> None:
    peers = book(target=2, boot="/ip4/10.0.0.1/tcp/4001/p2p/boot")
    peers.learned([("a", ("/ip4/10.0.0.2/tcp/1",)), ("b", ("/ip4/10.0.0.3/tcp/1",))], T0)
    first = dials(peers.tick(T0, connected=()))
    assert len(first) == 2 and set(first) <= {"a", "b", "boot"}
    # Nothing more while those two dials are under way.
    assert dials(peers.tick(T0 + 1, connected=())) == []
    for peer in first:
        peers.dial_failed(peer, T0 + 1)
    # The third is dialed now; the two that failed once wait 1 s from their attempt, and up
    # to half of that more (the jitter).
    third = dials(peers.tick(T0 + 1.5, connected=()))
    assert len(third) == 1 and third[0] not in first
    peers.dial_failed(third[0], T0 + 1.5)
    retries = [peers.retry_at(peers.get(p)) for p in first]  # type: ignore[arg-type]
    assert all(T0 + 2 <= at < T0 + 2.5 for at in retries)
    assert dials(peers.tick(min(retries) - 0.001, connected=())) == []
    assert sorted(dials(peers.tick(max(retries), connected=()))) == sorted(first)
    waits = []
    for failures in range(1, 12):
        entry = KnownPeer("x", ("/ip4/10.0.0.9/tcp/1",), failures=failures, tried_at=T0)
        waits.append(entry.next_dial() - T0)
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0] and max(waits) == BACKOFF_MAX


def test_a_peer_that_fails_is_not_dialed_before_its_backoff() -> None:
    peers = book(target=1)
    peers.learned([("a", ("/ip4/10.0.0.2/tcp/1",))], T0)
    assert dials(peers.tick(T0, connected=())) == ["a"]
    peers.dial_failed("a", T0)
    peers.dial_failed("a", T0)  # a second address failed too: two in a row
    retry = peers.retry_at(peers.get("a"))  # type: ignore[arg-type]
    assert T0 + 2 <= retry < T0 + 3  # 2 s of backoff, and up to half of it more
    assert dials(peers.tick(T0 + 1.9, connected=())) == []
    assert dials(peers.tick(retry - 0.001, connected=())) == []
    assert dials(peers.tick(retry, connected=())) == ["a"]
    # A connection resets the count.
    peers.connected("a", T0 + 3)
    assert peers.get("a") is not None and peers.get("a").failures == 0  # type: ignore[union-attr]


def test_strikes_ban_and_the_ban_ends() -> None:
    peers = book(target=0)
    peers.connected("bad", T0)
    for i in range(MAX_STRIKES - 1):
        assert peers.offence("bad", "garbage", T0 + i) == []
    banned = peers.offence("bad", "garbage", T0 + MAX_STRIKES)
    assert Block("bad") in banned and HangUp("bad") in banned
    assert any(isinstance(a, Save) and a.peer.banned_until > T0 for a in banned)
    assert peers.is_banned("bad", T0 + 10)
    # A banned peer that connects again is hung up on; it is not dialed.
    assert peers.connected("bad", T0 + 20) == [HangUp("bad")]
    end = T0 + MAX_STRIKES + BAN_SECONDS
    assert Unblock("bad") not in peers.tick(end - 0.001, connected=())
    assert Unblock("bad") in peers.tick(end, connected=())
    assert not peers.is_banned("bad", end)
    # Its strikes were forgotten with the ban: one more offence is one strike.
    assert peers.offence("bad", "garbage", end + 1) == []


def test_strikes_spread_over_more_than_the_window_do_not_ban() -> None:
    peers = book(target=0)
    for i in range(10):
        assert peers.offence("slow", "garbage", T0 + i * STRIKE_WINDOW / 2) == []
    assert not peers.is_banned("slow", T0 + 5 * STRIKE_WINDOW)


def test_bans_kept_in_the_store_hold_after_a_restart_and_end_on_time() -> None:
    kept = [KnownPeer("bad", ("/ip4/10.0.0.2/tcp/1",), T0, banned_until=T0 + 100)]
    peers = book(target=1)
    assert peers.load(kept, T0 + 50) == [Block("bad")]
    assert dials(peers.tick(T0 + 60, connected=())) == []
    actions = peers.tick(T0 + 100, connected=())
    assert Unblock("bad") in actions and dials(actions) == ["bad"]


def test_made_up_peers_never_push_out_peers_the_node_reached() -> None:
    peers = book(target=0)
    real = [f"real{i}" for i in range(10)]
    for peer in real:
        peers.connected(peer, T0, ("/ip4/10.0.0.2/tcp/1",))
    # Exchanges full of made-up peers, many more than the table holds.
    for round_ in range(2 * MAX_KNOWN // MAX_LEARNED + 5):
        fake = [(f"fake{round_}-{i:03}", ("/ip4/10.9.9.9/tcp/1",)) for i in range(100)]
        peers.learned(fake, T0 + round_)
    known = {p.peer_id for p in peers.known()}
    assert len(known) == MAX_KNOWN
    assert set(real) <= known
    # Made-up peers that were tried and failed make room for new ones; untried ones do not.
    fakes = [p for p in peers.known() if p.peer_id.startswith("fake")]
    assert peers.learned([("newcomer", ("/ip4/10.1.1.1/tcp/1",))], T0 + 999) == []
    peers.dial_failed(fakes[0].peer_id, T0 + 1000)
    taken = peers.learned([("newcomer", ("/ip4/10.1.1.1/tcp/1",))], T0 + 1001)
    assert Forget(fakes[0].peer_id) in taken
    assert "newcomer" in {p.peer_id for p in peers.known()}


def test_one_exchange_is_read_for_at_most_max_learned_entries() -> None:
    peers = book(target=0)
    peers.learned([(f"p{i}", ("/ip4/10.0.0.1/tcp/1",)) for i in range(500)], T0)
    assert len(peers.known()) == MAX_LEARNED


def test_a_store_of_older_code_with_too_many_peers_keeps_the_verified_ones() -> None:
    reached = [KnownPeer(f"r{i}", ("/ip4/10.0.0.1/tcp/1",), T0 - i) for i in range(5)]
    made_up = [KnownPeer(f"a{i:05}", ("/ip4/10.9.9.9/tcp/1",)) for i in range(MAX_KNOWN + 90)]
    peers = book(target=5)
    actions = peers.load(made_up + reached, T0)
    assert sum(isinstance(a, Forget) for a in actions) == 95
    assert {p.peer_id for p in reached} <= {p.peer_id for p in peers.known()}
    assert set(dials(peers.tick(T0, connected=()))) <= {p.peer_id for p in peers.known()}


def test_an_exchange_does_not_change_what_the_node_found_itself() -> None:
    peers = book(target=0)
    peers.connected("a", T0, ("/ip4/10.0.0.2/tcp/1",))
    peers.learned([("a", ("/ip4/6.6.6.6/tcp/1",)), (ME, ("/ip4/6.6.6.6/tcp/1",))], T0)
    assert peers.get("a").addrs == ("/ip4/10.0.0.2/tcp/1",)  # type: ignore[union-attr]
    assert peers.get(ME) is None


def test_share_tells_only_reached_peers_that_are_not_banned() -> None:
    peers = book(target=0)
    peers.connected("good", T0, ("/ip4/10.0.0.2/tcp/1",))
    peers.connected("bad", T0, ("/ip4/10.0.0.3/tcp/1",))
    peers.learned([("heard", ("/ip4/10.0.0.4/tcp/1",))], T0)
    peers.ban("bad", T0)
    assert peers.share(T0 + 1) == (("good", ("/ip4/10.0.0.2/tcp/1",)),)


@pytest.mark.parametrize("seed", range(3))
async def test_the_ticker_ends_a_ban_at_its_exact_virtual_time(
    seed: int, autojump_clock: trio.testing.MockClock
) -> None:
    """The ticker and the book together, on MockClock: an hour of protocol time, no waiting."""
    done: list[tuple[float, Action]] = []
    start = trio.current_time()
    peers = PeerBook(ME, {}, 0, random.Random(seed))

    def now() -> float:
        return T0 + trio.current_time()

    def apply(actions: object) -> None:
        done.extend((trio.current_time(), a) for a in actions)  # type: ignore[attr-defined]

    ticker = Ticker(lambda t: peers.tick(t, connected=()), peers.next_wakeup, apply, now)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker.run)
        await trio.sleep(10)
        apply(peers.ban("bad", now()))
        ticker.poke()
        await trio.sleep(BAN_SECONDS + 60)
        nursery.cancel_scope.cancel()

    ended = [t - start for t, a in done if a == Unblock("bad")]
    assert ended == [10 + BAN_SECONDS]


async def test_the_ticker_dials_again_on_the_backoff_schedule(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts: list[float] = []
    peers = PeerBook(ME, {"boot": "/ip4/10.0.0.1/tcp/1/p2p/boot"}, 1, random.Random(1))

    def now() -> float:
        return T0 + trio.current_time()

    def apply(actions: object) -> None:
        for action in actions:  # type: ignore[attr-defined]
            if isinstance(action, Dial):
                attempts.append(trio.current_time())
                peers.dial_failed(action.peer_id, now())  # unreachable, at once

    ticker = Ticker(lambda t: peers.tick(t, connected=()), peers.next_wakeup, apply, now)
    with trio.move_on_after(200):
        await ticker.run()

    gaps = [round(b - a, 6) for a, b in itertools.pairwise(attempts)]
    # Each wait is the backoff (1, 2, 4 ... s) and up to half of it more, rounded up to the
    # dial loop's one second.
    assert len(gaps) >= 6
    for k, gap in enumerate(gaps):
        assert 2**k <= gap <= 1.5 * 2**k + 1.0
    assert gaps != [2**k for k in range(len(gaps))]


def test_nodes_refused_together_do_not_come_back_together() -> None:
    """The jitter on the backoff: a thousand nodes whose dials of one peer failed at the same
    moments retry it spread over half a backoff, not at one instant (without it, a burst of
    joiners refused by full bootstrap nodes came back all at once, and was refused all at once
    again: scripts/bench/sim.py, 10,000 nodes)."""
    failed = KnownPeer("boot", ("/ip4/10.0.0.1/tcp/1",), failures=9, tried_at=T0)
    backoff = failed.next_dial() - T0
    retries = sorted(PeerBook(f"n{i}", rng=random.Random(i)).retry_at(failed) for i in range(1000))
    assert T0 + backoff <= retries[0] < T0 + backoff * 1.01
    assert T0 + backoff * 1.49 < retries[-1] < T0 + backoff * 1.5
    assert len(set(retries)) == 1000
    # Fixed for a node, a peer and its failure count; the next failure draws anew.
    one = PeerBook("me", rng=random.Random(1))
    assert one.retry_at(failed) == one.retry_at(failed)
    again = replace(failed, failures=10)
    assert one.retry_at(again) - again.next_dial() != one.retry_at(failed) - failed.next_dial()


def test_addresses_from_others_are_kept_only_in_the_scopes_the_operator_allows() -> None:
    """Strangers cannot point the node at its LAN or at itself: private and loopback addresses
    told by peers are dropped unless the operator's own addresses are of that scope."""
    assert scope("/ip4/8.8.8.8/tcp/4001") == PUBLIC
    assert scope("/dns4/boot.example.org/tcp/4001") == PUBLIC
    assert scope("/ip4/192.168.1.5/tcp/4001") == PRIVATE
    assert scope("/ip4/100.64.0.1/tcp/4001") == PRIVATE
    assert scope("/ip6/fe80::1/tcp/4001") == PRIVATE
    assert scope("/ip4/127.0.0.1/tcp/4001") == LOOPBACK
    assert scopes_for(["/ip4/0.0.0.0/tcp/4001"]) == {PUBLIC}
    assert scopes_for(["/ip4/127.0.0.1/tcp/0"]) == {PUBLIC, LOOPBACK}
    assert scopes_for(["/ip4/10.0.0.2/tcp/4001/p2p/boot"]) == {PUBLIC, PRIVATE}
    assert scopes_for([], private=True) == {PUBLIC, PRIVATE, LOOPBACK}
    peers = PeerBook(ME, {}, 8, random.Random(7), scopes_for(["/ip4/0.0.0.0/tcp/4001"]))
    peers.learned(
        [
            ("lan", ("/ip4/192.168.1.5/tcp/22",)),
            ("self", ("/ip4/127.0.0.1/tcp/4001",)),
            ("mixed", ("/ip4/10.0.0.1/tcp/1", "/ip4/8.8.4.4/tcp/4001")),
            ("public", ("/ip4/8.8.8.8/tcp/4001",)),
        ],
        T0,
    )
    assert {p.peer_id: p.addrs for p in peers.known()} == {
        "mixed": ("/ip4/8.8.4.4/tcp/4001",),
        "public": ("/ip4/8.8.8.8/tcp/4001",),
    }
    # Identify of a connected peer is told the same way.
    peers.connected("public", T0)
    peers.learned_addrs("public", ["/ip4/172.16.0.9/tcp/4001", "/ip4/8.8.8.8/tcp/4002"])
    assert peers.get("public").addrs == ("/ip4/8.8.8.8/tcp/4002", "/ip4/8.8.8.8/tcp/4001")  # type: ignore[union-attr]
