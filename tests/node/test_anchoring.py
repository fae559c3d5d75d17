"""The anchoring core and epoch closing, without sockets, store or chain.

The state machine is fed the events the settlement service would feed it, with explicit times,
and its actions are checked one by one. A simulated chain (blocks, a mempool, reorgs, another
program spending the wallet's nonces, a log index that lags) then drives it through random
histories, killing it at random points and resuming from what the simulated store kept, to
check the guarantees: the intent is recorded before its bytes are sent, nothing is signed while
the chain holds the anchor, and the end is one anchor, published, with no intent left. The
timing of resends is checked on trio's MockClock.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from node.chain.anchoring import (
    RESEND_AFTER,
    Action,
    Anchoring,
    BuildTree,
    Built,
    Deleted,
    DeleteIntent,
    Done,
    Event,
    Fail,
    FindAnchor,
    Found,
    Head,
    Load,
    Loaded,
    Phase,
    Publish,
    Published,
    Read,
    ReadEpoch,
    ReadHead,
    Recorded,
    RecordIntent,
    Send,
    Sent,
    Sign,
    Signed,
    UnexpectedEvent,
    Wait,
    Woke,
)
from node.chain.client import Anchor, EpochState, SignedTx
from node.chain.closing import GRACE, Owned, closes_at, due, last_due
from node.chain.intents import Anchored, ChainRef, Intent, intent_key, is_intent_key
from node.errors import ChainError, EpochOpen, NotFound, SettlementError
from protocol import EpochRoot, Record, sign
from protocol.epoch import Summary, listed, manifest
from tests.support import factories as f

SENDER = f.address("wallet")
CHAIN = ChainRef(chain_id=31337, contract=f.address("contract"), sender=SENDER)
PID = f.pid()
PROJECT = f.project(payout=SENDER, epoch_length=0)
SUMMARY = Summary(b"\x11" * 32, 3, 6)
TX = SignedTx(b"\x02signed", b"\xaa" * 32, 7)
# The acceptances the tree of SUMMARY was built from: what the manifest lists.
LISTED = (b"\x21" * 32, b"\x22" * 32, b"\x23" * 32)
# The wall time of Load: the project has no epoch length, so any time will do.
WALL = 1_800_000_000.0
INTENT = Intent(PID, 0, SUMMARY, CHAIN.chain_id, CHAIN.contract, TX, LISTED)
NOT_ANCHORED = EpochState(bytes(32), 0, 0, 0, 0)
INTERVAL = 1.5
T = 1000.0


def machine(confirmations: int = 2, **changes: object) -> Anchoring:
    return Anchoring(
        PID,
        0,
        author=f.pub("alice"),
        chain=CHAIN,
        confirmations=confirmations,
        poll_interval=INTERVAL,
        **changes,  # type: ignore[arg-type]
    )


def anchored(root: bytes = SUMMARY.root) -> EpochState:
    return EpochState(root, 3, 6, 0, 0)


def event(tx_hash: bytes = TX.hash, block: int = 10) -> Anchor:
    return Anchor(SENDER, PID, 0, SUMMARY.root, 3, 6, tx_hash, block)


def root(tx_hash: bytes = TX.hash, **changes: object) -> Record:
    fields: dict[str, object] = {
        "root": SUMMARY.root,
        "leaf_count": 3,
        "total_weight": 6,
        "chain_id": CHAIN.chain_id,
        "contract": CHAIN.contract,
        "tx_hash": tx_hash,
        **changes,
    }
    return f.epoch_root(**fields)


def started(m: Anchoring, loaded: Loaded) -> Action:
    assert m.start() == Load()
    return m.step(loaded, T)


def fresh() -> Loaded:
    return Loaded(PROJECT, (), None, WALL)


def resumed(intent: Intent = INTENT) -> Loaded:
    return Loaded(PROJECT, (), intent, WALL)


# A fresh anchor, step by step.


def test_a_fresh_anchor_goes_intent_sent_confirmed_published() -> None:
    m = machine(confirmations=2)
    assert started(m, fresh()) == BuildTree()
    assert m.step(Built(SUMMARY, LISTED), T) == ReadEpoch()
    assert m.step(Read(NOT_ANCHORED), T) == Sign(SUMMARY)
    # The intent is recorded before anything is sent.
    assert m.step(Signed(TX), T) == RecordIntent(INTENT)
    assert m.intent is None
    assert m.step(Recorded(), T) == Send(TX)
    assert m.intent == INTENT
    assert m.step(Sent(), T) == Wait(T + INTERVAL)
    assert m.step(Woke(), T + INTERVAL) == ReadEpoch()
    # Mined in block 10 at head 10, then 11: not confirmed yet.
    assert m.step(Read(anchored()), T + INTERVAL) == FindAnchor()
    assert m.step(Found(event(block=10)), T + INTERVAL) == ReadHead()
    assert m.step(Head(11), T + INTERVAL) == Wait(T + 2 * INTERVAL)
    assert m.step(Woke(), T + 2 * INTERVAL) == ReadEpoch()
    assert m.step(Read(anchored()), T + 2 * INTERVAL) == FindAnchor()
    assert m.step(Found(event(block=10)), T + 2 * INTERVAL) == ReadHead()
    assert m.step(Head(12), T + 2 * INTERVAL) == Publish(INTENT, TX.hash, 10)
    record = root()
    assert m.step(Published(record), T) == DeleteIntent()
    assert m.step(Deleted(), T) == Done(Anchored(PID, 0, SUMMARY, TX.hash, 10, record))
    assert m.phase is Phase.DONE and m.intent is None


def test_with_no_confirmations_the_block_that_mines_it_is_enough() -> None:
    m = machine(confirmations=0)
    started(m, resumed())
    assert m.step(Read(anchored()), T) == FindAnchor()
    assert m.step(Found(event(block=5)), T) == ReadHead()
    assert m.step(Head(5), T) == Publish(INTENT, TX.hash, 5)


def test_an_event_the_log_index_does_not_show_yet_is_waited_for() -> None:
    m = machine()
    started(m, resumed())
    m.step(Read(anchored()), T)
    assert m.step(Found(None), T) == Wait(T + INTERVAL)
    assert m.step(Woke(), T + INTERVAL) == ReadEpoch()


def test_the_anchor_found_on_chain_is_published_even_if_another_tx_mined_it() -> None:
    """The root is ours, the transaction another of ours (an earlier signature of the epoch):
    the epoch root names the transaction the chain holds."""
    m = machine(confirmations=0)
    started(m, resumed())
    m.step(Read(anchored()), T)
    m.step(Found(event(tx_hash=b"\xbb" * 32, block=3)), T)
    assert m.step(Head(3), T) == Publish(INTENT, b"\xbb" * 32, 3)


# Resend timing, reorgs.


def test_an_anchor_not_mined_is_sent_again_every_resend_after_polls() -> None:
    m = machine()
    started(m, resumed())
    now = T
    assert m.step(Read(NOT_ANCHORED), now) == Send(TX)
    sends = [now]
    action = m.step(Sent(), now)
    for _ in range(3 * RESEND_AFTER):
        assert isinstance(action, Wait) and action.at == now + INTERVAL
        now = action.at
        assert m.step(Woke(), now) == ReadEpoch()
        action = m.step(Read(NOT_ANCHORED), now)
        if isinstance(action, Send):
            assert action.tx == TX and "not mined 20 polls after it was sent" in action.reason
            sends.append(now)
            action = m.step(Sent(), now)
    assert [s - T for s in sends] == [i * RESEND_AFTER * INTERVAL for i in range(4)]


def test_a_reorg_that_drops_the_anchor_sends_it_again_at_once() -> None:
    m = machine(confirmations=5)
    started(m, resumed())
    m.step(Read(NOT_ANCHORED), T)
    m.step(Sent(), T)
    m.step(Woke(), T)
    # Mined, waiting for confirmations...
    assert m.step(Read(anchored()), T) == FindAnchor()
    m.step(Found(event(block=10)), T)
    assert m.step(Head(11), T) == Wait(T + INTERVAL)
    m.step(Woke(), T + INTERVAL)
    # ...when the block goes away: the same bytes go out again, well before RESEND_AFTER.
    action = m.step(Read(NOT_ANCHORED), T + INTERVAL)
    assert isinstance(action, Send) and action.tx == TX and "reorg" in action.reason
    # Mined again in another block: the confirmations count from there.
    m.step(Sent(), T + INTERVAL)
    m.step(Woke(), T + 2 * INTERVAL)
    m.step(Read(anchored()), T + 2 * INTERVAL)
    m.step(Found(event(block=12)), T + 2 * INTERVAL)
    assert m.step(Head(16), T + 2 * INTERVAL) == Wait(T + 3 * INTERVAL)
    m.step(Woke(), T + 3 * INTERVAL)
    m.step(Read(anchored()), T + 3 * INTERVAL)
    m.step(Found(event(block=12)), T + 3 * INTERVAL)
    assert m.step(Head(17), T + 3 * INTERVAL) == Publish(INTENT, TX.hash, 12)


# Used nonces and dead transactions.


def test_a_used_nonce_is_signed_again_recorded_then_sent() -> None:
    m = machine()
    started(m, resumed())
    m.step(Read(NOT_ANCHORED), T)
    # The chain refuses the bytes: another transaction of the wallet used nonce 7.
    assert m.step(Sent(nonce_used=True), T) == ReadEpoch()
    action = m.step(Read(NOT_ANCHORED), T)
    assert isinstance(action, Sign) and action.summary == SUMMARY
    assert "nonce 7" in action.reason and "signing it again" in action.reason
    renewed = SignedTx(b"\x02again", b"\xcc" * 32, 8)
    assert m.step(Signed(renewed), T) == RecordIntent(
        Intent(PID, 0, SUMMARY, CHAIN.chain_id, CHAIN.contract, renewed, LISTED)
    )
    assert m.step(Recorded(), T) == Send(renewed)
    assert m.step(Sent(), T) == Wait(T + INTERVAL)


def test_a_used_nonce_with_the_epoch_anchored_is_our_own_anchor_mined() -> None:
    """Resending bytes the chain mined meanwhile is refused for the nonce: nothing is signed."""
    m = machine(confirmations=0)
    started(m, resumed())
    m.step(Read(NOT_ANCHORED), T)
    assert m.step(Sent(nonce_used=True), T) == ReadEpoch()
    assert m.step(Read(anchored()), T) == FindAnchor()
    m.step(Found(event(block=4)), T)
    assert m.step(Head(4), T) == Publish(INTENT, TX.hash, 4)


def test_a_used_nonce_twice_in_a_row_fails() -> None:
    m = machine()
    started(m, resumed())
    m.step(Read(NOT_ANCHORED), T)
    m.step(Sent(nonce_used=True), T)
    m.step(Read(NOT_ANCHORED), T)
    renewed = SignedTx(b"\x02again", b"\xcc" * 32, 8)
    m.step(Signed(renewed), T)
    m.step(Recorded(), T)
    action = m.step(Sent(nonce_used=True), T)
    assert isinstance(action, Fail) and isinstance(action.error, ChainError)
    assert "another program" in str(action.error)
    # The new intent was recorded: the next attempt resumes from it.
    assert m.intent is not None and m.intent.tx == renewed


def test_an_adopted_anchor_that_a_reorg_removed_is_signed_again() -> None:
    """An intent adopted from the chain has no signed bytes to send again."""
    adopted = Intent(
        PID, 0, SUMMARY, CHAIN.chain_id, CHAIN.contract, SignedTx(b"", TX.hash, -1), LISTED
    )
    m = machine()
    started(m, resumed(adopted))
    action = m.step(Read(NOT_ANCHORED), T)
    assert isinstance(action, Sign) and "no longer on chain" in action.reason


# Conflicts and refusals.


def test_another_root_on_chain_before_signing_fails_and_signs_nothing() -> None:
    m = machine()
    started(m, fresh())
    m.step(Built(SUMMARY, LISTED), T)
    action = m.step(Read(anchored(b"\x99" * 32)), T)
    assert isinstance(action, Fail) and isinstance(action.error, SettlementError)
    assert "already anchored with root 0x9999" in str(action.error)
    assert m.phase is Phase.DONE


def test_another_root_on_chain_while_confirming_fails() -> None:
    m = machine()
    started(m, resumed())
    action = m.step(Read(anchored(b"\x99" * 32)), T)
    assert isinstance(action, Fail) and isinstance(action.error, SettlementError)
    assert "another root" in str(action.error)


def test_our_root_on_chain_without_an_intent_is_adopted_not_sent() -> None:
    m = machine(confirmations=0)
    started(m, fresh())
    m.step(Built(SUMMARY, LISTED), T)
    assert m.step(Read(anchored()), T) == FindAnchor()
    adopted = Intent(
        PID, 0, SUMMARY, CHAIN.chain_id, CHAIN.contract, SignedTx(b"", TX.hash, -1), LISTED
    )
    assert m.step(Found(event()), T) == RecordIntent(adopted)
    assert m.step(Recorded(), T) == ReadEpoch()
    m.step(Read(anchored()), T)
    m.step(Found(event(block=9)), T)
    assert m.step(Head(9), T) == Publish(adopted, TX.hash, 9)


def test_our_root_on_chain_without_its_event_fails() -> None:
    m = machine()
    started(m, fresh())
    m.step(Built(SUMMARY, LISTED), T)
    m.step(Read(anchored()), T)
    action = m.step(Found(None), T)
    assert isinstance(action, Fail) and isinstance(action.error, ChainError)


def test_an_intent_for_another_chain_or_contract_is_not_sent() -> None:
    for other in (
        Intent(PID, 0, SUMMARY, 1, CHAIN.contract, TX, LISTED),
        Intent(PID, 0, SUMMARY, CHAIN.chain_id, f.address("other"), TX, LISTED),
    ):
        action = started(machine(), resumed(other))
        assert isinstance(action, Fail) and isinstance(action.error, SettlementError)
        assert "not this chain" in str(action.error)


@pytest.mark.parametrize(
    ("project", "error", "message"),
    [
        (None, NotFound, "not in the store"),
        (f.project("bob", payout=SENDER), SettlementError, "another key"),
        (f.project(payout=f.address("elsewhere")), SettlementError, "revise the project"),
    ],
)
def test_what_is_not_ours_to_anchor_is_refused(
    project: Record | None, error: type[Exception], message: str
) -> None:
    action = started(machine(), Loaded(project, (), INTENT, WALL))
    assert isinstance(action, Fail) and isinstance(action.error, error)
    assert message in str(action.error)


# Timed epochs: not before they close.

LENGTH = 604_800
TIMED = f.project(payout=SENDER, epoch_length=LENGTH)


def timed(epoch: int = 0) -> Anchoring:
    return Anchoring(
        PID, epoch, author=f.pub("alice"), chain=CHAIN, confirmations=0, poll_interval=INTERVAL
    )


def test_a_timed_epoch_is_not_anchored_before_it_closes() -> None:
    epoch = (
        2_900  # [2900 L, 2901 L): 2025-07-31 to 2025-08-07 (weeks since 1970 start on Thursdays)
    )
    end = (epoch + 1) * LENGTH
    for now in (epoch * LENGTH, end - 1, end, end + GRACE - 1):
        m = timed(epoch)
        action = started(m, Loaded(TIMED, (), None, now))
        assert isinstance(action, Fail) and isinstance(action.error, EpochOpen), now
        assert action.error.at == closes_at(LENGTH, epoch) == end + GRACE
        assert action.error.epoch == epoch
        assert "runs until 2025-08-07 00:00:00 UTC" in str(action.error)
        assert "anchored from 2025-08-07 00:05:00 UTC" in str(action.error)
        assert m.phase is Phase.DONE and m.intent is None
    # From the second it closes, as epoch closing has it.
    assert started(timed(epoch), Loaded(TIMED, (), None, end + GRACE)) == BuildTree()


def test_an_unfinished_or_earlier_anchor_of_an_open_epoch_goes_on() -> None:
    """An intent is resumed whatever the clock says (its transaction may be on chain); an epoch
    with a stored root was anchored already, on this chain or another."""
    intent = Intent(PID, 5, SUMMARY, CHAIN.chain_id, CHAIN.contract, TX, LISTED)
    assert started(timed(5), Loaded(TIMED, (), intent, 0.0)) == ReadEpoch()
    elsewhere = root(chain_id=1, epoch=5)
    assert started(timed(5), Loaded(TIMED, (elsewhere,), None, 0.0)) == BuildTree()


def test_the_intent_fixes_what_the_manifest_lists() -> None:
    m = machine()
    started(m, fresh())
    m.step(Built(SUMMARY, LISTED), T)
    m.step(Read(NOT_ANCHORED), T)
    action = m.step(Signed(TX), T)
    assert isinstance(action, RecordIntent) and action.intent.acceptances == LISTED
    assert Intent.decode(action.intent.encode()) == action.intent


# Published roots.


def test_a_published_anchor_the_chain_holds_is_done_without_sending() -> None:
    record = root()
    m = machine()
    assert started(m, Loaded(PROJECT, (root(b"\x01" * 32), record), None, WALL)) == FindAnchor()
    assert m.step(Found(event(block=4)), T) == Done(Anchored(PID, 0, SUMMARY, TX.hash, 4, record))


def test_a_published_anchor_with_an_intent_left_deletes_the_intent() -> None:
    """The run died between storing the epoch root and deleting the intent."""
    record = root()
    m = machine()
    started(m, Loaded(PROJECT, (record,), INTENT, WALL))
    assert m.step(Found(event()), T) == DeleteIntent(reason="epoch 0 is published already")
    assert m.step(Deleted(), T) == Done(Anchored(PID, 0, SUMMARY, TX.hash, 10, record))


def test_a_published_anchor_the_chain_lost_is_anchored_again() -> None:
    m = machine(confirmations=0)
    old = root(b"\x01" * 32)
    started(m, Loaded(PROJECT, (old,), None, WALL))
    action = m.step(Found(None), T)
    assert isinstance(action, BuildTree) and "does not hold: anchoring it again" in action.reason
    m.step(Built(SUMMARY, LISTED), T)
    assert m.step(Read(NOT_ANCHORED), T) == Sign(SUMMARY)
    m.step(Signed(TX), T)
    m.step(Recorded(), T)
    m.step(Sent(), T)
    m.step(Woke(), T)
    m.step(Read(anchored()), T)
    m.step(Found(event(block=2)), T)
    assert m.step(Head(2), T) == Publish(INTENT, TX.hash, 2)


def test_roots_of_other_authors_or_chains_are_not_ours() -> None:
    others = (
        root(chain_id=1),
        root(contract=f.address("other")),
        root(owner="bob"),
    )
    assert started(machine(), Loaded(PROJECT, others, None, WALL)) == BuildTree()


def test_the_confirmed_anchor_already_published_is_not_published_twice() -> None:
    """A published root names the tx, but the chain lost it and found it again (a reorg that
    mined it back): the intent resumed ends without a second epoch root."""
    record = root()
    m = machine(confirmations=0)
    started(m, Loaded(PROJECT, (record,), INTENT, WALL))
    m.step(Found(None), T)  # not held right now
    m.step(Read(anchored()), T)
    m.step(Found(event(block=3)), T)
    assert m.step(Head(3), T) == DeleteIntent()
    assert m.step(Deleted(), T) == Done(Anchored(PID, 0, SUMMARY, TX.hash, 3, record))


def test_an_event_out_of_turn_is_a_bug() -> None:
    m = machine()
    with pytest.raises(UnexpectedEvent):
        m.step(Woke(), T)
    m.start()
    with pytest.raises(UnexpectedEvent):
        m.step(Recorded(), T)
    with pytest.raises(UnexpectedEvent):
        m.start()


# Intents.


def test_an_intent_survives_its_encoding_and_a_damaged_one_is_named() -> None:
    assert Intent.decode(INTENT.encode()) == INTENT
    for damaged in (b"", b"{}", b"[1]", INTENT.encode().replace(b'"raw": "', b'"raw": "zz')):
        with pytest.raises(SettlementError, match="unreadable"):
            Intent.decode(damaged)
    key = intent_key(PID, 7)
    assert is_intent_key(key) and key.endswith((7).to_bytes(4, "big"))
    assert not is_intent_key(b"other")


# A simulated chain, and kills at random points.


@dataclass
class SimTx:
    hash: bytes
    nonce: int
    root: bytes | None  # None: a transaction of another program using the same wallet


@dataclass
class SimChain:
    """One wallet's view of a chain: blocks of transactions, a mempool that may lose them,
    reorgs."""

    rng: random.Random
    blocks: list[list[SimTx]] = field(default_factory=list)
    pool: list[SimTx] = field(default_factory=list)
    signed: int = 0

    def nonce(self) -> int:
        return sum(len(b) for b in self.blocks)

    def pending(self) -> int:
        nonce = self.nonce()
        while any(t.nonce == nonce for t in self.pool):
            nonce += 1
        return nonce

    def anchor(self) -> tuple[SimTx, int] | None:
        # The first anchor mined is the epoch's; the contract refuses any later one.
        for number, block in enumerate(self.blocks, start=1):
            for tx in block:
                if tx.root is not None:
                    return tx, number
        return None

    def state(self) -> EpochState:
        found = self.anchor()
        return NOT_ANCHORED if found is None else anchored(found[0].root or b"")

    def event(self) -> Anchor | None:
        found = self.anchor()
        if found is None or self.rng.random() < 0.1:  # the log index lags, sometimes
            return None
        return event(found[0].hash, found[1])

    def sign(self, summary: Summary) -> SignedTx:
        self.signed += 1
        digest = hashlib.sha256(b"tx %d" % self.signed).digest()
        self._txs[digest] = SimTx(digest, self.pending(), summary.root)
        return SignedTx(b"raw" + digest, digest, self.pending())

    def send(self, tx: SignedTx) -> bool:
        """Returns False when the chain refuses the bytes for their nonce."""
        sim = self._txs[tx.hash]
        if any(t.hash == sim.hash for t in self.pool) or any(
            t.hash == sim.hash for b in self.blocks for t in b
        ):
            return True
        if sim.nonce < self.nonce() or any(t.nonce == sim.nonce for t in self.pool):
            return False
        self.pool.append(sim)
        return True

    def mine(self) -> None:
        nonce = self.nonce()
        block = [t for t in self.pool if t.nonce == nonce][:1]
        self.pool = [t for t in self.pool if t not in block]
        self.blocks.append(block)

    def reorg(self) -> None:
        depth = self.rng.randint(1, min(4, len(self.blocks)))
        dropped = [t for b in self.blocks[-depth:] for t in b]
        del self.blocks[-depth:]
        for tx in dropped:
            # The other program sends its transactions again; ours may be lost.
            if tx.root is None or self.rng.random() < 0.5:
                self.pool.append(tx)

    def steal(self) -> None:
        self.signed += 1
        digest = hashlib.sha256(b"other %d" % self.signed).digest()
        self.pool.append(SimTx(digest, self.pending(), None))

    def drop(self) -> None:
        # A mempool evicts transactions it holds too long, or restarts empty.
        self.pool = [t for t in self.pool if t.root is None]

    def perturb(self, calm: bool) -> None:
        roll = self.rng.random()
        if calm or roll < 0.5:
            self.mine()
        elif roll < 0.65 and self.blocks:
            self.reorg()
        elif roll < 0.75:
            self.steal()
        elif roll < 0.85:
            self.drop()

    def __post_init__(self) -> None:
        self._txs: dict[bytes, SimTx] = {}


@dataclass
class SimStore:
    """What the store keeps across kills: the intent, the roots and manifests published, and
    the acceptances stored, to which more arrive as time passes (a tree built later lists
    more)."""

    intent: Intent | None = None
    roots: list[Record] = field(default_factory=list)
    manifests: dict[bytes, tuple[Record, ...]] = field(default_factory=dict)
    accepted: list[bytes] = field(default_factory=lambda: list(LISTED))

    def arrive(self, rng: random.Random) -> None:
        if rng.random() < 0.2:
            self.accepted.append(hashlib.sha256(b"late %d" % len(self.accepted)).digest())


def summary_of(ids: tuple[bytes, ...]) -> Summary:
    """A simulated tree's summary: its root a hash of what it lists."""
    return Summary(hashlib.sha256(b"".join(ids)).digest(), len(ids), len(ids))


class Checked(AssertionError):
    pass


def perform(action: Action, chain: SimChain, store: SimStore, calm: bool) -> Event:
    """What the settlement service does for an action, against the simulated chain and store,
    checking the guarantees on the way."""
    match action:
        case Load():
            return Loaded(PROJECT, tuple(store.roots), store.intent, WALL)
        case FindAnchor():
            return Found(chain.event())
        case BuildTree():
            # As the service builds it: from the manifest of a stored root of the epoch (it
            # was anchored before: the chain lost it, or a kill came between deleting the
            # intent and the end), else from the acceptances stored now.
            if store.roots:
                ids = listed(store.manifests[store.roots[0].expect(EpochRoot).manifest])
            else:
                ids = tuple(sorted(store.accepted))
            return Built(summary_of(ids), ids)
        case ReadEpoch():
            return Read(chain.state())
        case ReadHead():
            return Head(len(chain.blocks))
        case Sign(summary=summary):
            if chain.anchor() is not None:
                raise Checked("signed a second anchor while the chain holds one")
            return Signed(chain.sign(summary))
        case RecordIntent(intent=intent):
            store.intent = intent
            return Recorded()
        case Send(tx=tx):
            if store.intent is None or store.intent.tx != tx:
                raise Checked("sent bytes that are not the recorded intent's")
            return Sent(nonce_used=not chain.send(tx))
        case Wait():
            chain.perturb(calm)
            store.arrive(chain.rng)
            return Woke()
        case Publish(intent=intent, tx_hash=tx_hash):
            # The manifest of the intent's list and the root naming it, in one write.
            parts = manifest(
                PID,
                0,
                intent.acceptances,
                created_at=f.T0,
                sign=lambda body: sign(body, f.key("alice")),
                per_part=2,
            )
            summary = intent.summary
            record = root(
                tx_hash,
                root=summary.root,
                leaf_count=summary.leaf_count,
                total_weight=summary.total_weight,
                manifest=parts[0].id,
                parts=len(parts),
            )
            store.manifests[parts[0].id] = parts
            store.roots.append(record)
            return Published(record)
        case DeleteIntent():
            store.intent = None
            return Deleted()
    raise AssertionError(action)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32), confirmations=st.integers(0, 3))
def test_random_histories_with_kills_end_in_one_published_anchor(
    seed: int, confirmations: int
) -> None:
    rng = random.Random(seed)
    chain, store = SimChain(rng), SimStore()
    steps = 0
    while True:
        m = machine(confirmations=confirmations)
        action, now = m.start(), T
        while not isinstance(action, (Done, Fail)):
            steps += 1
            assert steps < 5000, "no end in sight"
            calm = steps > 300
            now += INTERVAL if isinstance(action, Wait) else 0
            happened = perform(action, chain, store, calm)
            if not calm and rng.random() < 0.03:
                # Killed after the action, before the machine learnt what happened: the next
                # attempt starts from what the store kept.
                chain.perturb(calm)
                break
            action = m.step(happened, now)
        if isinstance(action, Done):
            break
        if isinstance(action, Fail):
            # A failed attempt (two used nonces in a row) is retried by the next round.
            assert isinstance(action.error, ChainError), action.error
    assert isinstance(action, Done)
    found = chain.anchor()
    assert found is not None
    assert action.anchored.tx_hash == found[0].hash
    (published,) = [r for r in store.roots if r.expect(EpochRoot).tx_hash == found[0].hash]
    assert store.intent is None
    # The published manifest lists exactly what the anchored root was built from, whatever
    # acceptances arrived between building, sending, kills and publishing.
    ids = listed(store.manifests[published.expect(EpochRoot).manifest])
    assert summary_of(ids).root == found[0].root == published.expect(EpochRoot).root


async def test_resends_happen_at_exact_times_on_a_mock_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The service sleeps until each `Wait`; a chain that never mines sees the same bytes at
    0, 20, 40 and 60 polls, in virtual time."""
    chain = SimChain(random.Random(0))
    store = SimStore(intent=INTENT)
    m = machine()
    action = m.start()
    sends: list[float] = []
    start = trio.current_time()
    while len(sends) < 4:
        match action:
            case Wait(at=at):
                await trio.sleep_until(at)
                ev: Event = Woke()
            case Send():
                # The chain takes the bytes and never mines them.
                sends.append(trio.current_time() - start)
                ev = Sent()
            case _:
                ev = perform(action, chain, store, calm=False)
        action = m.step(ev, trio.current_time())
    assert sends == [i * RESEND_AFTER * INTERVAL for i in range(4)]
    assert not chain.blocks


# Epoch closing.


def test_epochs_close_grace_seconds_after_they_end() -> None:
    length = 3600
    project = Owned(PID, length, (0, 1, 2, 5))
    end_of_1 = 2 * length
    assert closes_at(length, 1) == end_of_1 + GRACE
    # One second before epoch 1 closes: only epoch 0 is due, and 1 closes next.
    plan = due([project], end_of_1 + GRACE - 1)
    assert plan.due == ((PID, 0),) and plan.wake == end_of_1 + GRACE
    # At the very second: epochs 0 and 1.
    assert due([project], end_of_1 + GRACE).due == ((PID, 0), (PID, 1))
    # Long after: every accepted epoch, and nothing to wake for.
    plan = due([project], 100 * length)
    assert plan.due == ((PID, 0), (PID, 1), (PID, 2), (PID, 5)) and plan.wake is None


def test_published_epochs_and_projects_without_a_length_are_not_due() -> None:
    other = f.pid(name="other")
    projects = [
        Owned(PID, 60, (0, 1, 2), frozenset({1})),
        Owned(other, 0, (0, 1)),
        Owned(f.pid(name="later"), 10**9, (3,)),
    ]
    plan = due(projects, 10_000)
    assert plan.due == ((PID, 0), (PID, 2))
    assert plan.wake == closes_at(10**9, 3)


def test_the_last_closed_epoch() -> None:
    assert last_due(0, 10**9) == -1
    assert last_due(100, GRACE + 99) == -1
    assert last_due(100, GRACE + 100) == 0
    assert last_due(100, GRACE + 250) == 1
    assert last_due(100, 0) == -1
    for now in range(0, 2000, 7):
        last = last_due(100, now)
        assert last == -1 or closes_at(100, last) <= now < closes_at(100, last + 1)
