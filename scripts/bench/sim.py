#!/usr/bin/env python3
"""Simulation of 100 to 10,000 nodes in virtual time, driven by the node's own sans-I/O cores.

Each simulated node runs the real `PeerBook` (node/net/core/peers.py: whom to dial, the bounded
table, peer exchange) and the real `SyncPlan` (node/net/core/syncs.py: when to sync with whom),
ticked whenever they ask to be (`next_wakeup`), as `Ticker` does in the node. Around them the
simulator models, on a discrete-event loop with no sleeps and no sockets:

- the network: a latency per link (uniform in `latency`, fixed per pair), a loss rate per
  message, and a partition that cuts the nodes into two halves for a while (messages and dials
  across the cut are lost; connections stay up, as TCP would until it timed out);
- connections: a dial reaches its target after one link latency, the dialer's peer exchange is
  answered with it, and a hang-up takes effect on both sides at once. Past `max_connections`,
  each node runs the real `Slots` (node/net/core/slots.py), as the node does: it takes a dial
  in one of `spare_slots` and trims the surplus, least useful first, one linger after the
  exchange it answered or at the end of the grace period; past the spare slots it refuses,
  with no exchange, as py-libp2p does before the handshake. The dialer's book counts a
  connection hung up on soon after it opened as a failed dial. `--refuse-when-full` models
  py-libp2p alone (no spare slots: refused at the limit, with no exchange);
- GossipSub as our host configures it (node/net/host.py): one topic, its mesh degree D, D_low
  and D_high (4, 3 and 6), a heartbeat every second that grafts up to D when the mesh is under
  D_low and prunes at random down to D when it is over D_high (a pruned peer backs off 60 s),
  forwarding a new message to the mesh, and IHAVE of the last 3 heartbeats' messages to
  max(6, a quarter of the) peers outside the mesh, which answer IWANT for what they lack;
- sync: when the plan says a peer is due, the node fetches what the peer holds and it lacks
  (the set difference; one request, one answer, and the records).

It reports, for each network size: the time for every node to hold every record after the
last publish (or after a partition heals), delivery latency p50/p99 over every (record, node),
and the per-node message load (received messages of every kind per record).

Run: .venv/bin/python scripts/bench/sim.py [--nodes 100,1000,10000] [--records R] [--rate R]
     [--loss P] [--partition] [--seed S] [--max-connections N] [--spare-slots N]
     [--refuse-when-full] [--bootstrap N] [--join-window S] [--json]
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from node.net.core.peers import PUBLIC, Dial, PeerBook
from node.net.core.slots import GRACE, Slots
from node.net.core.syncs import Outcome, SyncPlan
from node.net.host import DEGREE, DEGREE_HIGH, DEGREE_LOW, HEARTBEAT

# IHAVE goes to max(D_LAZY, GOSSIP_FACTOR x the peers outside the mesh), as py-libp2p does.
D_LAZY = 6
GOSSIP_FACTOR = 0.25
HISTORY_GOSSIP = 3  # heartbeats of messages advertised by IHAVE (GossipSub's default)
SYNC_TIMEOUT = 10.0
PRUNE_BACKOFF = 60.0  # GossipSub v1.1's default


@dataclass(frozen=True)
class Params:
    """One simulated run.

    Attributes:
        nodes: how many nodes (the first `bootstrap` are bootstrap nodes every node knows).
        records: records published, one at a time, each by a random node.
        rate: records per second across the network.
        latency: one-way link latency, uniform in this range (seconds).
        loss: probability that any one message is lost.
        partition: (start, end) after the first publish: the network is cut in two halves.
        join_window: nodes join at random times within this (seconds).
        settle: seconds after the last join before publishing starts.
        max_connections: connections a node keeps (`network.max_connections`).
        spare_slots: connections it takes past that for a while (`network.spare_slots`).
        grace: seconds before a surplus connection may be trimmed (`network.grace_period`).
        target: peers each node dials for (`network.target_peers`).
        sync_interval: `network.sync_interval`.
        horizon: the run stops here at the latest (virtual seconds).
        refuse_when_full: a node at `max_connections` refuses a dial with no exchange, as
            py-libp2p 0.8.1 does on its own (no spare slots).
    """

    nodes: int
    bootstrap: int = 3
    records: int = 30
    rate: float = 5.0
    latency: tuple[float, float] = (0.01, 0.1)
    loss: float = 0.0
    partition: tuple[float, float] | None = None
    join_window: float = 10.0
    settle: float = 10.0
    max_connections: int = 128
    spare_slots: int = 32
    grace: float = GRACE
    target: int = 8
    sync_interval: float = 30.0
    seed: int = 1
    horizon: float = 900.0
    refuse_when_full: bool = False


@dataclass
class Result:
    nodes: int
    records: int
    converged: bool
    convergence_s: float
    latency_p50_s: float
    latency_p99_s: float
    msgs_per_node_per_record: float
    msgs_per_node_per_record_p99: float
    gossip_per_node_per_record: float
    duplicates_per_node_per_record: float
    sync_records_per_node: float
    connections_mean: float
    stranded: int
    mesh_mean: float
    events: int
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)


class Sim:
    """The discrete-event loop and every simulated node's state."""

    def __init__(self, p: Params) -> None:
        self.p = p
        self.rng = random.Random(p.seed)
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self.events = 0
        n = p.nodes
        self.ids = [f"n{i}" for i in range(n)]
        self.index = {pid: i for i, pid in enumerate(self.ids)}
        self.addrs = [
            f"/ip4/11.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}/tcp/4001" for i in range(n)
        ]
        self.bootstrap = {
            self.ids[i]: f"{self.addrs[i]}/p2p/{self.ids[i]}" for i in range(min(p.bootstrap, n))
        }
        self.books: list[PeerBook | None] = [None] * n
        self.plans = [SyncPlan(interval=p.sync_interval) for _ in range(n)]
        self.slots = [Slots(p.max_connections, p.grace) for _ in range(n)]
        self.trimmed = 0
        self.peak = 0
        self.conns: list[set[int]] = [set() for _ in range(n)]
        self.mesh: list[set[int]] = [set() for _ in range(n)]
        self.have: list[dict[int, float]] = [{} for _ in range(n)]
        self.recent: list[list[tuple[float, int]]] = [[] for _ in range(n)]
        # Peer -> until when this node does not graft it again (it pruned us).
        self.backoff: list[dict[int, float]] = [{} for _ in range(n)]
        self.side = [i % 2 for i in range(n)]
        self.cut = False
        self._latency: dict[tuple[int, int], float] = {}
        self._tick_at = [float("inf")] * n
        self._sync_at = [float("inf")] * n
        # Load: messages each node received, by kind.
        self.received = [0] * n
        self.gossip = [0] * n
        self.duplicates = [0] * n
        self.synced = [0] * n
        self.published: dict[int, float] = {}
        self.origin: dict[int, int] = {}
        self.filled = 0
        self.last_fill = 0.0
        self.publish_end = 0.0

    # The loop.

    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, fn, args))

    def run(self) -> Result:
        p = self.p
        began = time.perf_counter()
        for i in range(p.nodes):
            self.at(0.0 if i < p.bootstrap else self.rng.uniform(0, p.join_window), self.join, i)
        start = p.join_window + p.settle
        for k in range(p.records):
            self.at(start + k / p.rate, self.publish, self.rng.randrange(p.nodes), k)
        self.publish_end = start + (p.records - 1) / p.rate
        if p.partition:
            self.at(start + p.partition[0], self._cut, True)
            self.at(start + p.partition[1], self._cut, False)
        want = p.nodes * p.records
        while self._queue:
            t, _, fn, args = heapq.heappop(self._queue)
            if t > p.horizon:
                break
            self.now = t
            self.events += 1
            fn(*args)
            if self.filled == want and self.now >= self.publish_end:
                break
        return self._result(time.perf_counter() - began)

    def _result(self, wall: float) -> Result:
        p, n, r = self.p, self.p.nodes, max(1, self.p.records)
        delays = sorted(t - self.published[rid] for have in self.have for rid, t in have.items())
        per_node = sorted(x / r for x in self.received)
        settled = self.publish_end
        if p.partition:
            settled = max(settled, p.join_window + p.settle + p.partition[1])
        return Result(
            nodes=n,
            records=p.records,
            converged=self.filled == n * p.records,
            convergence_s=round(max(0.0, self.last_fill - settled), 3),
            latency_p50_s=round(_pct(delays, 0.5), 4),
            latency_p99_s=round(_pct(delays, 0.99), 4),
            msgs_per_node_per_record=round(sum(per_node) / n, 2),
            msgs_per_node_per_record_p99=round(_pct(per_node, 0.99), 2),
            gossip_per_node_per_record=round(sum(self.gossip) / n / r, 2),
            duplicates_per_node_per_record=round(sum(self.duplicates) / n / r, 2),
            sync_records_per_node=round(sum(self.synced) / n, 2),
            connections_mean=round(sum(map(len, self.conns)) / n, 1),
            stranded=sum(1 for c in self.conns if not c),
            mesh_mean=round(sum(map(len, self.mesh)) / n, 1),
            events=self.events,
            wall_s=round(wall, 1),
            extra={"trimmed": self.trimmed, "peak_connections": self.peak},
        )

    # The network.

    def _lat(self, a: int, b: int) -> float:
        key = (a, b) if a < b else (b, a)
        lat = self._latency.get(key)
        if lat is None:
            lat = self._latency[key] = self.rng.uniform(*self.p.latency)
        return lat

    def _blocked(self, a: int, b: int) -> bool:
        return self.cut and self.side[a] != self.side[b]

    def send(self, src: int, dst: int, fn: Callable[..., None], *args: Any) -> bool:
        """Sends a message from `src` to `dst`; returns False if it is lost on the way."""
        if self._blocked(src, dst) or (self.p.loss and self.rng.random() < self.p.loss):
            return False
        self.at(self.now + self._lat(src, dst), fn, *args)
        return True

    def _cut(self, on: bool) -> None:
        self.cut = on

    # Peers: the real peer book, ticked when it asks.

    def join(self, i: int) -> None:
        self.books[i] = PeerBook(
            self.ids[i],
            {k: v for k, v in self.bootstrap.items() if k != self.ids[i]},
            min(self.p.target, self.p.max_connections),  # as node/net/peers.py
            random.Random(self.rng.random()),
            frozenset({PUBLIC}),
        )
        self._wake(i, self.now)
        self.at(self.now + self.rng.uniform(0, HEARTBEAT), self.heartbeat, i)

    def _wake(self, i: int, at: float) -> None:
        at = max(at, self.now)
        if at < self._tick_at[i]:
            self._tick_at[i] = at
            self.at(at, self._tick, i, at)

    def _tick(self, i: int, at: float) -> None:
        if self._tick_at[i] != at:
            return  # an earlier wake-up replaced this one, or ran already
        self._tick_at[i] = float("inf")
        book = self.books[i]
        assert book is not None
        for action in book.tick(self.now, {self.ids[j] for j in self.conns[i]}):
            if isinstance(action, Dial):
                j = self.index[action.peer_id]
                if not self.send(i, j, self._dial_arrives, i, j):
                    self.at(self.now + 2 * SYNC_TIMEOUT, self._dial_result, i, j, False, ())
        slots = self.slots[i]
        for hang_up in slots.tick(self.now, {self.ids[j] for j in self.mesh[i]}):
            self.trimmed += 1
            self._hang_up(i, self.index[hang_up.peer_id])
        self._wake(i, min(book.next_wakeup(self.now), slots.next_wakeup(self.now)))

    def _dial_arrives(self, i: int, j: int) -> None:
        book = self.books[j]
        if book is None:  # not started yet: refused
            self.send(j, i, self._dial_result, i, j, False, ())
            return
        shared = book.share(self.now)
        spare = 0 if self.p.refuse_when_full else self.p.spare_slots
        if len(self.conns[j]) >= self.p.max_connections + spare:
            # py-libp2p's ceiling: refused before the handshake, no exchange.
            self.send(j, i, self._dial_result, i, j, False, ())
            return
        pid = self.ids[i]
        before = book.get(pid)
        self.conns[j].add(i)
        self.peak = max(self.peak, len(self.conns[j]))
        book.connected(pid, self.now, (self.addrs[i],))
        self.slots[j].opened(
            pid,
            self.now,
            protected=pid in book.bootstrap,
            known=before is not None and before.verified,
        )
        # The dialer's exchange is answered with the connection: a surplus one may go soon.
        self.slots[j].served(pid, self.now)
        self._wake(j, self.now)
        self._connected(j, i)
        if not self.send(j, i, self._dial_result, i, j, True, shared):
            self.at(self.now + SYNC_TIMEOUT, self._dial_result, i, j, True, shared)

    def _dial_result(self, i: int, j: int, ok: bool, shared: Any) -> None:
        book = self.books[i]
        assert book is not None
        pid = self.ids[j]
        if ok and i not in self.conns[j]:
            # Hung up on before the answer arrived (it was late): connected, and gone at once.
            book.connected(pid, self.now, (self.addrs[j],))
            book.dial_succeeded(pid, self.now)
            book.disconnected(pid, self.now)
        elif ok:
            before = book.get(pid)
            self.conns[i].add(j)
            book.connected(pid, self.now, (self.addrs[j],))
            book.dial_succeeded(pid, self.now)
            self.slots[i].opened(
                pid,
                self.now,
                outbound=True,
                protected=pid in book.bootstrap,
                known=before is not None and before.verified,
            )
            self._connected(i, j)
        else:
            book.dial_failed(pid, self.now)
        book.learned(shared, self.now)
        self._wake(i, self.now)

    def _hang_up(self, i: int, j: int) -> None:
        """`i` closes its connection with `j`; both sides see it at once."""
        for a, b in ((i, j), (j, i)):
            if b not in self.conns[a]:
                continue
            self.conns[a].discard(b)
            self.mesh[a].discard(b)
            self.slots[a].closed(self.ids[b])
            self.plans[a].disconnected(self.ids[b])
            book = self.books[a]
            assert book is not None
            book.disconnected(self.ids[b], self.now)
            self._wake(a, self.now)

    def _connected(self, i: int, j: int) -> None:
        plan = self.plans[i]
        plan.connected(self.ids[j], self.now)
        plan.identified(self.ids[j], True, self.now)
        self._sync_wake(i, plan.next_wakeup(self.now))

    # Gossip.

    def heartbeat(self, i: int) -> None:
        mesh, conns = self.mesh[i], self.conns[i]
        if len(mesh) < DEGREE_LOW:
            backoff = self.backoff[i]
            spare = [j for j in conns - mesh if backoff.get(j, 0.0) <= self.now]
            for j in self.rng.sample(spare, min(len(spare), DEGREE - len(mesh))):
                if self.send(i, j, self._graft, j, i):
                    mesh.add(j)
        elif len(mesh) > DEGREE_HIGH:
            for j in self.rng.sample(sorted(mesh), len(mesh) - DEGREE):
                mesh.discard(j)
                self.send(i, j, self._prune, j, i)
        recent = self.recent[i]
        horizon = self.now - HISTORY_GOSSIP * HEARTBEAT
        while recent and recent[0][0] < horizon:
            recent.pop(0)
        if recent:
            rids = tuple(rid for _, rid in recent)
            others = list(conns - mesh)
            lazy = max(D_LAZY, int(GOSSIP_FACTOR * len(others)))
            for j in self.rng.sample(others, min(len(others), lazy)):
                self.send(i, j, self._ihave, j, i, rids)
        self.at(self.now + HEARTBEAT, self.heartbeat, i)

    def _graft(self, j: int, i: int) -> None:
        # Accepted whatever the mesh's size: the heartbeat prunes an oversized mesh to D, as
        # GossipSub does.
        self.received[j] += 1
        if i in self.conns[j]:  # not hung up on meanwhile
            self.mesh[j].add(i)

    def _prune(self, j: int, i: int) -> None:
        self.received[j] += 1
        self.mesh[j].discard(i)
        self.backoff[j][i] = self.now + PRUNE_BACKOFF

    def publish(self, i: int, rid: int) -> None:
        self.published[rid] = self.now
        self.origin[rid] = i
        self._store(i, rid)
        for j in self.mesh[i] or self.conns[i]:  # fanout when no mesh yet
            self.send(i, j, self._message, j, i, rid)

    def _store(self, i: int, rid: int) -> None:
        self.have[i][rid] = self.now
        self.recent[i].append((self.now, rid))
        self.filled += 1
        self.last_fill = self.now

    def _message(self, j: int, src: int, rid: int) -> None:
        self.received[j] += 1
        self.gossip[j] += 1
        if rid in self.have[j]:
            self.duplicates[j] += 1
            return
        self._store(j, rid)
        self.slots[j].useful(self.ids[src], self.now)
        for k in self.mesh[j]:
            if k != src:
                self.send(j, k, self._message, k, j, rid)

    def _ihave(self, j: int, src: int, rids: tuple[int, ...]) -> None:
        self.received[j] += 1
        have = self.have[j]
        missing = tuple(r for r in rids if r not in have)
        if missing:
            self.send(j, src, self._iwant, src, j, missing)

    def _iwant(self, src: int, j: int, rids: tuple[int, ...]) -> None:
        self.received[src] += 1
        for rid in rids:
            self.send(src, j, self._message, j, src, rid)

    # Sync: the real sync plan, ticked when it asks.

    def _sync_wake(self, i: int, at: float) -> None:
        at = max(at, self.now)
        if at < self._sync_at[i]:
            self._sync_at[i] = at
            self.at(at, self._sync_tick, i, at)

    def _sync_tick(self, i: int, at: float) -> None:
        if self._sync_at[i] != at:
            return  # an earlier wake-up replaced this one, or ran already
        self._sync_at[i] = float("inf")
        plan = self.plans[i]
        for pid in plan.due(self.now):
            j = self.index[pid]
            if not self.send(i, j, self._sync_request, j, i):
                self.at(self.now + SYNC_TIMEOUT, self._sync_done, i, j, None)
        self._sync_wake(i, plan.next_wakeup(self.now))

    def _sync_request(self, j: int, i: int) -> None:
        self.received[j] += 1
        missing = tuple(self.have[j].keys() - self.have[i].keys())
        if not self.send(j, i, self._sync_done, i, j, missing):
            self.at(self.now + SYNC_TIMEOUT, self._sync_done, i, j, None)

    def _sync_done(self, i: int, j: int, missing: tuple[int, ...] | None) -> None:
        plan = self.plans[i]
        if missing is None:
            plan.finished(self.ids[j], Outcome.PEER_FAILED, self.now)
        else:
            self.received[i] += 1
            for rid in missing:
                if rid not in self.have[i]:
                    self._store(i, rid)
                    self.synced[i] += 1
                    self.slots[i].useful(self.ids[j], self.now)
            plan.finished(self.ids[j], Outcome.DONE, self.now)
        self._sync_wake(i, plan.next_wakeup(self.now))


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))]


def simulate(p: Params) -> Result:
    """Runs one simulation; returns its figures."""
    return Sim(p).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", default="100,1000,10000")
    parser.add_argument("--records", type=int, default=30)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--partition", action="store_true", help="cut the network in two, 5-35 s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--refuse-when-full", action="store_true", help="full nodes refuse dials (py-libp2p)"
    )
    parser.add_argument("--max-connections", type=int, default=128)
    parser.add_argument("--spare-slots", type=int, default=32)
    parser.add_argument("--bootstrap", type=int, default=3, help="bootstrap nodes")
    parser.add_argument(
        "--join-window", type=float, default=10.0, help="nodes join within this (seconds)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for n in [int(x) for x in args.nodes.split(",")]:
        params = Params(
            nodes=n,
            records=args.records,
            rate=args.rate,
            loss=args.loss,
            partition=(5.0, 35.0) if args.partition else None,
            seed=args.seed,
            refuse_when_full=args.refuse_when_full,
            max_connections=args.max_connections,
            spare_slots=args.spare_slots,
            bootstrap=args.bootstrap,
            join_window=args.join_window,
        )
        result = simulate(params)
        result.extra["peak_rss_mib"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        if args.json:
            print(json.dumps(asdict(result)), flush=True)
        else:
            print(
                f"{n:>6} nodes: converged={result.converged} in {result.convergence_s} s, "
                f"latency p50 {result.latency_p50_s} s p99 {result.latency_p99_s} s, "
                f"msgs/node/record {result.msgs_per_node_per_record} "
                f"(p99 {result.msgs_per_node_per_record_p99}; gossip "
                f"{result.gossip_per_node_per_record}, dup {result.duplicates_per_node_per_record})"
                f", sync-fetched/node {result.sync_records_per_node}, conns "
                f"{result.connections_mean} ({result.stranded} with none), mesh {result.mesh_mean}, {result.events} events, "
                f"{result.wall_s} s wall, {result.extra['trimmed']} trimmed, "
                f"peak {result.extra['peak_connections']} connections",
                flush=True,
            )


if __name__ == "__main__":
    main()
