"""The decisions of anchoring an epoch, without I/O: events in, actions out.

Theory of operation
-------------------

`Anchoring` is the state machine of one anchor: one (project, epoch) on one chain and contract.
It does no I/O and reads no clock. The settlement service (node/chain/settlement.py) asks it for
an action, performs it (reads the store or the chain, signs, writes, sends, sleeps) and feeds
back what happened as an event, with the current time, until the action is `Done` or `Fail`.
Every action is named for what to do and every event for what happened:

    Load         -> Loaded(project, epoch roots, intent, now)  the store's view, wall time
    FindAnchor   -> Found(anchor or None)                      the chain's Anchored event
    BuildTree    -> Built(summary, acceptances)                the tree of the stored records
    ReadEpoch    -> Read(state)                                the contract's epoch
    ReadHead     -> Head(block)                                the chain's head block
    Sign         -> Signed(tx)                                 an anchor tx, signed, not sent
    RecordIntent -> Recorded()                                 the intent, synced to disk
    Send         -> Sent(nonce_used)                           the raw tx broadcast (or refused)
    Wait(at)     -> Woke()                                     time has reached `at`
    Publish      -> Published(record)                          manifest and root, signed, stored
    DeleteIntent -> Deleted()

The path of a fresh anchor is intent -> sent -> confirmed -> published:

1. Load. If this identity published a root of the epoch on this chain and the chain holds the
   transaction it names, the anchor is done (a stale intent left by a crash is deleted first).
   If the chain does not hold it (a reorg deeper than the confirmations, a dev chain started
   afresh), the epoch is anchored again.
2. Without an intent: an epoch of a project with an epoch length that has not closed yet (its
   end plus GRACE, `node.chain.closing`) is refused (`EpochOpen`, saying when it closes) unless
   a root of it is stored already: acceptances may still come into it. Then build the tree: from
   the manifest of a stored root of the epoch if there is one (the epoch was anchored before,
   on another chain or on a chain that lost it: it covers what it covered), else from the
   stored acceptances in force. Read the epoch on chain. Anchored with another root: fail
   (`SettlementError`). Anchored with ours (an earlier run lost its intent): adopt the
   transaction of its Anchored event. Not anchored: sign.
3. Record the intent (the signed bytes, and the ids of the acceptances the tree was built from:
   the manifest) BEFORE sending, so that a crash at any later point resumes from it instead of
   signing a second anchor, and acceptances that arrive meanwhile cannot change what it covers.
4. Send the signed bytes, then poll: read the epoch every `poll_interval`. Not anchored: send
   the same bytes again every `resend_after` polls (the chain may have dropped them); a second
   copy can never be mined twice, since its nonce is used once. Anchored with our root: find the
   Anchored event and the head; once the event's block has `confirmations` blocks on top, go on.
   Anchored a moment ago and not any more: a reorg dropped it; send again at once. An intent
   resumed after a restart starts with a poll, and is sent at once if the chain lacks it.
5. A transaction that can never be mined (the chain refused it because another transaction of
   the wallet used its nonce, or an adopted transaction that a reorg removed, of which there are
   no signed bytes) is replaced: if the epoch is still not anchored, sign again, record the new
   intent, send it. Twice in a row a used nonce is a failure (`ChainError`).
6. Publish the manifest of the intent's acceptances and the epoch root naming it and the
   transaction, in one write (unless this identity published the root already; a manifest that
   a stored root names already is reused), then delete the intent. Nodes store the root only
   with its whole manifest, so the epoch is anchored for every node at once, with what it covers.

An intent made for another chain or contract fails (`SettlementError`) rather than being sent
where it was not meant to go. Errors of the I/O itself (the chain down, the store failing) are
the service's: they end the attempt with the intent kept, and the next attempt resumes.

The other decision of the settlement service, which epochs to close and when, is
`node.chain.closing`; the values an anchor is made of (its intent, its result) are in
`node.chain.intents`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

from node.chain.client import Anchor, EpochState, SignedTx
from node.chain.closing import GRACE, closes_at
from node.chain.intents import Anchored, ChainRef, Intent, published
from node.errors import ChainError, EpochOpen, NodeError, NotFound, SettlementError
from protocol import Project, Record
from protocol.epoch import Summary

# A sent anchor not mined after this many polls is sent again (the chain may have dropped it).
RESEND_AFTER = 20

# Actions: what the service is to do next. `reason`, when set, says why the action repeats or
# replaces earlier work (a resend, a new signature); the service logs it as a warning.


@dataclass(frozen=True, slots=True)
class Action:
    """Something the service is to do."""

    reason: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class Load(Action):
    """Read the project in force, the epoch's roots and its intent from the store."""


@dataclass(frozen=True, slots=True)
class FindAnchor(Action):
    """Find the epoch's Anchored event on chain, under the sender."""


@dataclass(frozen=True, slots=True)
class BuildTree(Action):
    """Build the epoch's tree (from a stored root's manifest, else from the stored acceptances
    in force), and keep its dump."""


@dataclass(frozen=True, slots=True)
class ReadEpoch(Action):
    """Read the epoch as the contract stores it under the sender."""


@dataclass(frozen=True, slots=True)
class ReadHead(Action):
    """Read the chain's head block number."""


@dataclass(frozen=True, slots=True)
class Sign(Action):
    """Sign (without sending) an anchor of `summary` from the sender's next nonce."""

    summary: Summary


@dataclass(frozen=True, slots=True)
class RecordIntent(Action):
    """Write the intent to the store, synced, replacing any earlier one of the epoch."""

    intent: Intent


@dataclass(frozen=True, slots=True)
class Send(Action):
    """Broadcast the signed transaction's raw bytes."""

    tx: SignedTx


@dataclass(frozen=True, slots=True)
class Wait(Action):
    """Sleep until time `at` (on the clock the events' `now` comes from)."""

    at: float


@dataclass(frozen=True, slots=True)
class Publish(Action):
    """Sign, store and publish in one write the manifest of `intent`'s acceptances and the epoch
    root naming it and the anchor's transaction."""

    intent: Intent
    tx_hash: bytes
    block_number: int


@dataclass(frozen=True, slots=True)
class DeleteIntent(Action):
    """Delete the epoch's intent from the store, synced."""


@dataclass(frozen=True, slots=True)
class Done(Action):
    """The epoch is anchored, confirmed and published; nothing is left to do."""

    anchored: Anchored


@dataclass(frozen=True, slots=True)
class Fail(Action):
    """Stop with `error`; the intent, if any, stays in the store."""

    error: NodeError


# Events: what the service saw when it performed an action.


@dataclass(frozen=True, slots=True)
class Loaded:
    """The store's view of the epoch: the project in force, every root of the epoch (any
    author, chain and contract), the intent, and the wall time (`now` of the events is the
    service's own clock, which need not be wall time)."""

    project: Record | None
    roots: tuple[Record, ...]
    intent: Intent | None
    now: float


@dataclass(frozen=True, slots=True)
class Found:
    anchor: Anchor | None


@dataclass(frozen=True, slots=True)
class Built:
    """The tree's summary, and the ids of the acceptances it was built from, sorted."""

    summary: Summary
    acceptances: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Read:
    state: EpochState


@dataclass(frozen=True, slots=True)
class Head:
    block: int


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
class Published:
    record: Record


@dataclass(frozen=True, slots=True)
class Deleted:
    pass


Event = Loaded | Found | Built | Read | Head | Signed | Recorded | Sent | Woke | Published | Deleted


class Phase(enum.Enum):
    """Where the machine is: each phase waits for one kind of event."""

    NEW = "new"
    LOADING = "loading"  # Loaded
    CHECKING = "checking"  # Found: does the chain hold a published anchor?
    BUILDING = "building"  # Built
    PREPARING = "preparing"  # Read: anchored before we sign?
    ADOPTING = "adopting"  # Found: the anchor an earlier run sent
    SIGNING = "signing"  # Signed
    RECORDING = "recording"  # Recorded
    SENDING = "sending"  # Sent
    WAITING = "waiting"  # Woke
    POLLING = "polling"  # Read
    FINDING = "finding"  # Found: the event of the anchor seen on chain
    COUNTING = "counting"  # Head: confirmations
    PUBLISHING = "publishing"  # Published
    DELETING = "deleting"  # Deleted
    DONE = "done"


class UnexpectedEvent(AssertionError):
    """Raised when the service feeds an event the machine is not waiting for (a bug)."""


class Anchoring:
    """The anchoring of one epoch of one project on one chain, as a state machine.

    Args:
        project_id, epoch: the epoch to anchor.
        author: this node's identity key (owner of the project, signer of epoch roots).
        chain: the chain, contract and wallet this node anchors on.
        confirmations: blocks on top of the anchor's block before it is final.
        poll_interval: time between two reads of the chain while waiting.
        resend_after: polls without the anchor on chain before its bytes are sent again.
    """

    def __init__(
        self,
        project_id: bytes,
        epoch: int,
        *,
        author: bytes,
        chain: ChainRef,
        confirmations: int,
        poll_interval: float,
        resend_after: int = RESEND_AFTER,
    ) -> None:
        self.project_id = project_id
        self.epoch = epoch
        self.author = author
        self.chain = chain
        self.confirmations = confirmations
        self.poll_interval = poll_interval
        self.resend_after = resend_after
        self.phase = Phase.NEW
        self._project: Record | None = None
        self._published: list[Anchored] = []
        # The intent in force (recorded in the store), and one about to be recorded.
        self._intent: Intent | None = None
        self._pending: Intent | None = None
        self._summary: Summary | None = None
        self._acceptances: tuple[bytes, ...] = ()
        self._found: Anchor | None = None
        self._record: Record | None = None
        self._result: Anchored | None = None
        # Polls since the intent's bytes were last sent; whether the last poll saw the anchor.
        self._polls = 0
        self._seen = False
        # The intent's transaction can never be mined: its nonce was used by another one, or
        # it was adopted and there are no bytes of it to send again.
        self._dead = False
        # Consecutive sends refused for a used nonce.
        self._nonce_refusals = 0
        # The wall time of Load, and whether the epoch has a stored root (of any chain).
        self._wall = 0.0
        self._rooted = False

    @property
    def intent(self) -> Intent | None:
        """The intent recorded in the store, as far as the machine knows."""
        return self._intent

    def start(self) -> Action:
        """Returns the first action."""
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
            case Found() if self.phase is Phase.CHECKING:
                return self._checked(event.anchor)
            case Found() if self.phase is Phase.ADOPTING:
                return self._adopt(event.anchor)
            case Found():
                self._expect(Phase.FINDING)
                return self._found_event(event.anchor, now)
            case Built():
                self._expect(Phase.BUILDING)
                self._summary = event.summary
                self._acceptances = event.acceptances
                self.phase = Phase.PREPARING
                return ReadEpoch()
            case Read() if self.phase is Phase.PREPARING:
                return self._prepare(event.state)
            case Read():
                self._expect(Phase.POLLING)
                return self._poll(event.state, now)
            case Head():
                self._expect(Phase.COUNTING)
                return self._count(event.block, now)
            case Signed():
                self._expect(Phase.SIGNING)
                return self._new_intent(event.tx)
            case Recorded():
                self._expect(Phase.RECORDING)
                return self._recorded()
            case Sent():
                self._expect(Phase.SENDING)
                return self._sent(event.nonce_used, now)
            case Woke():
                self._expect(Phase.WAITING)
                self.phase = Phase.POLLING
                return ReadEpoch()
            case Published():
                self._expect(Phase.PUBLISHING)
                self._record = event.record
                self.phase = Phase.DELETING
                return DeleteIntent()
            case Deleted():
                self._expect(Phase.DELETING)
                self._intent = None
                return self._done()
        raise UnexpectedEvent(f"{event!r} in phase {self.phase.value}")

    # Transitions.

    def _loaded(self, event: Loaded) -> Action:
        self._project = event.project
        self._intent = event.intent
        self._wall = event.now
        self._rooted = bool(event.roots)
        if event.intent is not None:
            self._summary = event.intent.summary
            self._acceptances = event.intent.acceptances
            self._dead = not event.intent.tx.raw
        self._published = published(
            event.roots, self.author, self.chain.chain_id, self.chain.contract
        )
        if self._published:
            self.phase = Phase.CHECKING
            return FindAnchor()
        return self._proceed()

    def _checked(self, anchor: Anchor | None) -> Action:
        if anchor is not None:
            for known in self._published:
                if known.tx_hash == anchor.tx_hash:
                    self._found = anchor
                    self._record = known.record
                    self._summary = known.summary
                    if self._intent is not None:
                        # A crash between publishing and deleting the intent: finish.
                        self.phase = Phase.DELETING
                        return DeleteIntent(reason=f"epoch {self.epoch} is published already")
                    return self._done()
        names = ", ".join("0x" + p.tx_hash.hex() for p in self._published)
        return self._proceed(
            f"epoch {self.epoch} was published in tx {names}, which the chain does not hold: "
            "anchoring it again"
        )

    def _proceed(self, reason: str = "") -> Action:
        """Goes on from the store's view: checks the project, then resumes or starts anew."""
        refused = self._refusal()
        if refused is not None:
            return self._fail(refused)
        intent = self._intent
        if intent is None:
            early = self._early()
            if early is not None:
                return self._fail(early)
            self.phase = Phase.BUILDING
            return BuildTree(reason=reason)
        if (intent.chain_id, intent.contract) != (self.chain.chain_id, self.chain.contract):
            return self._fail(
                SettlementError(
                    f"an unfinished anchor of epoch {intent.epoch} was made for chain "
                    f"{intent.chain_id} contract 0x{intent.contract.hex()}, not this chain"
                )
            )
        self.phase = Phase.POLLING
        return ReadEpoch(reason=reason)

    def _refusal(self) -> NodeError | None:
        """Returns why this node may not anchor the project's epochs, or None if it may."""
        project = self._project
        if project is None:
            return NotFound(f"project {self.project_id.hex()} is not in the store")
        body = project.expect(Project)
        if project.author != self.author:
            return SettlementError(
                f"project {body.name!r} belongs to another key: only its owner anchors its epochs"
            )
        if body.payout != self.chain.sender:
            return SettlementError(
                f"the project anchors from 0x{body.payout.hex()}, but this node's wallet is "
                f"0x{self.chain.sender.hex()}: revise the project's payout address first"
            )
        return None

    def _early(self) -> NodeError | None:
        """Returns why the epoch may not be anchored yet, or None if it may.

        An epoch of a project with an epoch length closes at its end plus GRACE, as epoch
        closing has it: until then acceptances may still come into it, and an anchor now would
        leave them late. An epoch with a stored root was anchored already (and the tree comes
        from its manifest), so it is not refused.
        """
        project = self._project
        assert project is not None
        length = project.expect(Project).epoch_length
        if length == 0 or self._rooted:
            return None
        at = closes_at(length, self.epoch)
        if self._wall >= at:
            return None
        end = (self.epoch + 1) * length
        return EpochOpen(
            f"epoch {self.epoch} of project {project.expect(Project).name!r} runs until "
            f"{_when(end)}: it can be anchored from {_when(at)} (its end plus {GRACE} s for "
            "clock skew); the running node anchors it by itself then",
            epoch=self.epoch,
            at=at,
        )

    def _prepare(self, state: EpochState) -> Action:
        summary = self._expect_summary()
        if state.anchored and state.root != summary.root:
            return self._fail(
                SettlementError(
                    f"epoch {self.epoch} is already anchored with root 0x{state.root.hex()}, "
                    f"but the stored acceptances give 0x{summary.root.hex()}"
                )
            )
        if state.anchored:
            # Anchored by an earlier run that lost its intent (a store restored from backup):
            # adopt that transaction instead of sending another.
            self.phase = Phase.ADOPTING
            return FindAnchor()
        self.phase = Phase.SIGNING
        return Sign(summary)

    def _adopt(self, anchor: Anchor | None) -> Action:
        if anchor is None:
            return self._fail(
                ChainError(f"epoch {self.epoch} is anchored but its Anchored event is missing")
            )
        return self._new_intent(SignedTx(b"", anchor.tx_hash, -1))

    def _new_intent(self, tx: SignedTx) -> Action:
        summary = self._expect_summary()
        self._pending = Intent(
            self.project_id,
            self.epoch,
            summary,
            self.chain.chain_id,
            self.chain.contract,
            tx,
            self._acceptances,
        )
        self.phase = Phase.RECORDING
        return RecordIntent(self._pending)

    def _recorded(self) -> Action:
        intent = self._pending
        assert intent is not None
        self._intent, self._pending = intent, None
        self._dead = not intent.tx.raw
        self._polls = 0
        if self._dead:
            self.phase = Phase.POLLING
            return ReadEpoch()
        self.phase = Phase.SENDING
        return Send(intent.tx)

    def _sent(self, nonce_used: bool, now: float) -> Action:
        if not nonce_used:
            self._nonce_refusals = 0
            return self._wait(now)
        self._nonce_refusals += 1
        if self._nonce_refusals > 1:
            return self._fail(
                ChainError(
                    f"the anchor of epoch {self.epoch} was signed again and its new nonce was "
                    "used too: does another program send from this wallet?"
                )
            )
        # This transaction can never be mined. Whether another one anchored the epoch (our own,
        # mined meanwhile) or it must be signed again, the next poll says.
        self._dead = True
        self.phase = Phase.POLLING
        return ReadEpoch()

    def _poll(self, state: EpochState, now: float) -> Action:
        intent = self._expect_intent()
        reason = ""
        if self._seen and not state.anchored:
            # Anchored a moment ago, not any more: a reorg dropped the block. Send again now.
            reason = f"a reorg dropped the anchor of epoch {self.epoch}: sending it again"
            self._polls = 0
        self._seen = state.anchored
        if state.anchored:
            if state.root != intent.summary.root:
                return self._fail(
                    SettlementError(
                        f"epoch {self.epoch} was anchored with another root "
                        f"(0x{state.root.hex()}) than this node's intent"
                    )
                )
            self.phase = Phase.FINDING
            return FindAnchor()
        if self._dead:
            why = (
                f"the anchor of epoch {self.epoch} this node adopted (tx 0x{intent.tx.hash.hex()}) "
                "is no longer on chain"
                if not intent.tx.raw
                else f"nonce {intent.tx.nonce} of the anchor of epoch {self.epoch} "
                f"(tx 0x{intent.tx.hash.hex()}) was used by another transaction"
            )
            self.phase = Phase.SIGNING
            return Sign(intent.summary, reason=why + ": signing it again")
        if self._polls % self.resend_after == 0:
            # Not anchored: never sent, dropped by a reorg, or not mined yet. Sending the same
            # signed bytes again is harmless in every case.
            if self._polls and not reason:
                reason = (
                    f"the anchor of epoch {self.epoch} is not mined {self.resend_after} polls "
                    "after it was sent: sending it again"
                )
            self.phase = Phase.SENDING
            return Send(intent.tx, reason=reason)
        return self._wait(now)

    def _found_event(self, anchor: Anchor | None, now: float) -> Action:
        if anchor is None:
            # The contract holds the anchor but the node's log index does not show it yet.
            return self._wait(now)
        self._found = anchor
        self.phase = Phase.COUNTING
        return ReadHead()

    def _count(self, head: int, now: float) -> Action:
        found = self._found
        assert found is not None
        if head - found.block_number < self.confirmations:
            return self._wait(now)
        intent = self._expect_intent()
        for known in self._published:
            if known.tx_hash == found.tx_hash:
                self._record = known.record
                self.phase = Phase.DELETING
                return DeleteIntent()
        self.phase = Phase.PUBLISHING
        return Publish(intent, found.tx_hash, found.block_number)

    def _wait(self, now: float) -> Action:
        self._polls += 1
        self.phase = Phase.WAITING
        return Wait(now + self.poll_interval)

    def _done(self) -> Action:
        found, record, summary = self._found, self._record, self._summary
        assert found is not None and record is not None and summary is not None
        self._result = Anchored(
            self.project_id, self.epoch, summary, found.tx_hash, found.block_number, record
        )
        self.phase = Phase.DONE
        return Done(self._result)

    def _fail(self, error: NodeError) -> Action:
        self.phase = Phase.DONE
        return Fail(error)

    # Checks.

    def _expect(self, phase: Phase) -> None:
        if self.phase is not phase:
            raise UnexpectedEvent(f"in phase {self.phase.value}, not {phase.value}")

    def _expect_summary(self) -> Summary:
        assert self._summary is not None, "no tree yet"
        return self._summary

    def _expect_intent(self) -> Intent:
        assert self._intent is not None, "no intent recorded"
        return self._intent


def _when(seconds: float) -> str:
    """Returns a Unix time as an ISO 8601 UTC date a person reads."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
