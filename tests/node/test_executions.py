"""The execution core: a passed allocation is sent once, resumed after a crash from its
recorded bytes, adopted from the chain when the store lost it, and never signed twice while the
first signature can still be mined. Driven by events and times, no sockets."""

from __future__ import annotations

import pytest

from node.chain.client import Allocation, SignedTx
from node.chain.executions import (
    Done,
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
    UnexpectedEvent,
    Wait,
    Woke,
    decode_tx,
    encode_tx,
    orders_due,
)
from node.errors import ChainError, SettlementError

ORDER = Order(b"d" * 32, b"p" * 32, 0, bytes(20), 10**18)
TX = SignedTx(b"raw", b"h" * 32, 7)
TX2 = SignedTx(b"raw2", b"i" * 32, 8)


def allocation(tx_hash: bytes, amount: int = 10**18, block: int = 3) -> Allocation:
    return Allocation(b"o" * 20, b"p" * 32, 0, bytes(20), amount, tx_hash, block)


def machine(confirmations: int = 0) -> Execution:
    return Execution(ORDER, confirmations=confirmations, poll_interval=2.0, resend_after=3)


def loaded(
    intent: SignedTx | None = None,
    done: Executed | None = None,
    allocations: tuple[Allocation, ...] = (),
    claimed: frozenset[bytes] = frozenset(),
) -> Loaded:
    return Loaded(intent, done, allocations, claimed)


def test_a_fresh_execution_records_its_intent_before_sending() -> None:
    m = machine(confirmations=2)
    assert m.start() == Load()
    assert m.step(loaded(), 100.0) == Sign(ORDER)
    assert m.step(Signed(TX), 100.0) == RecordIntent(TX)
    assert m.intent is None  # not recorded yet: a crash here sent nothing
    assert m.step(Recorded(), 100.0) == Send(TX)
    assert m.step(Sent(), 100.5) == Wait(102.5)
    assert m.step(Woke(), 102.5) == ReadReceipt(TX.hash)
    # Mined in block 10, head 11: one confirmation of two.
    assert m.step(Receipt(True, True, 10, 11), 102.5) == Wait(104.5)
    assert m.step(Woke(), 104.5) == ReadReceipt(TX.hash)
    done = Executed(ORDER.decision_id, TX.hash, 10)
    assert m.step(Receipt(True, True, 10, 12), 104.5) == Finish(done)
    assert m.step(Finished(), 104.5) == Done(done)


def test_a_resumed_intent_is_read_then_sent_again_as_the_same_bytes() -> None:
    m = machine()
    m.start()
    assert m.step(loaded(intent=TX), 0.0) == ReadReceipt(TX.hash)
    assert m.step(Receipt(False), 0.0) == Send(TX)
    assert m.step(Sent(), 0.0) == Wait(2.0)
    # Not mined: polls, and the same bytes again every third poll; never a new signature.
    actions = []
    t = 2.0
    for _ in range(7):
        actions.append(m.step(Woke(), t))
        step = m.step(Receipt(False), t)
        if isinstance(step, Send):
            actions.append(step)
            step = m.step(Sent(), t)
        assert isinstance(step, Wait)
        t = step.at
    sends = [a for a in actions if isinstance(a, Send)]
    assert sends and all(a.tx == TX and a.reason for a in sends)
    assert not any(isinstance(a, Sign) for a in actions)


def test_a_resumed_intent_already_mined_finishes_without_sending() -> None:
    m = machine()
    m.start()
    assert m.step(loaded(intent=TX), 0.0) == ReadReceipt(TX.hash)
    assert m.step(Receipt(True, True, 4, 4), 0.0) == Finish(Executed(ORDER.decision_id, TX.hash, 4))


def test_a_done_entry_ends_it_at_once() -> None:
    done = Executed(ORDER.decision_id, TX.hash, 4)
    m = machine()
    m.start()
    assert m.step(loaded(intent=TX, done=done), 0.0) == Finish(done)
    assert m.step(Finished(), 0.0) == Done(done)


def test_an_unclaimed_allocation_on_chain_is_adopted_not_repeated() -> None:
    m = machine()
    m.start()
    action = m.step(loaded(allocations=(allocation(b"x" * 32, amount=5), allocation(TX.hash))), 0)
    assert isinstance(action, Finish) and action.reason
    assert action.executed == Executed(ORDER.decision_id, TX.hash, 3)


def test_an_allocation_another_decision_claims_is_not_adopted() -> None:
    m = machine()
    m.start()
    claimed = frozenset({TX.hash})
    assert m.step(loaded(allocations=(allocation(TX.hash),), claimed=claimed), 0) == Sign(ORDER)


def test_a_used_nonce_without_a_receipt_signs_again_once() -> None:
    m = machine()
    m.start()
    m.step(loaded(intent=TX), 0.0)
    assert m.step(Receipt(False), 0.0) == Send(TX)
    assert m.step(Sent(nonce_used=True), 0.0) == ReadReceipt(TX.hash)
    action = m.step(Receipt(False), 0.0)
    assert isinstance(action, Sign) and "nonce 7" in action.reason
    assert m.step(Signed(TX2), 0.0) == RecordIntent(TX2)
    assert m.step(Recorded(), 0.0) == Send(TX2)
    # The new nonce used too: another program sends from this wallet.
    fail = m.step(Sent(nonce_used=True), 0.0)
    assert isinstance(fail, Fail) and isinstance(fail.error, ChainError)


def test_a_used_nonce_of_our_own_mined_bytes_finishes() -> None:
    m = machine()
    m.start()
    m.step(loaded(intent=TX), 0.0)
    m.step(Receipt(False), 0.0)
    m.step(Sent(nonce_used=True), 0.0)
    assert isinstance(m.step(Receipt(True, True, 9, 9), 0.0), Finish)


def test_a_reverted_allocation_fails_and_forgets_its_intent() -> None:
    m = machine()
    m.start()
    m.step(loaded(intent=TX), 0.0)
    fail = m.step(Receipt(True, False, 9, 9), 0.0)
    assert isinstance(fail, Fail) and fail.forget
    assert isinstance(fail.error, SettlementError)


def test_events_out_of_turn_are_bugs() -> None:
    m = machine()
    with pytest.raises(UnexpectedEvent):
        m.step(Woke(), 0.0)


def test_intents_round_trip_and_orders_due_skip_done() -> None:
    assert decode_tx(encode_tx(TX)) == TX
    done = Executed(ORDER.decision_id, TX.hash, 4)
    assert Executed.decode(ORDER.decision_id, done.encode()) == done
    with pytest.raises(SettlementError):
        decode_tx(b"{}")
    other = Order(b"a" * 32, b"p" * 32, 1, bytes(20), 1)
    assert orders_due([ORDER, other], [ORDER.decision_id]) == [other]
