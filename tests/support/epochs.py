"""An anchored epoch in a real store on a real chain, as the anchoring node makes it.

`Epoch` ingests a project's records, builds the tree from the store as the anchoring node would,
anchors it from the project's payout address and stores the owner's signed epoch root. The
fixtures `chain` (a fresh contract per module, on eth-tester and on anvil), `store` and `name`
(a project name per test) come with it: a test module takes them with `chain = epochs.chain`.

`strict_node` runs a node for the settlement service's tests whose store refuses every call
made on the event loop's thread, so that a store read or tree build that bypasses the gateway
fails the test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from node.chain.audit import AuditReport, audit_epoch
from node.chain.client import Anchor, ChainClient, dev_fund
from node.keys import Identity
from node.net.node import Node
from protocol import Acceptance, Record, encode_body, sign
from protocol.codec import pack
from protocol.epoch import Summary, counted, manifest
from protocol.epoch import tree as epoch_tree
from protocol.merkle import MerkleTree
from storage import Store
from tests.support import factories as f
from tests.support.evm import TIMEOUT
from tests.support.nodes import running

# The anchoring key: every test project names its address as payout, so its anchors count.
ACCOUNT = Account.from_key(hashlib.sha256(b"workwork audit tests").digest())
OWNER = bytes.fromhex(ACCOUNT.address[2:])
NOW = f.T0 + 3600


@pytest.fixture(scope="module", params=["embedded", pytest.param("anvil", marks=pytest.mark.slow)])
def chain(request: pytest.FixtureRequest) -> ChainClient:
    """A chain with a fresh settlement contract deployed by ACCOUNT."""
    if request.param == "embedded":
        return ChainClient.embedded(ACCOUNT)
    url = request.getfixturevalue("anvil_url")
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": TIMEOUT}))
    dev_fund(w3, ACCOUNT.address)
    return ChainClient.deploy(w3, ACCOUNT)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as opened:
        yield opened


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A project name of this test alone."""
    return "p-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]


def forged(record: Record) -> Record:
    """Returns `record` with a signature that does not verify, as a buggy writer could store it.

    `Store.ingest` takes record objects on trust (their signatures were checked when decoded), so
    this is how a bad signature gets into a real store.
    """
    signature = bytes(64)
    body = encode_body(record.body)
    raw = pack((record.author, signature, body))
    return Record(record.body, record.author, signature, raw, hashlib.sha256(raw).digest())


@dataclass
class Epoch:
    """One project's records in a store, and what was anchored for an epoch of it."""

    store: Store
    chain: ChainClient
    name: str
    epoch: int = 0
    project: Record = field(init=False)
    works: list[Record] = field(default_factory=list)
    acceptances: list[Record] = field(default_factory=list)
    # The ids of the acceptances the last tree was built from: what `publish` lists.
    listed: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.project = f.project("alice", self.name, payout=OWNER, reviewers=(f.pub("carol"),))
        self.ingest([self.project])

    @property
    def pid(self) -> bytes:
        return f.pid("alice", self.name)

    def ingest(self, records: Sequence[Record]) -> None:
        result = self.store.ingest(records, now=NOW)
        assert not result.rejected and not result.orphaned, result

    def contribute(self, count: int, *, epoch: int | None = None, signer: str = "alice") -> None:
        """Adds `count` contributions by bob, accepted with weights 1, 2, ... into `epoch`."""
        start = len(self.works)
        for i in range(start, start + count):
            work = f.contribution("bob", "alice", self.name, summary=f"work {i}")
            accepted = f.acceptance(
                work, signer, weight=i + 1, epoch=self.epoch if epoch is None else epoch
            )
            self.ingest([work, accepted])
            self.works.append(work)
            self.acceptances.append(accepted)

    def tree(self) -> MerkleTree:
        """The epoch's tree built from the store's acceptances in force, as the anchoring node
        builds it before the epoch is anchored; what it lists is kept for `publish`."""
        accepted = self.store.acceptances(self.pid, self.epoch, limit=1000).items
        works = {
            w.id: w
            for w in (self.store.get(a.expect(Acceptance).contribution_id) for a in accepted)
            if w
        }
        project = self.store.project(self.pid)
        assert project is not None
        built, _ = epoch_tree(project, accepted, works, self.epoch)
        self.listed = [a.id for a, _ in counted(project, accepted, works, self.epoch)]
        return built

    def anchor(self, summary: Summary | None = None) -> Anchor:
        """Anchors `summary` (the stored tree's by default) from the project's payout address."""
        built = self.tree()
        if summary is None:
            summary = Summary(built.root, len(built), sum(leaf.weight for leaf in built.leaves))
        self.chain.transact(self.chain.sign_anchor(self.pid, self.epoch, summary), timeout=TIMEOUT)
        found = self.chain.find_anchor(OWNER, self.pid, self.epoch)
        assert found is not None
        return found

    def publish(
        self, anchor: Anchor, *, listed: Sequence[bytes] | None = None, **changes: Any
    ) -> Record:
        """Stores the owner's manifest and epoch root of `anchor` (with `changes`, to make the
        root lie). The manifest lists `listed`, by default the acceptances the tree of the last
        `anchor` was built from."""
        ids = self.listed if listed is None else list(listed)
        parts = manifest(
            self.pid,
            self.epoch,
            ids,
            created_at=NOW - 60,
            sign=lambda body: sign(body, f.key("alice")),
        )
        fields: dict[str, Any] = {
            "epoch": self.epoch,
            "root": anchor.root,
            "leaf_count": anchor.leaf_count,
            "total_weight": anchor.total_weight,
            "manifest": parts[0].id,
            "parts": len(parts),
            "chain_id": self.chain.chain_id,
            "contract": self.chain.address,
            "tx_hash": anchor.tx_hash,
        }
        record = f.epoch_root("alice", self.name, **{**fields, **changes})
        self.ingest([*parts, record])
        return record

    def audit(self, dump: dict[str, Any] | None = None, *, chain: bool = True) -> AuditReport:
        return audit_epoch(
            self.store, self.chain if chain else None, self.pid, self.epoch, dump, now=NOW
        )


def anchored(store: Store, chain: ChainClient, name: str, count: int = 5) -> Epoch:
    epoch = Epoch(store, chain, name)
    epoch.contribute(count)
    epoch.publish(epoch.anchor())
    return epoch


def records(owner: Identity, *, epochs: tuple[int, ...] = (0,), per_epoch: int = 3) -> list[Record]:
    """A project of `owner` anchoring from its wallet, and accepted contributions."""
    project = f.project(payout=owner.address, epoch_length=0)
    out = [project]
    for epoch in epochs:
        for i in range(per_epoch):
            work = f.contribution("bob" if i % 2 else "carol", summary=f"work {epoch}.{i}")
            out += [work, f.acceptance(work, epoch=epoch, weight=i + 1)]
    return out


def strict_node(data_dir: Path) -> AbstractAsyncContextManager[Node]:
    """Runs a node over `data_dir` whose store refuses calls made on the event loop by the test
    as well as by the node (`running(everywhere=True)`), until the block exits."""
    return running(data_dir, everywhere=True)


async def ingest(node: Node, records: Sequence[Record], now: float = f.T0 + 60) -> None:
    """Stores records in a running node through its gateway (the loop may not call the store)."""
    result = await node.gateway.write(node.store.ingest, records, now=now)
    assert not result.rejected and not result.orphaned, result
