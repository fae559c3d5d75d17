"""The owner's node decides a closed proposal and executes a passed allocation on a real chain,
once: a second round sends nothing, and an intent left by a crash is finished from its bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
from eth_account import Account
from web3 import Web3

from node.chain.client import ChainClient
from node.chain.executions import Order, done_key, encode_tx, intent_key
from node.chain.settlement import Settlement
from node.config import ChainConfig
from node.errors import TransactionReverted
from node.keys import Identity
from node.outcomes import outcome
from protocol import Decision, Record, sign
from protocol.tally import decision, tally
from storage import Store
from tests.support import allocations as al
from tests.support import factories as f
from tests.support.anvil import rpc, running_anvil
from tests.support.epochs import ingest, records, strict_node

TIMEOUT = 30


def config(**changes: object) -> ChainConfig:
    return ChainConfig(poll_interval=0.05, settle=al.SETTLE, **changes)  # type: ignore[arg-type]


def sent(chain: ChainClient, owner: Identity) -> int:
    return chain.w3.eth.get_transaction_count(owner.wallet.address)


async def test_a_passed_allocation_is_decided_and_executed_once(tmp_path: Path) -> None:
    owner = Identity(f.key("alice"), Account.create())
    chain = ChainClient.embedded(owner.wallet, config=config())
    question = al.proposal()
    now = [f.T0 + 60.0]
    with trio.fail_after(TIMEOUT):
        async with strict_node(tmp_path / "n") as node:
            settle = Settlement(node, owner, chain, tmp_path / "n", clock=lambda: now[0])
            await ingest(node, records(owner))
            await settle.anchor(f.pid(), 0)
            al.fund_pool(chain, owner)
            await ingest(node, [question, *al.votes(question)], now=f.T0 + 200)
            # The window is open: nothing is decided, and the next decision's time is known.
            assert await settle.executor.round() == al.after(question) - 1
            assert chain.allocations(owner.address, f.pid()) == []
            now[0] = al.after(question)
            await settle.executor.round()
            (made,) = (await node.gateway.read(node.store.decisions, question.id)).items
            body = made.expect(Decision)
            assert (body.outcome, body.yes, body.total) == ("passed", 6, 6)
            assert made.author == owner.public_key
            seen = await node.gateway.read(outcome, node.store, question, now=now[0])
            assert seen.final and seen.valid
            assert al.allocations(chain, owner.address) == [(0, al.AMOUNT)]
            assert chain.pool(owner.address, f.pid()).unallocated == al.ETHER - al.AMOUNT
            # Done: a second round (or a restart) sends nothing more.
            count = sent(chain, owner)
            await settle.executor.round()
            await settle.executor.round()
            assert sent(chain, owner) == count
            assert al.allocations(chain, owner.address) == [(0, al.AMOUNT)]
            done = await node.gateway.read(node.store.state.intent, done_key(made.id))
            assert done is not None
            assert (await node.gateway.read(node.store.state.intent, intent_key(made.id))) is None


async def test_an_intent_left_by_a_crash_is_sent_from_its_bytes(tmp_path: Path) -> None:
    """A crash after the intent was recorded and before it was sent: the next run sends those
    bytes, and signs nothing new (the wallet's nonce moves by one)."""
    owner = Identity(f.key("alice"), Account.create())
    chain = ChainClient.embedded(owner.wallet, config=config())
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
            made = await settle.executor.decide(question.id)
            order = Order(made.id, f.pid(), 0, bytes(20), al.AMOUNT)
            tx = chain.sign_allocate(f.pid(), 0, al.AMOUNT)
            key = intent_key(made.id)
            await node.gateway.write(node.store.state.put_intent, key, encode_tx(tx))
            before = sent(chain, owner)
            executed = await settle.executor.execute(order)
            assert executed.tx_hash == tx.hash
            assert sent(chain, owner) == before + 1
            assert al.allocations(chain, owner.address) == [(0, al.AMOUNT)]


async def test_a_lost_intent_adopts_the_allocation_on_chain(tmp_path: Path) -> None:
    """The store lost the intent and done entry of a mined allocation: the node finds the
    allocation on chain and adopts it instead of sending a second one."""
    owner = Identity(f.key("alice"), Account.create())
    chain = ChainClient.embedded(owner.wallet, config=config())
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
            made = await settle.executor.decide(question.id)
            mined = chain.sign_allocate(f.pid(), 0, al.AMOUNT)
            chain.transact(mined)
            before = sent(chain, owner)
            await settle.executor.round()
            assert sent(chain, owner) == before
            assert al.allocations(chain, owner.address) == [(0, al.AMOUNT)]
            done = await node.gateway.read(node.store.state.intent, done_key(made.id))
            assert done is not None and mined.hash.hex() in done.decode()


CHILD = Path(__file__).with_name("execution_child.py")


def stage(path: Path) -> str:
    """Where a killed child left the execution: undecided, decided, intent, done."""
    with Store.open(path) as store:
        found = store.decisions(al.proposal().id).items
        if not found:
            return "undecided"
        if store.state.intent(done_key(found[0].id)) is not None:
            return "done"
        if store.state.intent(intent_key(found[0].id)) is not None:
            return "intent recorded"
        return "decided"


@pytest.mark.slow
def test_killed_around_the_execution_it_allocates_exactly_once(tmp_path: Path) -> None:
    """SIGKILLs a child node at spread-out moments of deciding and executing, then lets one
    finish: whatever each kill interrupted, the chain holds exactly one allocation."""
    with running_anvil() as url:
        w3 = Web3(Web3.HTTPProvider(url))
        wallet = Account.create()
        rpc(url, "anvil_setBalance", [wallet.address, hex(100 * al.ETHER)])
        owner = Identity(f.key("alice"), wallet)
        chain = ChainClient.deploy(w3, wallet, config=config())
        al.fund_pool(chain, owner)
        args = [sys.executable, str(CHILD), str(tmp_path / "n"), url, "0x" + chain.address.hex()]
        args.append(wallet.key.hex())
        for delay in (0.0, 0.04, 0.055, 0.07, 0.085, 0.1, None):
            child = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            try:
                assert child.stdout is not None
                ready = child.stdout.readline()
                assert ready == "ready\n", child.stderr.read() if child.stderr else ""
                if delay is None:
                    child.wait(timeout=TIMEOUT)
                    assert child.returncode == 0, child.stderr.read() if child.stderr else ""
                    assert "executed" in child.stdout.read()
                else:
                    time.sleep(delay)
                    os.kill(child.pid, signal.SIGKILL)
                    child.wait(timeout=TIMEOUT)
                    print(f"killed after {delay} s:", stage(tmp_path / "n" / "store"))
            finally:
                if child.poll() is None:
                    os.kill(child.pid, signal.SIGKILL)
                    child.wait(timeout=TIMEOUT)
        assert al.allocations(chain, owner.address) == [(0, al.AMOUNT)]
        # The wallet sent four transactions in all: the contract's deployment, the pool's
        # funding, the anchor of epoch 0 and one allocation (resending the same bytes uses no
        # new nonce, so a second allocation, even a reverted one, would show here).
        assert w3.eth.get_transaction_count(wallet.address) == 4
        with Store.open(tmp_path / "n" / "store") as store:
            (made,) = store.decisions(al.proposal().id).items
            assert store.state.intent(intent_key(made.id)) is None
            assert store.state.intent(done_key(made.id)) is not None
            assert store.check() == ()


async def test_an_allocation_the_pool_cannot_pay_does_not_hold_up_another(tmp_path: Path) -> None:
    """Two passed allocations, one of more than the pool holds: the contract would revert it,
    so it is never sent (gas estimation refuses it) and the round reports it; the other is
    executed all the same."""
    owner = Identity(f.key("alice"), Account.create())
    chain = ChainClient.embedded(owner.wallet, config=config())
    affordable = al.proposal()
    # Orders run in decision id order: the one the pool cannot pay is made to come first.
    at = int(al.after(affordable))
    too_much = next(
        q
        for q in (
            f.proposal(
                "bob", action="allocate", params=(0, bytes(20), str(10 * al.ETHER)), title=f"#{i}"
            )
            for i in range(64)
        )
        if decision_id(q, at) < decision_id(affordable, at)
    )
    with trio.fail_after(TIMEOUT):
        async with strict_node(tmp_path / "n") as node:
            settle = Settlement(
                node, owner, chain, tmp_path / "n", clock=lambda: al.after(affordable)
            )
            await ingest(node, records(owner))
            await settle.anchor(f.pid(), 0)
            al.fund_pool(chain, owner)
            records_ = [affordable, too_much, *al.votes(affordable), *al.votes(too_much)]
            await ingest(node, records_, now=f.T0 + 200)
            before = sent(chain, owner)
            with pytest.raises(TransactionReverted):
                await settle.executor.round()
            assert al.allocations(chain, owner.address) == [(0, al.AMOUNT)]
            assert sent(chain, owner) == before + 1
            # Both were decided; the one the pool cannot pay stays unexecuted, with no intent.
            for question in (affordable, too_much):
                found = await node.gateway.read(node.store.decisions, question.id)
                assert [d.id for d in found.items] == [decision_id(question, at)]


def decision_id(question: Record, at: int) -> bytes:
    """The id of the decision alice's node signs at `at` on a proposal with al.votes (carol's
    power 4 and bob's 2 from records(owner))."""
    power = {f.pub("carol"): 4, f.pub("bob"): 2}
    made = decision(tally(question, al.votes(question), power), created_at=at)
    return sign(made, f.key("alice")).id
