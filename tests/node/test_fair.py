"""The fair validation gate (node/net/fair.py): order and bounds, on trio alone."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from node.net.fair import Dropped, FairGate


async def _judge(gate: FairGate, peer: str, order: list[str], release: trio.Event) -> None:
    try:
        async with gate.turn(peer):
            order.append(peer)
            await release.wait()
    except Dropped:
        order.append(f"dropped {peer}")


async def test_a_peer_with_one_message_waits_one_turn_not_a_backlog() -> None:
    gate = FairGate(limit=1)
    order: list[str] = []
    block, go = trio.Event(), trio.Event()
    go.set()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_judge, gate, "flooder", order, block)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(100):
            nursery.start_soon(_judge, gate, "flooder", order, go)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(_judge, gate, "honest", order, go)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.waiting == 101 and gate.running == 1
        block.set()
    # The flooder's message being judged, then one more of its, then the honest one: not
    # after the 100 the flooder had queued before.
    assert order.index("honest") == 2 and len(order) == 102
    assert gate.running == 0 and gate.waiting == 0 and gate.dropped == 0


async def test_peers_take_turns_one_message_each() -> None:
    gate = FairGate(limit=1)
    order: list[str] = []
    go = trio.Event()
    go.set()
    block = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_judge, gate, "first", order, block)
        await trio.testing.wait_all_tasks_blocked()
        for peer in ["a"] * 3 + ["b"] * 2 + ["c"]:
            nursery.start_soon(_judge, gate, peer, order, go)
            await trio.testing.wait_all_tasks_blocked()
        block.set()
    assert order == ["first", "a", "b", "c", "a", "b", "a"]


async def test_a_peers_backlog_is_bounded_and_the_rest_dropped() -> None:
    gate = FairGate(limit=1, per_peer=5, total=100)
    order: list[str] = []
    release = trio.Event()
    async with trio.open_nursery() as nursery:
        for _ in range(1 + 8):
            nursery.start_soon(_judge, gate, "flooder", order, release)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.waiting == 5 and gate.dropped == 3
        assert order.count("dropped flooder") == 3
        release.set()
    assert order.count("flooder") == 6


async def test_past_the_total_the_longest_backlog_gives_way() -> None:
    gate = FairGate(limit=1, per_peer=100, total=6)
    order: list[str] = []
    release = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_judge, gate, "x", order, release)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(5):
            nursery.start_soon(_judge, gate, "flooder", order, release)
        nursery.start_soon(_judge, gate, "honest", order, release)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.waiting == 6
        # Full: a newcomer pushes out the flooder's oldest, not the honest peer's message.
        nursery.start_soon(_judge, gate, "other", order, release)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.waiting == 6 and gate.dropped == 1
        assert order == ["x", "dropped flooder"]
        release.set()
    assert sorted(order) == sorted(["x", "dropped flooder", *["flooder"] * 4, "honest", "other"])


async def test_a_cancelled_wait_gives_up_its_place_and_its_slot() -> None:
    gate = FairGate(limit=1)
    order: list[str] = []
    release = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_judge, gate, "a", order, release)
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            with pytest.raises(trio.Cancelled):
                async with gate.turn("b"):
                    raise AssertionError("never judged")
        assert gate.waiting == 0
        release.set()
    assert gate.running == 0
    async with gate.turn("c"):
        assert gate.running == 1
