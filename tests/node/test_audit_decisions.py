"""The audit of decisions on a real chain: an honest decision executed once audits clean; an
allocation with no decision, a passed one never executed after its grace period, and an
over-claimed power are findings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from eth_account import Account

from node.chain.audit_decisions import (
    NOT_EXECUTED,
    POWER,
    UNMATCHED,
    DecisionsReport,
    audit_decisions,
)
from node.chain.client import ChainClient
from node.chain.settlement import Settlement
from node.config import ChainConfig
from node.keys import Identity
from protocol import Decision, Record
from tests.support import allocations as al
from tests.support import factories as f
from tests.support.epochs import ingest, records, strict_node

TIMEOUT = 30
GRACE = 600.0


@asynccontextmanager
async def owner_node(tmp_path: Path) -> AsyncIterator[tuple[Settlement, Record]]:
    """Alice's node with epoch 0 anchored, a funded pool, bob's proposal and the votes."""
    owner = Identity(f.key("alice"), Account.create())
    config = ChainConfig(poll_interval=0.05, settle=al.SETTLE)
    chain = ChainClient.embedded(owner.wallet, config=config)
    question = al.proposal()
    with trio.fail_after(TIMEOUT):
        async with strict_node(tmp_path / "n") as node:
            settle = Settlement(
                node, owner, chain, tmp_path / "n", clock=lambda: al.after(question)
            )
            await ingest(node, records(owner))
            await settle.anchor(f.pid(), 0)
            al.fund_pool(chain, owner)
            await ingest(node, [question, *al.votes(question)], now=f.T0 + 200)
            yield settle, question


async def audit(settle: Settlement, now: float) -> DecisionsReport:
    return await settle.gateway.read(
        audit_decisions, settle.store, settle.chain, f.pid(), now=now, grace=GRACE
    )


async def test_an_executed_decision_audits_clean(tmp_path: Path) -> None:
    async with owner_node(tmp_path) as (settle, question):
        await settle.executor.round()
        report = await audit(settle, al.after(question) + 10 * GRACE)
        assert report.ok, report.summary()
        (seen,) = report.proposals
        (allocation,) = report.allocations
        assert (seen.outcome, seen.yes, seen.total) == ("passed", 6, 6)
        assert seen.execution == allocation.tx_hash
        assert "executed in tx" in report.summary()
        assert report.to_json()["proposals"][0]["execution"] == "0x" + allocation.tx_hash.hex()


async def test_a_passed_decision_not_executed_is_pending_then_a_finding(tmp_path: Path) -> None:
    async with owner_node(tmp_path) as (settle, question):
        made = await settle.executor.decide(question.id)
        soon = await audit(settle, made.body.created_at + GRACE - 1)
        assert soon.ok and soon.proposals[0].pending
        late = await audit(settle, made.body.created_at + GRACE)
        assert [x.kind for x in late.findings] == [NOT_EXECUTED]


async def test_an_allocation_without_a_decision_is_a_finding(tmp_path: Path) -> None:
    async with owner_node(tmp_path) as (settle, question):
        await settle.executor.round()
        chain = settle.chain
        extra = chain.sign_allocate(f.pid(), 0, 12345)
        chain.transact(extra)
        report = await audit(settle, al.after(question))
        assert [(x.kind, x.tx_hash) for x in report.findings] == [(UNMATCHED, extra.hash)]


async def test_an_over_claimed_power_is_a_finding_and_is_not_executed(tmp_path: Path) -> None:
    async with owner_node(tmp_path) as (settle, question):
        store = settle.store
        votes = al.votes(question)
        # Carol's power is 4 by the anchored epoch; the decision claims 40.
        power = {f.pub("carol"): 40, f.pub("bob"): 2}
        forged = f.decision(question, votes, power)
        assert forged.expect(Decision).total == 42
        result = await settle.gateway.write(store.ingest, [forged], now=al.after(question))
        assert not result.rejected
        await settle.executor.round()
        assert settle.chain.allocations(settle.chain.sender, f.pid()) == []
        report = await audit(settle, al.after(question))
        kinds = {x.kind for x in report.findings}
        assert POWER in kinds and "total" in kinds
        assert any("over-claims" in x.message for x in report.findings)
