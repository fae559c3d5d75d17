"""The sync plan without sockets: when each peer is synced, backoff, fail-over, foreign peers,
the limit on syncs at once; and the plan under its ticker on MockClock."""

from __future__ import annotations

from collections.abc import Sequence

import trio
import trio.testing

from node.net.core.syncs import (
    IDENTIFY_WAIT,
    MAX_RUNNING,
    RETRY_MIN,
    STORE_RETRY,
    Outcome,
    SyncPlan,
)
from node.net.core.ticker import Ticker


def test_a_new_peer_is_synced_once_identified_or_after_the_wait() -> None:
    plan = SyncPlan(interval=30)
    plan.connected("a", 0)
    plan.connected("b", 0)
    assert plan.due(0) == []
    plan.identified("a", True, 0.2)
    assert plan.due(0.2) == ["a"]
    # b never said: synced anyway once the wait is over.
    assert plan.due(IDENTIFY_WAIT - 0.01) == []
    assert plan.due(IDENTIFY_WAIT) == ["b"]


def test_a_foreign_peer_is_never_synced() -> None:
    plan = SyncPlan(interval=30)
    plan.connected("js", 0)
    plan.identified("js", False, 0.1)
    assert plan.is_foreign("js")
    assert plan.due(1000) == [] and plan.next_wakeup(1000) == float("inf")
    plan.connected("js", 2000)  # reconnecting changes nothing
    assert plan.due(3000) == []


def test_syncs_repeat_every_interval_and_run_once_per_peer() -> None:
    plan = SyncPlan(interval=30)
    plan.connected("a", 0)
    plan.identified("a", True, 0)
    assert plan.due(0) == ["a"]
    assert plan.due(5) == []  # running
    assert plan.next_wakeup(5) == float("inf")
    plan.finished("a", Outcome.DONE, 10)
    assert plan.next_wakeup(10) == 40
    assert plan.due(39.9) == [] and plan.due(40) == ["a"]


def test_a_peer_that_breaks_syncs_backs_off_and_the_others_take_over() -> None:
    plan = SyncPlan(interval=30)
    for peer in ("a", "b", "c"):
        plan.connected(peer, 0)
        plan.identified(peer, True, 0)
    assert sorted(plan.due(0)) == ["a", "b", "c"]
    plan.finished("b", Outcome.DONE, 1)
    plan.finished("c", Outcome.DONE, 1)
    # a hangs up mid-fetch: b and c are asked at once, not at their next round (31).
    plan.finished("a", Outcome.PEER_FAILED, 2)
    assert sorted(plan.due(2)) == ["b", "c"]
    plan.finished("b", Outcome.DONE, 3)
    plan.finished("c", Outcome.DONE, 3)
    # a is retried after its backoff: 1 s, then 2, 4, ... up to the interval.
    retries = []
    now = 2.0
    for _ in range(8):
        wake = min(t for t in (plan.next_wakeup(now),) if t > now)
        assert "a" in plan.due(wake)
        retries.append(wake - now)
        now = wake
        plan.finished("a", Outcome.PEER_FAILED, now)
        for other in plan.due(now):  # the fail-over syncs
            plan.finished(other, Outcome.DONE, now)
    assert retries == [RETRY_MIN * 2**i for i in range(5)] + [30, 30, 30]
    # A sync that goes well resets it.
    wake = plan.next_wakeup(now)
    assert plan.due(wake) == ["a"]
    plan.finished("a", Outcome.DONE, wake)
    for other in plan.due(wake + 29.9):
        plan.finished(other, Outcome.DONE, wake + 29.9)
    assert "a" not in plan.due(wake + 29.9) and "a" in plan.due(wake + 30)


def test_fail_over_does_not_override_another_peers_backoff() -> None:
    plan = SyncPlan(interval=30)
    for peer in ("a", "b"):
        plan.connected(peer, 0)
        plan.identified(peer, True, 0)
    plan.due(0)
    plan.finished("a", Outcome.PEER_FAILED, 1)  # a backs off until 2
    plan.finished("b", Outcome.PEER_FAILED, 1.5)  # b backs off until 2.5; a stays at 2
    assert plan.due(1.9) == []
    assert plan.due(2) == ["a"]
    assert plan.due(2.4) == []
    assert plan.due(2.5) == ["b"]


def test_a_failing_store_blames_nobody() -> None:
    plan = SyncPlan(interval=30)
    for peer in ("a", "b"):
        plan.connected(peer, 0)
        plan.identified(peer, True, 0)
    plan.due(0)
    plan.finished("b", Outcome.DONE, 0)
    plan.finished("a", Outcome.STORE_FAILED, 1)
    assert plan.due(1) == []  # b is not asked: it would meet the same disk
    assert plan.due(1 + STORE_RETRY) == ["a"]


def test_at_most_max_running_syncs_at_once() -> None:
    plan = SyncPlan(interval=30)
    peers = [f"p{i}" for i in range(MAX_RUNNING + 3)]
    for peer in peers:
        plan.connected(peer, 0)
        plan.identified(peer, True, 0)
    first = plan.due(0)
    assert len(first) == MAX_RUNNING and plan.due(0) == []
    assert plan.next_wakeup(0) == float("inf")  # nothing can start until one finishes
    plan.finished(first[0], Outcome.DONE, 1)
    assert len(plan.due(1)) == 1


def test_refresh_makes_every_connected_peer_due() -> None:
    plan = SyncPlan(interval=30)
    plan.connected("a", 0)
    plan.identified("a", True, 0)
    plan.due(0)
    plan.finished("a", Outcome.DONE, 1)
    plan.refresh(5)
    assert plan.due(5) == ["a"]


def test_a_peer_that_left_is_forgotten() -> None:
    plan = SyncPlan(interval=30)
    plan.connected("a", 0)
    plan.identified("a", True, 0)
    assert plan.due(0) == ["a"]
    plan.disconnected("a")
    plan.finished("a", Outcome.PEER_FAILED, 1)  # its session ends after it left
    assert plan.due(100) == [] and not plan.is_running("a")


async def test_the_plan_on_its_ticker_runs_syncs_on_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Periodic syncs and retries at their exact virtual times, as the node's ticker runs them."""
    plan = SyncPlan(interval=30)
    start = trio.current_time()
    started: list[tuple[float, str]] = []
    outcomes = {"a": [Outcome.PEER_FAILED, Outcome.PEER_FAILED, Outcome.DONE]}

    def apply(peers: Sequence[str]) -> None:
        for peer in peers:
            started.append((trio.current_time() - start, peer))
            nursery.start_soon(session, peer)

    async def session(peer: str) -> None:
        await trio.sleep(0.5)  # the sync takes half a second
        results = outcomes.get(peer) or [Outcome.DONE]
        plan.finished(peer, results.pop(0) if results else Outcome.DONE, trio.current_time())
        ticker.poke()

    ticker = Ticker(plan.due, plan.next_wakeup, apply, trio.current_time)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker.run)
        plan.connected("a", trio.current_time())
        plan.identified("a", True, trio.current_time())
        ticker.poke()
        await trio.sleep(100)
        nursery.cancel_scope.cancel()
    times = [round(t, 6) for t, _ in started]
    # 0: first sync, fails at 0.5; retried 1 s later (1.5), fails at 2.0; retried 2 s later
    # (4.0), done at 4.5; then every 30 s after each end.
    assert times[:5] == [0.0, 1.5, 4.0, 34.5, 65.0]
