"""Home nodes behind NAT, on 127.0.0.1: relaying, reservations, relayed addresses, reachability.

The real NAT (network namespaces behind iptables MASQUERADE) is tests/node/test_nat_netns.py;
here every node is reachable, so reachability is configured where the test needs a home node.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio

from node.net.core.peers import PeerBook, scopes_for
from node.net.nat import PUBLIC, is_relayed
from node.net.peers import _base
from tests.support import factories as f
from tests.support.nodes import has_all, running, wait_for


def circuit(relay_addr: str, peer: object) -> str:
    return f"{relay_addr}/p2p-circuit/p2p/{peer}"


async def test_records_flow_between_two_home_nodes_through_a_relay(
    dirs: Callable[[str], Path],
) -> None:
    home = {"reachability": "private", "hole_punch": False, "target_peers": 1}
    with trio.fail_after(60):
        async with running(dirs("relay"), role="bootstrap", relay_hop=True) as relay:
            boot = (relay.addrs()[0],)
            async with (
                running(dirs("alice"), bootstrap=boot, **home) as alice,
                running(dirs("bob"), bootstrap=boot, **home) as bob,
            ):
                await wait_for(lambda: bool(alice.nat.reservations), timeout=20)
                relayed = alice.nat.relay_addrs()
                assert relayed and all(is_relayed(a) for a in relayed)
                assert relayed[0].startswith(relay.addrs()[0])
                # The relay tells others of alice's relayed address by peer exchange.
                await wait_for(
                    lambda: any(
                        pid == str(alice.peer_id) and any(is_relayed(a) for a in addrs)
                        for pid, addrs in relay.peers.share()
                    ),
                    timeout=10,
                )
                await bob.connect(circuit(relay.addrs()[0], alice.peer_id))
                assert alice.nat.connections()["relayed"] == 1
                assert bob.nat.connections() == {"direct": 1, "relayed": 1}
                records = [f.profile("carol"), f.project("carol")]
                await alice.submit(records)
                await wait_for(has_all(bob, [r.id for r in records]), timeout=20)
                status = relay.nat.status()
                assert status["relay_hop"] and status["relay_reservations_served"] == 2


async def test_reachability_is_learned_from_autonat(dirs: Callable[[str], Path]) -> None:
    with trio.fail_after(60):
        async with (
            running(dirs("relay"), role="bootstrap", relay_hop=True) as relay,
            running(dirs("home"), bootstrap=(relay.addrs()[0],)) as home,
        ):
            # On 127.0.0.1 the relay sees the address the node advertises: public, no slot.
            await wait_for(lambda: home.nat.reachability == PUBLIC, timeout=20)
            assert not home.nat.reservations
            assert home.nat.status()["reachability"] == PUBLIC


def test_a_relayed_address_keeps_its_relay() -> None:
    # Cut at the first /p2p/ (as peers.py did), a relayed address became the relay's own
    # address, which then failed the handshake as the wrong peer.
    relay, peer = "12D3KooWRelay", "12D3KooWPeer"
    relayed = f"/ip4/10.77.0.1/tcp/4001/p2p/{relay}/p2p-circuit"
    assert _base(f"{relayed}/p2p/{peer}", peer) == relayed
    assert _base(relayed, peer) == relayed
    assert _base(f"/ip4/10.0.0.2/tcp/4001/p2p/{peer}", peer) == "/ip4/10.0.0.2/tcp/4001"


def test_a_relayed_address_has_the_scope_of_its_relay() -> None:
    # The address policy stays as it is: a stranger cannot point a node at a relay on a private
    # network (its LAN) unless the operator's own addresses are there or it allows them.
    book = PeerBook("me", scopes=scopes_for(("/ip4/0.0.0.0/tcp/4001",)))
    private = "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWRelay/p2p-circuit"
    public = "/ip4/1.1.1.1/tcp/4001/p2p/12D3KooWRelay/p2p-circuit"
    book.learned([("12D3KooWPeer", (private, public))], now=1.0)
    known = book.get("12D3KooWPeer")
    assert known is not None and known.addrs == (public,)
    lan = PeerBook("me", scopes=scopes_for(("/ip4/10.0.0.5/tcp/4001",)))
    lan.learned([("12D3KooWPeer", (private,))], now=1.0)
    known = lan.get("12D3KooWPeer")
    assert known is not None and known.addrs == (private,)
