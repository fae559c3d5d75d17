"""No arrival order breaks an epoch: every node reaches the same trees, shares and audit verdicts.

A history is generated: the owner's node accepts work, reviewers accept it too (their records
reach the owner late, racing the anchor), some acceptances are backdated, the owner anchors
epochs on a real EVM (the manifest and epoch root published as the settlement service does),
acceptances keep coming into anchored epochs, a reviewer is removed. Then every record is fed
to several fresh LevelDB stores, each in its own shuffled order and split into its own calls, as
gossip and sync deliver them. Checked:

- at every step, a node that knows an epoch is anchored builds exactly the anchored tree;
- in the end, every node (the owner's included) has the same trees, the same standing of every
  contribution, the same shares, and the same audit verdict, which passes for every anchor;
- no contribution is paid by two epochs, and an open epoch pays nothing an anchored one does.
"""

from __future__ import annotations

import itertools
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.chain.audit import audit_epoch
from node.chain.client import ChainClient
from node.chain.trees import EpochTree, standing_of, stored_tree
from protocol import EmptyTree, Record
from protocol.epoch import Status, Summary
from protocol.settlement import share
from storage import Store
from tests.support import factories as f
from tests.support.epochs import ACCOUNT, OWNER
from tests.support.evm import TIMEOUT

EPOCHS = (0, 1)
WORKS = 4
NOW = f.T0 + 100_000
NODES = 3
_names = itertools.count()


@pytest.fixture(scope="module")
def chain() -> ChainClient:
    return ChainClient.embedded(ACCOUNT)


# What happens, in order: (what, arguments).
accept = st.tuples(
    st.just("accept"),
    st.integers(0, WORKS - 1),
    st.sampled_from(["alice", "carol"]),
    st.sampled_from(EPOCHS),
    st.integers(0, 3),
    st.booleans(),  # backdated
)
events = st.lists(
    st.one_of(
        accept,
        st.tuples(st.just("anchor"), st.sampled_from(EPOCHS)),
        st.just(("deliver",)),
        st.just(("remove carol",)),
    ),
    min_size=3,
    max_size=24,
)


@dataclass
class History:
    """The owner's node as it lives through the events, and every record made."""

    chain: ChainClient
    owner: Store
    name: str
    records: list[Record] = field(default_factory=list)
    # Reviewers' records on their way to the owner's node.
    pending: list[Record] = field(default_factory=list)
    revisions: dict[bytes, int] = field(default_factory=dict)
    anchored: dict[int, Summary] = field(default_factory=dict)
    clock: int = f.T0 + 100
    removed: bool = False

    def __post_init__(self) -> None:
        self.project = f.project(
            "alice", self.name, payout=OWNER, epoch_length=0, reviewers=(f.pub("carol"),)
        )
        self.works = [
            f.contribution(who, "alice", self.name, summary=f"work {i}")
            for i, who in enumerate(("bob", "dave", "erin", "frank"))
        ]
        self.made([self.project, *self.works])

    def made(self, records: list[Record], *, late: bool = False) -> None:
        """Records made now; those not made by the owner reach it later (`deliver`)."""
        self.records += records
        if late:
            self.pending += records
        else:
            result = self.owner.ingest(records, now=NOW)
            assert not result.rejected and not result.orphaned, result

    def run(self, event: tuple[Any, ...]) -> None:
        self.clock += 10
        match event:
            case ("accept", index, signer, epoch, weight, backdated):
                work = self.works[index]
                revision = self.revisions.get(work.id, 0)
                self.revisions[work.id] = revision + 1
                created = f.T0 + 20 if backdated else self.clock
                verdict = f.acceptance(
                    work, signer, weight=weight, epoch=epoch, revision=revision, created_at=created
                )
                self.made([verdict], late=signer != "alice")
            case ("deliver",):
                self.made(self.pending)
                self.pending = []
            case ("remove carol",) if not self.removed:
                self.removed = True
                self.made(
                    [
                        f.project(
                            "alice",
                            self.name,
                            payout=OWNER,
                            epoch_length=0,
                            revision=1,
                            created_at=self.clock,
                        )
                    ]
                )
            case ("anchor", epoch) if epoch not in self.anchored:
                self.anchor(epoch)

    def anchor(self, epoch: int) -> None:
        """Anchors an epoch as the settlement service does: the tree of what the owner's node
        holds, on chain, then its manifest and root in one write."""
        project = self.owner.project(f.pid("alice", self.name))
        assert project is not None
        try:
            built = stored_tree(self.owner, project, epoch)
        except EmptyTree:
            return
        summary = built.summary
        self.chain.transact(
            self.chain.sign_anchor(f.pid("alice", self.name), epoch, summary), timeout=TIMEOUT
        )
        anchor = self.chain.find_anchor(OWNER, f.pid("alice", self.name), epoch)
        assert anchor is not None and anchor.root == summary.root
        parts = f.manifest_of(built.acceptances, "alice", self.name, epoch=epoch, per_part=2)
        root = f.epoch_root(
            "alice",
            self.name,
            created_at=self.clock,
            epoch=epoch,
            root=summary.root,
            leaf_count=summary.leaf_count,
            total_weight=summary.total_weight,
            manifest=parts[0].id,
            parts=len(parts),
            chain_id=self.chain.chain_id,
            contract=self.chain.address,
            tx_hash=anchor.tx_hash,
        )
        self.made([*parts, root])
        self.anchored[epoch] = summary


@dataclass(frozen=True)
class View:
    """What one node makes of the records: trees, standings, shares, audit verdicts."""

    trees: dict[int, Summary | None]
    standings: dict[bytes, tuple[str, bytes, bytes | None] | None]
    shares: dict[bytes, tuple[int, int, int]]
    audits: dict[int, tuple[bool, tuple[str, ...], Summary | None, frozenset[bytes]]]


def tree_of(store: Store, history: History, epoch: int) -> EpochTree | None:
    project = store.project(f.pid("alice", history.name))
    assert project is not None
    try:
        return stored_tree(store, project, epoch)
    except EmptyTree:
        return None


def view(store: Store, history: History) -> View:
    trees = {e: tree_of(store, history, e) for e in EPOCHS}
    standings: dict[bytes, tuple[str, bytes, bytes | None] | None] = {}
    shares: dict[bytes, tuple[int, int, int]] = {}
    for work in history.works:
        found = standing_of(store, work.id)
        standings[work.id] = (
            None
            if found is None
            else (
                found.status.value,
                found.acceptance.id,
                None if found.late is None else found.late.id,
            )
        )
        if found is not None and found.status in (Status.ANCHORED, Status.OPEN):
            built = trees[found.epoch]
            assert built is not None
            leaf = built.merkle.leaves[built.merkle.index_of(work.id)]
            total = built.summary.total_weight
            shares[work.id] = (found.epoch, leaf.weight, share(10**18, leaf.weight, total))
    audits = {}
    for e in EPOCHS:
        report = audit_epoch(store, history.chain, f.pid("alice", history.name), e, now=NOW)
        kinds = tuple(sorted(x.kind.value for x in report.findings))
        audits[e] = (report.ok, kinds, report.local, frozenset(report.late))
    return View(
        {e: None if t is None else t.summary for e, t in trees.items()}, standings, shares, audits
    )


def feed(store: Store, records: list[Record], rng: random.Random) -> Iterator[None]:
    """Ingests the records in a shuffled order and random calls; yields after each call."""
    order = records[:]
    rng.shuffle(order)
    while order:
        size = rng.randint(1, 5)
        store.ingest(order[:size], now=NOW)
        order = order[size:]
        yield


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(happened=events, rng=st.randoms(use_true_random=False))
def test_every_order_gives_every_node_the_same_epochs(
    chain: ChainClient, happened: list[tuple[Any, ...]], rng: random.Random
) -> None:
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "owner") as owner:
        history = History(chain, owner, f"conv-{next(_names)}")
        for event in happened:
            history.run(event)
        history.run(("deliver",))
        nodes = [Store.open(Path(tmp) / f"node{i}") for i in range(NODES)]
        try:
            feeds = [feed(node, history.records, random.Random(rng.random())) for node in nodes]
            # Interleaved, as nodes receive gossip and sync at once: at every step, a node
            # that knows an epoch is anchored has exactly the anchored tree.
            for step in itertools.zip_longest(*feeds):
                del step
                for node in nodes:
                    for epoch, summary in history.anchored.items():
                        if node.anchored(f.pid("alice", history.name), epoch):
                            built = tree_of(node, history, epoch)
                            assert built is not None and built.summary == summary
            expected = view(owner, history)
            for node in nodes:
                assert node.check() == ()
                assert view(node, history) == expected
        finally:
            for node in nodes:
                node.close()
    # Every anchor is honest: its audit passes, late acceptances or not.
    for epoch, summary in history.anchored.items():
        assert expected.trees[epoch] == summary
        ok, kinds, local, _ = expected.audits[epoch]
        assert ok, kinds
        assert local == summary
    # Nothing is paid twice, and what an anchored epoch pays no open epoch pays.
    paid: dict[bytes, int] = {}
    for work_id, (epoch, _, _) in expected.shares.items():
        assert paid.setdefault(work_id, epoch) == epoch
        state = expected.standings[work_id]
        assert state is not None
        if epoch in history.anchored:
            assert state[0] == Status.ANCHORED.value
        else:
            assert state[0] == Status.OPEN.value


def test_a_reviewer_racing_the_anchor_is_late_everywhere(chain: ChainClient) -> None:
    """The defect's network half: carol accepts into epoch 0 while the owner anchors it; her
    acceptance reaches the owner after. It is late on every node, whatever the order, and the
    anchor's audit passes."""
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "owner") as owner:
        history = History(chain, owner, f"conv-{next(_names)}")
        for event in (
            ("accept", 0, "alice", 0, 2, False),
            ("accept", 1, "carol", 0, 3, False),  # racing: not at the owner's yet
            ("anchor", 0),
            ("deliver",),
            ("accept", 2, "carol", 0, 1, True),  # backdated, into the anchored epoch
            ("accept", 0, "carol", 1, 9, False),  # re-weighs what epoch 0 pays
            ("deliver",),
        ):
            history.run(event)
        expected = view(owner, history)
        by_id = {w.id: i for i, w in enumerate(history.works)}
        statuses = {by_id[k]: (v or ("none",))[0] for k, v in expected.standings.items()}
        assert statuses == {0: "anchored", 1: "late", 2: "late", 3: "none"}
        assert expected.audits[0][0] and len(expected.audits[0][3]) == 2
        assert expected.trees[1] is None  # work 0 is paid by epoch 0 only
        for seed in range(5):
            with Store.open(Path(tmp) / f"n{seed}") as node:
                for _ in feed(node, history.records, random.Random(seed)):
                    pass
                assert view(node, history) == expected
