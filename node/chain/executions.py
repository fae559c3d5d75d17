"""Executing a passed allocate decision on chain, once, without I/O: events in, actions out.

Theory of operation
-------------------

`Execution` is the state machine of one decision's execution: the project's owner moving
`amount` of its pool in `token` to `epoch`, as a passed `allocate` decision says. It does no
I/O and reads no clock; the executor (node/chain/executor.py) performs each action and feeds
back what happened, with the current time, until the action is `Done` or `Fail`:

    Load           -> Loaded(intent, done, allocations, claimed)  the store's and chain's view
    Sign           -> Signed(tx)                                 an allocate tx, signed, not sent
    RecordIntent   -> Recorded()                                 the intent, synced to disk
    Send           -> Sent(nonce_used)                           the raw tx broadcast (or refused)
    Wait(at)       -> Woke()                                     time has reached `at`
    ReadReceipt    -> Receipt(mined, ok, block, head)            the tx's receipt and the head
    Finish         -> Finished()                                 done written, intent deleted

The chain does not know decisions: two allocations of the same amount to the same epoch are
both valid, so "never twice" is this machine's job. Its rules:

1. A decision with a done entry is executed: finish at once (deleting an intent a crash left).
2. With an intent (a signed transaction recorded before it was sent), never sign another while
   that one can still be mined: poll its receipt, and send the same bytes again every
   `resend_after` polls (a second copy of the same bytes can be mined only once: its nonce is
   used once). Mined and successful: once it has `confirmations` blocks on top, finish.
3. Without an intent, look at the chain first: an allocation event with the decision's
   parameters that no done entry claims (the store lost an intent, or a crash fell between the
   mined transaction and the done entry of an intent this node no longer has) is adopted as the
   execution. Only if there is none does the machine sign, and it records the intent BEFORE
   sending, so a crash at any point after that resumes from the same signed bytes.
4. A transaction that can never be mined (its nonce was used by another transaction of the
   wallet, and it has no receipt) is replaced: sign again, record, send. Twice in a row is a
   failure (`ChainError`): another program sends from this wallet.
5. Mined but reverted (the pool no longer holds the amount, the epoch expired): fail with the
   intent deleted, so that a later round can try again with a fresh signature once the cause is
   gone; signing estimates gas, which refuses a call that would revert, so nothing is sent
   while the cause lasts.

Errors of the I/O itself (the chain down, the store failing) are the executor's: they end the
attempt with the intent kept, and the next round resumes it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from node.chain.client import Allocation, SignedTx
from node.errors import ChainError, NodeError, SettlementError

# A sent allocation not mined after this many polls is sent again.
RESEND_AFTER = 20

_INTENT = b"execute:"
_DONE = b"executed:"


def intent_key(decision_id: bytes) -> bytes:
    """Returns the key of a decision's execution intent in the store's intents table."""
    return _INTENT + decision_id


def done_key(decision_id: bytes) -> bytes:
    """Returns the key of a decision's done entry (its allocation's transaction)."""
    return _DONE + decision_id


def is_intent_key(key: bytes) -> bool:
    """Returns whether a key of the intents table is an execution intent."""
    return key.startswith(_INTENT)


def is_done_key(key: bytes) -> bool:
    """Returns whether a key of the intents table is an execution's done entry."""
    return key.startswith(_DONE)


@dataclass(frozen=True, slots=True)
class Order:
    """What a passed allocate decision orders: who, which project, where the money goes."""

    decision_id: bytes
    project_id: bytes
    epoch: int
    token: bytes
    amount: int

    def matches(self, allocation: Allocation) -> bool:
        return (allocation.project_id, allocation.epoch, allocation.token, allocation.amount) == (
            self.project_id,
            self.epoch,
            self.token,
            self.amount,
        )


@dataclass(frozen=True, slots=True)
class Executed:
    """A decision's execution: the transaction of its allocation, and its block."""

    decision_id: bytes
    tx_hash: bytes
    block_number: int

    def encode(self) -> bytes:
        return json.dumps(
            {"tx_hash": self.tx_hash.hex(), "block_number": self.block_number}, sort_keys=True
        ).encode()

    @classmethod
    def decode(cls, decision_id: bytes, data: bytes) -> Executed:
        """Reads a done entry.

        Raises:
            SettlementError: the bytes are not a done entry (the store was damaged).
        """
        try:
            d = json.loads(data)
            return cls(decision_id, bytes.fromhex(d["tx_hash"]), int(d["block_number"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise SettlementError(f"a recorded execution is unreadable: {exc}") from exc


def encode_tx(tx: SignedTx) -> bytes:
    """Returns an execution intent's bytes: the signed transaction."""
    return json.dumps(
        {"raw": tx.raw.hex(), "hash": tx.hash.hex(), "nonce": tx.nonce}, sort_keys=True
    ).encode()


def decode_tx(data: bytes) -> SignedTx:
    """Reads an execution intent.

    Raises:
        SettlementError: the bytes are not an intent (the store was damaged).
    """
    try:
        d = json.loads(data)
        return SignedTx(bytes.fromhex(d["raw"]), bytes.fromhex(d["hash"]), int(d["nonce"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise SettlementError(f"a recorded execution intent is unreadable: {exc}") from exc


# Actions.


@dataclass(frozen=True, slots=True)
class Action:
    """Something the executor is to do; `reason` says why it repeats earlier work."""

    reason: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class Load(Action):
    """Read the decision's intent and done entry, every done entry's transaction, and the
    chain's allocations of the project."""


@dataclass(frozen=True, slots=True)
class Sign(Action):
    """Sign (without sending) the allocation from the wallet's next nonce."""

    order: Order


@dataclass(frozen=True, slots=True)
class RecordIntent(Action):
    """Write the signed transaction as the decision's intent, synced."""

    tx: SignedTx


@dataclass(frozen=True, slots=True)
class Send(Action):
    """Broadcast the signed transaction's raw bytes."""

    tx: SignedTx


@dataclass(frozen=True, slots=True)
class Wait(Action):
    """Sleep until time `at`."""

    at: float


@dataclass(frozen=True, slots=True)
class ReadReceipt(Action):
    """Read the transaction's receipt and the chain's head block."""

    tx_hash: bytes


@dataclass(frozen=True, slots=True)
class Finish(Action):
    """Write the done entry (synced), then delete the intent if any."""

    executed: Executed


@dataclass(frozen=True, slots=True)
class Done(Action):
    """The decision is executed; nothing is left to do."""

    executed: Executed


@dataclass(frozen=True, slots=True)
class Fail(Action):
    """Stop with `error`; an intent that can still be mined stays in the store, one that was
    reverted is deleted (`forget`)."""

    error: NodeError
    forget: bool = False


# Events.


@dataclass(frozen=True, slots=True)
class Loaded:
    """The decision's intent and done entry, the transactions that every done entry names,
    and the chain's allocations of the project (any parameters)."""

    intent: SignedTx | None
    done: Executed | None
    allocations: tuple[Allocation, ...]
    claimed: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class Signed:
    tx: SignedTx


@dataclass(frozen=True, slots=True)
class Recorded:
    pass


@dataclass(frozen=True, slots=True)
class Sent:
    """The chain took the raw transaction, or refused it because its nonce was used."""

    nonce_used: bool = False


@dataclass(frozen=True, slots=True)
class Woke:
    pass


@dataclass(frozen=True, slots=True)
class Receipt:
    """Whether the transaction is mined, whether it succeeded, its block, and the head."""

    mined: bool
    ok: bool = False
    block: int = -1
    head: int = -1


@dataclass(frozen=True, slots=True)
class Finished:
    pass


Event = Loaded | Signed | Recorded | Sent | Woke | Receipt | Finished


class Phase(enum.Enum):
    NEW = "new"
    LOADING = "loading"
    SIGNING = "signing"
    RECORDING = "recording"
    SENDING = "sending"
    WAITING = "waiting"
    POLLING = "polling"
    FINISHING = "finishing"
    DONE = "done"


class UnexpectedEvent(AssertionError):
    """Raised when the executor feeds an event the machine is not waiting for (a bug)."""


class Execution:
    """The execution of one passed allocate decision, as a state machine.

    Args:
        order: what the decision orders.
        confirmations: blocks on top of the allocation's block before it is final.
        poll_interval: time between two looks at the receipt.
        resend_after: polls without a receipt before the same bytes are sent again.
    """

    def __init__(
        self,
        order: Order,
        *,
        confirmations: int,
        poll_interval: float,
        resend_after: int = RESEND_AFTER,
    ) -> None:
        self.order = order
        self.confirmations = confirmations
        self.poll_interval = poll_interval
        self.resend_after = resend_after
        self.phase = Phase.NEW
        self._intent: SignedTx | None = None
        self._pending: SignedTx | None = None
        self._polls = 0
        self._dead = False
        self._refusals = 0
        self._result: Executed | None = None

    @property
    def intent(self) -> SignedTx | None:
        """The intent recorded in the store, as far as the machine knows."""
        return self._intent

    def start(self) -> Action:
        self._expect(Phase.NEW)
        self.phase = Phase.LOADING
        return Load()

    def step(self, event: Event, now: float) -> Action:
        """Takes what happened and the current time; returns what to do next.

        Raises:
            UnexpectedEvent: the event is not the one the current phase waits for.
        """
        match event:
            case Loaded():
                self._expect(Phase.LOADING)
                return self._loaded(event)
            case Signed():
                self._expect(Phase.SIGNING)
                self._pending = event.tx
                self.phase = Phase.RECORDING
                return RecordIntent(event.tx)
            case Recorded():
                self._expect(Phase.RECORDING)
                self._intent, self._pending = self._pending, None
                assert self._intent is not None
                self._dead = False
                self._polls = 0
                self.phase = Phase.SENDING
                return Send(self._intent)
            case Sent():
                self._expect(Phase.SENDING)
                return self._sent(event.nonce_used, now)
            case Woke():
                self._expect(Phase.WAITING)
                return self._read()
            case Receipt():
                self._expect(Phase.POLLING)
                return self._receipt(event, now)
            case Finished():
                self._expect(Phase.FINISHING)
                self.phase = Phase.DONE
                assert self._result is not None
                return Done(self._result)
        raise UnexpectedEvent(f"{event!r} in phase {self.phase.value}")

    def _loaded(self, event: Loaded) -> Action:
        self._intent = event.intent
        if event.done is not None:
            return self._finish(event.done, reason="")
        if event.intent is not None:
            # Resumed: the chain says whether the recorded bytes were mined.
            return self._read()
        order = self.order
        for allocation in event.allocations:
            if order.matches(allocation) and allocation.tx_hash not in event.claimed:
                return self._finish(
                    Executed(order.decision_id, allocation.tx_hash, allocation.block_number),
                    reason=(
                        f"the chain holds an allocation of decision "
                        f"{order.decision_id.hex()[:16]}'s parameters that no execution claims "
                        f"(tx 0x{allocation.tx_hash.hex()}): adopting it instead of sending"
                    ),
                )
        self.phase = Phase.SIGNING
        return Sign(order)

    def _sent(self, nonce_used: bool, now: float) -> Action:
        if not nonce_used:
            self._refusals = 0
            return self._wait(now)
        self._refusals += 1
        if self._refusals > 1:
            return self._fail(
                ChainError(
                    "the allocation was signed again and its new nonce was used too: does "
                    "another program send from this wallet?"
                )
            )
        # Mined already (our own bytes, sent before a crash), or never minable: the receipt says.
        self._dead = True
        return self._read()

    def _read(self) -> Action:
        intent = self._intent
        assert intent is not None
        self.phase = Phase.POLLING
        return ReadReceipt(intent.hash)

    def _receipt(self, event: Receipt, now: float) -> Action:
        intent = self._intent
        assert intent is not None
        if event.mined and not event.ok:
            self._intent = None
            return self._fail(
                SettlementError(
                    f"the allocation of decision {self.order.decision_id.hex()[:16]} "
                    f"(tx 0x{intent.hash.hex()}) was reverted: trying again later"
                ),
                forget=True,
            )
        if event.mined:
            if event.head - event.block < self.confirmations:
                return self._wait(now)
            return self._finish(Executed(self.order.decision_id, intent.hash, event.block))
        if self._dead:
            self.phase = Phase.SIGNING
            return Sign(
                self.order,
                reason=(
                    f"nonce {intent.nonce} of the allocation (tx 0x{intent.hash.hex()}) was used "
                    "by another transaction: signing it again"
                ),
            )
        if self._polls % self.resend_after == 0:
            reason = ""
            if self._polls:
                reason = "the allocation is not mined: sending the same bytes again"
            self.phase = Phase.SENDING
            return Send(intent, reason=reason)
        return self._wait(now)

    def _wait(self, now: float) -> Action:
        self._polls += 1
        self.phase = Phase.WAITING
        return Wait(now + self.poll_interval)

    def _finish(self, executed: Executed, reason: str = "") -> Action:
        self._result = executed
        self.phase = Phase.FINISHING
        return Finish(executed, reason=reason)

    def _fail(self, error: NodeError, *, forget: bool = False) -> Action:
        self.phase = Phase.DONE
        return Fail(error, forget=forget)

    def _expect(self, phase: Phase) -> None:
        if self.phase is not phase:
            raise UnexpectedEvent(f"in phase {self.phase.value}, not {phase.value}")


def orders_due(orders: Iterable[Order], executed: Iterable[bytes]) -> list[Order]:
    """Returns the orders whose decision has no done entry, in decision id order."""
    done = set(executed)
    return sorted((o for o in orders if o.decision_id not in done), key=lambda o: o.decision_id)
