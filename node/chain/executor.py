"""The owner's side of collective decisions: signing decisions and executing passed allocations.

Each round of the settlement service (node/chain/settlement.py) runs `Executor.round`:

1. For the projects this node owns, the proposals whose window closed `chain.settle` seconds
   ago and that have no decision get one, signed from the stored votes and anchored epochs
   (`node.outcomes.sign_decision`), stored and published.
2. Every passed `allocate` decision in force that this node signed, that is valid by its own
   records and has no done entry, is executed on chain by the `node.chain.executions` core,
   whose opening comment is the theory of operation (intent before sending, resumed after a
   crash, never signed twice while a signature can still be mined).

Store reads run in the gateway's reader threads, writes in its writer, chain calls in threads of
their own, as for anchoring.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from node.chain.client import NonceUsed, SignedTx
from node.chain.executions import (
    Action,
    Done,
    Event,
    Executed,
    Execution,
    Fail,
    Finish,
    Finished,
    Load,
    Loaded,
    Order,
    ReadReceipt,
    Receipt,
    Recorded,
    RecordIntent,
    Send,
    Sent,
    Sign,
    Signed,
    Wait,
    Woke,
    decode_tx,
    done_key,
    encode_tx,
    intent_key,
    is_done_key,
    orders_due,
)
from node.decisions import _all
from node.errors import NodeError
from node.outcomes import Pending, due, outcome, sign_decision
from protocol import Decision, Proposal, ProtocolError, Record
from protocol.validate import first_decision
from storage.store import MAX_LIMIT

if TYPE_CHECKING:
    from node.chain.settlement import Settlement

log = logging.getLogger(__name__)


class Executor:
    """Decision signing and allocation execution for the node's own projects.

    Args:
        settlement: the settlement service (its node, identity, chain client and clock).
    """

    def __init__(self, settlement: Settlement) -> None:
        self.settlement = settlement
        self._locks: dict[bytes, trio.Lock] = {}

    @property
    def settle(self) -> float:
        return self.settlement.chain.config.settle

    async def round(self) -> float | None:
        """Signs the decisions due and executes passed allocations; returns when the next
        decision is due (wall time), if known.

        Raises:
            NodeError, StorageError: the first failure (the next round tries again).
        """
        s = self.settlement
        own = await s._own_projects()
        if not own:
            return None
        pending = await s.gateway.read(self._pending, own)
        plan = due(pending, s.clock(), self.settle)
        # One proposal or allocation that fails (too many ballots, a reverted allocation) must
        # not hold up the others: each is tried, and the first failure raised at the end.
        failed: list[Exception] = []
        for proposal_id in plan.due:
            try:
                await self.decide(proposal_id)
            except (NodeError, ProtocolError) as exc:
                log.warning("executor: deciding %s: %s", proposal_id.hex()[:16], exc)
                failed.append(exc)
        for order in await s.gateway.read(self._orders, own):
            try:
                await self.execute(order)
            except NodeError as exc:
                log.warning("executor: executing %s: %s", order.decision_id.hex()[:16], exc)
                failed.append(exc)
        if failed:
            raise failed[0]
        return plan.wake

    async def decide(self, proposal_id: bytes) -> Record:
        """Signs, stores and publishes the decision of one of this node's proposals."""
        s = self.settlement
        now = int(s.clock())
        question = await s.gateway.read(s.store.get, proposal_id)
        assert question is not None
        record = await s.gateway.read(sign_decision, s.store, s.identity, question, now=now)
        result = await s.node.submit([record])
        for rid, error in result.rejected:
            log.warning("executor: decision %s refused: %s", rid.hex()[:16], error)
        log.info(
            "executor: decided proposal %s: %s",
            proposal_id.hex()[:16],
            record.expect(Decision).outcome,
        )
        return record

    async def execute(self, order: Order) -> Executed:
        """Executes one passed allocation: returns once it is mined, confirmed and recorded.

        Raises:
            SettlementError: the allocation was reverted (a later round tries again).
            ChainError, StorageError: the chain or the store failed (the intent stays).
        """
        s = self.settlement
        lock = self._locks.setdefault(order.decision_id, trio.Lock())
        async with lock:
            machine = Execution(
                order,
                confirmations=s.chain.config.confirmations,
                poll_interval=s.chain.config.poll_interval,
            )
            action = machine.start()
            while True:
                if action.reason:
                    log.warning("executor: %s", action.reason)
                if isinstance(action, Done):
                    log.info(
                        "executor: decision %s executed in tx 0x%s",
                        order.decision_id.hex()[:16],
                        action.executed.tx_hash.hex(),
                    )
                    return action.executed
                if isinstance(action, Fail):
                    if action.forget:
                        await s.gateway.write(
                            s.store.state.delete_intent, intent_key(order.decision_id)
                        )
                    raise action.error
                event = await self._perform(action, order)
                action = machine.step(event, trio.current_time())

    async def _perform(self, action: Action, order: Order) -> Event:
        s = self.settlement
        chain, state = s.chain, s.store.state
        match action:
            case Load():
                loaded = await s.gateway.read(self._load, order)
                allocations = await trio.to_thread.run_sync(
                    chain.allocations, chain.sender, order.project_id
                )
                return Loaded(loaded[0], loaded[1], tuple(allocations), loaded[2])
            case Sign(order=o):
                tx = await trio.to_thread.run_sync(
                    chain.sign_allocate, o.project_id, o.epoch, o.amount, o.token
                )
                return Signed(tx)
            case RecordIntent(tx=tx):
                await s.gateway.write(
                    state.put_intent, intent_key(order.decision_id), encode_tx(tx)
                )
                return Recorded()
            case Send(tx=tx):
                try:
                    await trio.to_thread.run_sync(chain.send, tx)
                except NonceUsed as exc:
                    log.warning("executor: %s", exc)
                    return Sent(nonce_used=True)
                return Sent()
            case Wait(at=at):
                await trio.sleep_until(at)
                return Woke()
            case ReadReceipt(tx_hash=tx_hash):
                receipt = await trio.to_thread.run_sync(chain.receipt, tx_hash)
                if receipt is None:
                    return Receipt(False)
                head = await trio.to_thread.run_sync(chain.block_number)
                return Receipt(True, receipt["status"] == 1, int(receipt["blockNumber"]), head)
            case Finish(executed=done):
                await s.gateway.write(state.put_intent, done_key(done.decision_id), done.encode())
                await s.gateway.write(state.delete_intent, intent_key(done.decision_id))
                return Finished()
        raise AssertionError(f"the execution core asked for {action!r}")

    # Reads (in reader threads).

    def _load(self, order: Order) -> tuple[SignedTx | None, Executed | None, frozenset[bytes]]:
        state = self.settlement.store.state
        raw = state.intent(intent_key(order.decision_id))
        done_raw = state.intent(done_key(order.decision_id))
        done = None if done_raw is None else Executed.decode(order.decision_id, done_raw)
        claimed = frozenset(e.tx_hash for e in self.executed())
        return (None if raw is None else decode_tx(raw), done, claimed)

    def executed(self) -> list[Executed]:
        """Returns every done entry: the executions this node made or adopted."""
        found = []
        cursor = None
        store = self.settlement.store
        while True:
            page = store.state.intents(cursor=cursor, limit=MAX_LIMIT)
            for key, value in page.items:
                if is_done_key(key):
                    found.append(Executed.decode(key[len(done_key(b"")) :], value))
            if page.cursor is None:
                return found
            cursor = page.cursor

    def _pending(self, own: tuple[bytes, ...]) -> list[Pending]:
        store = self.settlement.store
        found = []
        for pid in own:
            for question in _all(store.proposals, pid):
                decided = bool(store.decisions(question.id, limit=1).items)
                closes = question.expect(Proposal).closes_at
                found.append(Pending(question.id, closes, decided))
        return found

    def _orders(self, own: tuple[bytes, ...]) -> list[Order]:
        s = self.settlement
        store, me, now = s.store, s.identity.public_key, s.clock()
        orders = []
        executed = {e.decision_id for e in self.executed()}
        for pid in own:
            for question in _all(store.proposals, pid):
                body = question.expect(Proposal)
                if body.action != "allocate":
                    continue
                held = first_decision(_all(store.decisions, question.id))
                if held is None or held.author != me or held.id in executed:
                    continue
                seen = outcome(store, question, now=now)
                record = seen.record
                if record is None or record.author != me or not seen.valid:
                    continue
                if not seen.decision.tally.passed:
                    continue
                params = body.named_params()
                orders.append(
                    Order(
                        record.id,
                        pid,
                        params["epoch"],
                        params["token"],
                        int(params["amount"]),
                    )
                )
        return orders_due(orders, executed)
