"""The network simulator of scripts/bench/sim.py (issue 15, item 4), at a small size (30-40 nodes): its
invariants hold, so that its figures at 1,000 and 10,000 nodes mean something."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from node.net.core.peers import MAX_KNOWN


def load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "bench" / "sim.py"
    spec = importlib.util.spec_from_file_location("workwork_sim", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sim = load()


def test_without_loss_every_record_reaches_every_node_once_by_gossip() -> None:
    s = sim.Sim(sim.Params(nodes=40, records=5, seed=3))
    result = s.run()
    assert result.converged
    assert all(len(have) == 5 for have in s.have)
    # Stored once each: `filled` counts every first arrival, and nothing else.
    assert s.filled == 40 * 5
    # Gossip alone: nothing was left for sync to bring.
    assert result.sync_records_per_node == 0
    # No record arrived before it was published.
    assert all(t >= s.published[rid] for have in s.have for rid, t in have.items())
    # Every node joined the overlay: connected, and its peer book within bounds.
    assert all(s.conns[i] for i in range(40))
    assert all(len(book.known()) <= MAX_KNOWN for book in s.books)
    # Connections are symmetric.
    assert all(i in s.conns[j] for i in range(40) for j in s.conns[i])


def test_a_partition_holds_records_on_their_side_until_it_heals_then_all_converge() -> None:
    params = sim.Params(nodes=40, records=20, rate=2.0, loss=0.05, partition=(1.0, 40.0), seed=5)
    s = sim.Sim(params)
    result = s.run()
    assert result.converged
    assert all(len(have) == 20 for have in s.have)
    start = params.join_window + params.settle
    cut, heal = start + params.partition[0], start + params.partition[1]
    crossed_early = [
        (rid, i)
        for i, have in enumerate(s.have)
        for rid, t in have.items()
        if cut < s.published[rid] < heal and s.side[i] != s.side[s.origin[rid]] and t < heal
    ]
    assert crossed_early == []
    # Records published during the cut reached the other half only after it healed, and then
    # by sync (the IHAVE window of 3 s had long passed).
    assert result.sync_records_per_node > 0
    assert result.convergence_s > 0


def test_the_same_seed_gives_the_same_run() -> None:
    one = sim.simulate(sim.Params(nodes=30, records=3, loss=0.02, seed=9))
    two = sim.simulate(sim.Params(nodes=30, records=3, loss=0.02, seed=9))
    one.wall_s = two.wall_s = 0
    assert one == two


@pytest.mark.slow
def test_per_node_load_does_not_grow_with_the_network() -> None:
    small = sim.simulate(sim.Params(nodes=50, records=10, seed=2))
    large = sim.simulate(sim.Params(nodes=500, records=10, seed=2))
    assert large.converged and small.converged
    # Ten times the nodes: per-node load grows by far less than ten times.
    assert large.msgs_per_node_per_record < 2 * small.msgs_per_node_per_record


def test_full_nodes_take_newcomers_in_spare_slots_and_trim_back_to_their_limit() -> None:
    # Nodes that keep 12 connections: refusing at the limit, as py-libp2p does on its own,
    # strands most newcomers (they know only the three full bootstrap nodes); spare slots and
    # trimming (node/net/core/slots.py, as the node runs it) strand none, and no node ever holds
    # more than its limit plus its spare slots.
    common = {"nodes": 100, "records": 5, "seed": 4, "max_connections": 12, "spare_slots": 8}
    refused = sim.Sim(sim.Params(**common, refuse_when_full=True))
    assert refused.run().stranded > 50
    s = sim.Sim(sim.Params(**common))
    result = s.run()
    assert result.converged and result.stranded == 0
    assert result.extra["trimmed"] > 0
    assert result.extra["peak_connections"] <= 12 + 8
    # The run stops when the last record arrives: a node may still hold more than its limit
    # then, but only by connections still in their grace period (or protected ones).
    for i, conns in enumerate(s.conns):
        slots = [s.slots[i].get(s.ids[j]) for j in conns]
        waiting = [x for x in slots if x and (x.protected or x.settles(s.p.grace) > s.now)]
        assert len(conns) - 12 <= len(waiting)
    assert all(i in s.conns[j] for i in range(100) for j in s.conns[i])
