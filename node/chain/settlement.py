"""The settlement service: closes and anchors epochs, funds them, claims shares.

The decisions of anchoring and of epoch closing are in `node.chain.anchoring` and
`node.chain.closing`, a sans-I/O core (the former's opening comment is the theory of
operation). This module performs the actions the core asks for and feeds back what happened:
store reads and Merkle trees through the node's gateway (reader threads), intent writes through
its writer, chain calls in threads of their own, waits on trio's clock. No store call and no
tree build runs on the event loop.

Anchoring never loses or repeats an anchor across a crash at any point, because the intent (the
signed transaction, and the list of acceptances its tree was built from) is synced to the store
before it is sent, and deleted only after the manifest of that list and the epoch root naming
the confirmed transaction are stored, in one write. On start, and every round after, the service
resumes each intent a previous run left from what the chain says.

`run` is the service: every round it resumes unfinished anchors, then anchors the ended epochs
of the projects this node owns (after a grace period for clock skew). A failure (the chain down,
the store failing, an epoch that cannot be anchored) is logged and tried again the next round;
it never ends the service.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import trio

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
    Wait,
    Woke,
)
from node.chain.anchors import published_anchors, senders
from node.chain.client import ETHER, ChainClient, NonceUsed, TokenInfo, checksum
from node.chain.closing import CLOSE_INTERVAL, GRACE, Owned, Plan, due, last_due
from node.chain.executor import Executor
from node.chain.intents import Anchored, ChainRef, Intent, intent_key, is_intent_key, published
from node.chain.treasury import Books, Funding, Payment, Treasury
from node.chain.trees import EpochTree, standing_of, stored_tree
from node.errors import LateAcceptance, NodeError, NotFound, SettlementError, WrongChain
from node.governance import executions, governance_of, owner_tree
from protocol import (
    Acceptance,
    Contribution,
    EmptyTree,
    EpochRoot,
    Project,
    ProtocolError,
    Record,
)
from protocol.epoch import Status, Summary, listed, manifest, manifest_parts
from protocol.merkle import Leaf, MerkleTree
from protocol.records import project_id
from protocol.topics import META
from storage import StorageError, Store
from storage.store import MAX_LIMIT

if TYPE_CHECKING:
    from trio_typing import TaskStatus

    from node.gateway import Gateway
    from node.keys import Identity
    from node.net.node import Node

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = [
    "CLOSE_INTERVAL",
    "GRACE",
    "RESEND_AFTER",
    "Anchored",
    "Claim",
    "EpochStatus",
    "Funding",
    "Owed",
    "Payment",
    "Settlement",
    "Share",
    "project_id_of",
]

# What a round of the service may meet and shrug off: the chain, the store, the records.
EXPECTED = (NodeError, StorageError, ProtocolError)


@dataclass(frozen=True, slots=True)
class EpochStatus:
    """What the node knows of one epoch of a project, locally and on the chain."""

    epoch: int
    leaves: int
    total_weight: int
    root: bytes
    anchored: bool
    pending: bool
    tx_hash: bytes | None
    funded: int
    paid: int
    # Where the owner's epoch roots say the epoch is anchored, when not on this node's chain.
    elsewhere: WrongChain | None = None
    # The books of every token the epoch was funded in (ether's too); `funded` and `paid`
    # above are ether's.
    tokens: tuple[Books, ...] = ()


@dataclass(frozen=True, slots=True)
class Claim:
    """A paid claim: what went to whom, in which transaction."""

    contribution_id: bytes
    payout: bytes
    # What was paid in ether (0 if nothing), and the first transaction of the claim.
    amount: int
    tx_hash: bytes
    # Every token paid, ether included, each in its own transaction.
    payments: tuple[Payment, ...] = ()


@dataclass(frozen=True, slots=True)
class Share:
    """One accepted contribution's standing in its epoch."""

    contribution_id: bytes
    project_id: bytes
    epoch: int
    weight: int
    payout: bytes
    anchored: bool
    claimable: int
    claimed: int
    # Where the owner's epoch roots say the epoch is anchored, when not on this node's chain.
    elsewhere: WrongChain | None = None
    # What is claimable and claimed in each token the epoch was funded in (ether first, always,
    # once anchored); `claimable` and `claimed` above are ether's.
    tokens: tuple[Owed, ...] = ()


@dataclass(frozen=True, slots=True)
class Owed:
    """One token's part of a share: what a claim would pay now, and what was paid so far."""

    token: TokenInfo
    claimable: int
    claimed: int


class Settlement:
    """Anchoring, funding and claiming for one node, on one chain.

    Args:
        node: the running node (its store and gateway, and `submit` to publish epoch roots).
        identity: the keys that sign epoch roots (Ed25519) and transactions (the wallet).
        chain: the chain client; its account must be the identity's wallet.
        data_dir: where the tree dumps of anchored epochs are kept (`epochs/`).
        clock: wall time, for epoch boundaries and the epoch roots' `created_at`.
        auto_close: close ended epochs of projects with an epoch length by themselves.
        interval: the longest time between two rounds of `run`.
    """

    def __init__(
        self,
        node: Node,
        identity: Identity,
        chain: ChainClient,
        data_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        auto_close: bool = True,
        interval: float = CLOSE_INTERVAL,
    ) -> None:
        self.node = node
        self.identity = identity
        self.chain = chain
        self.dumps = Path(data_dir) / "epochs"
        self.clock = clock
        self.auto_close = auto_close
        # A proposal that arrives by gossip is seen at the next round: within the settle time
        # at most, so that a short one (the demo's) is not stretched to CLOSE_INTERVAL.
        self.interval = min(interval, max(1.0, chain.config.settle))
        self._locks: dict[tuple[bytes, int], trio.Lock] = {}
        # The ids of this node's projects, and the meta topic's record count when they were
        # listed: the list is made again only when a project or profile has arrived since.
        self._own: tuple[bytes, ...] = ()
        self._own_stamp = -1
        # Epochs known to be published by this node on this chain: records are never removed,
        # so epoch closing need not read their roots again.
        self._closed: set[tuple[bytes, int]] = set()
        # What the last round of `run` failed on, and an event set when a round ends.
        self.errors: list[BaseException] = []
        self._round_done = trio.Event()
        # Funding, pools and per-token books.
        self.treasury = Treasury(self)
        # Decisions of this node's proposals, and the execution of passed allocations.
        self.executor = Executor(self)

    @property
    def store(self) -> Store:
        return self.node.store

    @property
    def gateway(self) -> Gateway:
        return self.node.gateway

    # The service.

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Resumes the anchors a previous run left unfinished, then closes epochs as they end.

        Runs until cancelled. A round that fails (the chain down, the store failing) only
        delays the work: the next round tries again.
        """
        task_status.started()
        while True:
            wake = await self.round()
            delay = self.interval
            if wake is not None:
                delay = min(delay, max(0.0, wake - self.clock()))
            await trio.sleep(delay)

    async def round(self) -> float | None:
        """Runs one round of the service; returns when the next epoch closes (wall time), if
        known. Never raises for a failure of the chain, the store or an epoch: those are logged
        and, once the round is over, kept in `errors`."""
        failures: list[BaseException] = []
        wake = None
        failed: set[tuple[bytes, int]] = set()
        unfinished = await self._guarded(
            failures, "reading the unfinished anchors", self._intent_epochs
        )
        for pid, epoch in unfinished or ():
            log.info("settlement: resuming the anchor of epoch %d", epoch)
            if not await self._guarded(
                failures, f"anchoring epoch {epoch}", self.anchor, pid, epoch
            ):
                failed.add((pid, epoch))
        if self.auto_close:
            plan = await self._guarded(failures, "looking for epochs to close", self._plan)
            if plan is not None:
                wake = plan.wake
                for pid, epoch in plan.due:
                    if (pid, epoch) not in failed:
                        what = f"anchoring epoch {epoch}"
                        await self._guarded(failures, what, self.anchor, pid, epoch)
        decided = await self._guarded(
            failures, "deciding proposals and executing allocations", self.executor.round
        )
        if decided is not None:
            wake = decided if wake is None else min(wake, decided)
        self.errors = failures
        self._round_done.set()
        self._round_done = trio.Event()
        return wake

    async def wait_round(self) -> None:
        """Waits until the round of `run` under way (or the next one) is over."""
        await self._round_done.wait()

    async def _guarded(
        self,
        failures: list[BaseException],
        what: str,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
    ) -> T | None:
        """Returns `await fn(*args)`, or None after logging what it raised (alone, or in
        exception groups from nurseries) and adding it to `failures`. Cancellation passes
        through."""
        result: T | None = None
        try:
            result = await fn(*args)
        except* EXPECTED as group:
            for exc in _leaves(group):
                log.warning("settlement: %s: %s; trying again next round", what, exc)
                failures.append(exc)
        except* Exception as group:
            # A bug: logged with its traceback, but it does not take the node down with it.
            log.error("settlement: %s failed unexpectedly", what, exc_info=group)
            failures.extend(_leaves(group))
        return result

    # Anchoring.

    async def resume(self) -> list[Anchored]:
        """Finishes every anchor whose intent a previous run recorded.

        Raises:
            the errors of `anchor`, at the first anchor that fails.
        """
        return [await self.anchor(pid, epoch) for pid, epoch in await self._intent_epochs()]

    async def close_due(self) -> list[Anchored]:
        """Anchors every ended epoch, not yet anchored, of the projects this node owns.

        Raises:
            the errors of `anchor`, at the first anchor that fails.
        """
        for pid in await self._own_projects():
            await self.execute(pid)
        plan = await self._plan()
        return [await self.anchor(pid, epoch) for pid, epoch in plan.due]

    async def anchor(self, project_id: bytes, epoch: int) -> Anchored:
        """Closes an epoch and anchors it: returns once the root is confirmed and published.

        Idempotent: an epoch already anchored and published is returned as it is; one left half
        done by a crash is finished.

        Raises:
            NotFound: the project is not in the store.
            EpochOpen: the epoch has an epoch length and has not closed yet (its end plus
                GRACE); the error says when it does.
            SettlementError: the project is not this node's, its anchoring address is
                not this node's wallet, the epoch has no accepted contribution, the chain holds
                another root for it, or its unfinished anchor was made for another chain.
            InsufficientFunds: the wallet cannot pay for the anchor's gas.
            ChainError: the chain refused or did not answer (the intent stays for a retry).
            StorageError: the store could not be read or written (likewise).
        """
        await self.execute(project_id)
        lock = self._locks.setdefault((project_id, epoch), trio.Lock())
        async with lock:
            machine = Anchoring(
                project_id,
                epoch,
                author=self.identity.public_key,
                chain=ChainRef(self.chain.chain_id, self.chain.address, self.chain.sender),
                confirmations=self.chain.config.confirmations,
                poll_interval=self.chain.config.poll_interval,
            )
            action = machine.start()
            while True:
                if action.reason:
                    log.warning("settlement: %s", action.reason)
                if isinstance(action, Done):
                    return action.anchored
                if isinstance(action, Fail):
                    raise action.error
                event = await self._perform(action, project_id, epoch)
                action = machine.step(event, trio.current_time())

    async def _perform(self, action: Action, pid: bytes, epoch: int) -> Event:
        """Does what the anchoring core asked; returns what happened."""
        chain, sender = self.chain, self.chain.sender
        match action:
            case Load():
                return await self.gateway.read(self._load, pid, epoch)
            case FindAnchor():
                return Found(await _on_chain(chain.find_anchor, sender, pid, epoch))
            case BuildTree():
                built = await self.gateway.read(self._tree, pid, epoch)
                await trio.to_thread.run_sync(self._dump, pid, epoch, built.merkle)
                return Built(built.summary, built.acceptances)
            case ReadEpoch():
                return Read(await _on_chain(chain.epoch, sender, pid, epoch))
            case ReadHead():
                return Head(await _on_chain(chain.block_number))
            case Sign(summary=summary):
                return Signed(await _on_chain(chain.sign_anchor, pid, epoch, summary))
            case RecordIntent(intent=intent):
                key = intent_key(pid, epoch)
                await self.gateway.write(self.store.state.put_intent, key, intent.encode())
                return Recorded()
            case Send(tx=tx):
                try:
                    await _on_chain(chain.send, tx)
                except NonceUsed as exc:
                    log.warning("settlement: %s", exc)
                    return Sent(nonce_used=True)
                return Sent()
            case Wait(at=at):
                await trio.sleep_until(at)
                return Woke()
            case Publish():
                return Published(await self._publish(action))
            case DeleteIntent():
                await self.gateway.write(self.store.state.delete_intent, intent_key(pid, epoch))
                return Deleted()
        raise AssertionError(f"the anchoring core asked for {action!r}")

    def _load(self, pid: bytes, epoch: int) -> Loaded:
        """The store's view of an epoch (in a reader thread)."""
        roots: list[Record] = []
        cursor = None
        while True:
            page = self.store.epoch_roots(pid, epoch=epoch, cursor=cursor, limit=MAX_LIMIT)
            roots += page.items
            if page.cursor is None:
                break
            cursor = page.cursor
        raw = self.store.state.intent(intent_key(pid, epoch))
        intent = None if raw is None else Intent.decode(raw)
        return Loaded(self.store.project(pid), tuple(roots), intent, self.clock())

    async def _publish(self, action: Publish) -> Record:
        """Signs the manifest of the intent's acceptances (unless a stored root names one of
        exactly them already) and the epoch root naming it, and stores and publishes them in
        one call: one write, so no node ever holds one without the other."""
        intent = action.intent
        now = int(self.clock())
        parts = await self.gateway.read(self._manifest_of, intent)
        if not parts:
            parts = manifest(
                intent.project_id,
                intent.epoch,
                intent.acceptances,
                created_at=now,
                sign=self.identity.sign,
            )
        body = EpochRoot(
            created_at=now,
            project_id=intent.project_id,
            epoch=intent.epoch,
            root=intent.summary.root,
            leaf_count=intent.summary.leaf_count,
            total_weight=intent.summary.total_weight,
            manifest=parts[0].id,
            parts=len(parts),
            chain_id=self.chain.chain_id,
            contract=self.chain.address,
            tx_hash=action.tx_hash,
        )
        record = self.identity.sign(body)
        # The last part first, the root last: peers that get them in several gossip batches
        # can store each as it comes, with no wait in their orphan areas.
        result = await self.node.submit([*reversed(parts), record])
        for rid, error in result.rejected:
            raise SettlementError(
                f"the manifest or epoch root of epoch {intent.epoch} was refused "
                f"({rid.hex()[:16]}): {error}"
            )
        log.info(
            "settlement: epoch %d anchored in tx 0x%s (block %d)",
            intent.epoch,
            action.tx_hash.hex(),
            action.block_number,
        )
        return record

    def _manifest_of(self, intent: Intent) -> tuple[Record, ...]:
        """Returns the parts of a stored manifest of the epoch that lists exactly the intent's
        acceptances, or () (in a reader thread). An epoch anchored before (on another chain,
        or on one that lost the anchor) keeps the manifest it has."""
        project = self.project(intent.project_id)
        cursor = None
        while True:
            page = self.store.epoch_roots(
                intent.project_id, epoch=intent.epoch, cursor=cursor, limit=MAX_LIMIT
            )
            for root in page.items:
                parts = manifest_parts(root, project, self.store.get)
                if listed(parts) == intent.acceptances:
                    return parts
            if page.cursor is None:
                return ()
            cursor = page.cursor

    async def tree(self, project_id: bytes, epoch: int) -> tuple[MerkleTree, Summary]:
        """Returns the tree of an epoch: of its manifest if it is anchored, else of the stored
        acceptances in force that count (built in a reader thread: seconds for 100,000 leaves).

        Raises:
            NotFound: the project is not in the store.
            SettlementError: the epoch has no accepted contribution that counts.
        """
        built = await self.gateway.read(self._tree, project_id, epoch)
        return built.merkle, built.summary

    def _tree(self, project_id: bytes, epoch: int) -> EpochTree:
        project = self.project(project_id)
        try:
            if not self.store.anchored(project_id, epoch):
                # Lazy consensus, or reviewers set by decisions: what governance says counts.
                found = owner_tree(self.store, project, epoch, now=self.clock())
                if found is not None:
                    return found
            return stored_tree(
                self.store, project, epoch, chain=(self.chain.chain_id, self.chain.address)
            )
        except EmptyTree:
            raise SettlementError(
                f"epoch {epoch} has no accepted contribution: nothing to anchor"
            ) from None

    def project(self, project_id: bytes) -> Record:
        """Returns the project revision in force; NotFound if the store has none."""
        project = self.store.project(project_id)
        if project is None:
            raise NotFound(f"project {project_id.hex()} is not in the store")
        return project

    def _dump(self, project_id: bytes, epoch: int, merkle: MerkleTree) -> None:
        path = self.dump_path(project_id, epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(merkle.dump(), indent=1))
        tmp.replace(path)

    def dump_path(self, project_id: bytes, epoch: int) -> Path:
        """Where the tree of an anchored epoch is kept (OpenZeppelin's standard-v1 dump)."""
        return self.dumps / project_id.hex() / f"{epoch}.json"

    async def execute(self, project_id: bytes) -> tuple[Record, ...]:
        """Signs, stores and publishes the acceptances that carry out the passed `accept`
        decisions of a project this node owns (`node.governance.executions`); returns them.

        Raises:
            SettlementError: the store refused one.
        """
        bodies = await self.gateway.read(self._executions, project_id)
        if not bodies:
            return ()
        records = tuple(self.identity.sign(body) for body in bodies)
        result = await self.node.submit(records)
        for rid, error in result.rejected:
            raise SettlementError(f"the acceptance {rid.hex()[:16]} of a decision: {error}")
        log.info("settlement: %d acceptances carry out passed decisions", len(records))
        return records

    def _executions(self, project_id: bytes) -> tuple[Acceptance, ...]:
        project = self.store.project(project_id)
        if project is None or project.author != self.identity.public_key:
            return ()
        return executions(self.store, project, now=self.clock())

    # Epoch closing.

    async def _intent_epochs(self) -> list[tuple[bytes, int]]:
        """Returns the epochs whose anchor a previous run left unfinished."""
        return await self.gateway.read(self._read_intents)

    def _read_intents(self) -> list[tuple[bytes, int]]:
        found = []
        cursor = None
        while True:
            page = self.store.state.intents(cursor=cursor, limit=MAX_LIMIT)
            for key, value in page.items:
                if is_intent_key(key):
                    intent = Intent.decode(value)
                    found.append((intent.project_id, intent.epoch))
            if page.cursor is None:
                return found
            cursor = page.cursor

    async def _plan(self) -> Plan:
        """Reads what epoch closing needs from the store, and asks the core what is due."""
        now = self.clock()
        owned = []
        for pid in await self._own_projects():
            found = await self.gateway.read(self._owned, pid, now)
            if found is not None:
                owned.append(found)
                self._closed.update((pid, epoch) for epoch in found.published)
        return due(owned, now)

    def _owned(self, pid: bytes, now: float) -> Owned | None:
        """One owned project as epoch closing sees it at `now` (in a reader thread): its epochs
        with acceptances up to the first that has not ended, and which of them are published."""
        project = self.store.project(pid)
        if project is None:
            return None
        # A passed settings decision may have changed it.
        length = governance_of(self.store, project, now=now).epoch_length
        if length == 0:
            return Owned(pid, 0, ())
        last = last_due(length, now)
        accepted: list[int] = []
        start = 0
        while True:
            page = self.store.accepted_epochs(pid, start=start, limit=MAX_LIMIT)
            accepted += page
            if len(page) < MAX_LIMIT or page[-1] > last:
                break
            start = page[-1] + 1
        done = set()
        idle = set()
        for epoch in accepted:
            if epoch > last:
                break
            if (pid, epoch) in self._closed or self._published(pid, epoch):
                done.add(epoch)
            elif not self._counts(pid, epoch):
                # Nothing to anchor now, but an acceptance may come: not closed for good.
                idle.add(epoch)
        due = tuple(epoch for epoch in accepted if epoch not in idle)
        return Owned(pid, length, due, frozenset(done))

    def _counts(self, pid: bytes, epoch: int) -> bool:
        """Returns whether an epoch has something to anchor: a stored root (anchored elsewhere,
        its manifest has leaves), or an acceptance in force of a contribution that no anchored
        epoch pays (if every one is paid elsewhere, each is late)."""
        if self.store.anchored(pid, epoch):
            return True
        cursor = None
        while True:
            page = self.store.acceptances(pid, epoch, cursor=cursor, limit=MAX_LIMIT)
            for acceptance in page.items:
                if not self.store.committed_of(acceptance.expect(Acceptance).contribution_id):
                    return True
            if page.cursor is None:
                return False
            cursor = page.cursor

    def _published(self, pid: bytes, epoch: int) -> bool:
        roots = self.store.epoch_roots(pid, epoch=epoch, limit=MAX_LIMIT).items
        me, chain = self.identity.public_key, self.chain
        return bool(published(roots, me, chain.chain_id, chain.address))

    async def _own_projects(self) -> tuple[bytes, ...]:
        """Returns the ids of the projects this node's identity owns.

        Projects are not indexed by owner, so finding them reads every project in force: on a
        bootstrap node, thousands. That is done only when the meta topic (where projects are)
        has changed since the last time.
        """
        stamp = await self.gateway.read(self.store.topic_count, META)
        if stamp != self._own_stamp:
            self._own = await self.gateway.read(self._list_own)
            self._own_stamp = stamp
        return self._own

    def _list_own(self) -> tuple[bytes, ...]:
        own = []
        cursor = None
        while True:
            page = self.store.projects(cursor=cursor, limit=500)
            own += [project_id_of(p) for p in page.items if p.author == self.identity.public_key]
            if page.cursor is None:
                return tuple(own)
            cursor = page.cursor

    # Status.

    async def epochs(self, project_id: bytes) -> list[EpochStatus]:
        """Returns every epoch of a project with accepted contributions, or an epoch root."""
        project, numbers, roots, pending = await self.gateway.read(self._epochs, project_id)
        owned = await self.gateway.read(self.owner_roots, project_id)
        owner = project.expect(Project).payout
        out = []
        for epoch in sorted(numbers | set(roots)):
            root_record = roots.get(epoch)
            if root_record is not None:
                body = root_record.expect(EpochRoot)
                summary = Summary(body.root, body.leaf_count, body.total_weight)
                tx_hash: bytes | None = body.tx_hash
            else:
                try:
                    summary = (await self.tree(project_id, epoch))[1]
                except SettlementError:
                    continue  # every acceptance in force of it is late: no tree
                tx_hash = None
            state = await _on_chain(self.chain.epoch, owner, project_id, epoch)
            out.append(
                EpochStatus(
                    epoch,
                    summary.leaf_count,
                    summary.total_weight,
                    summary.root,
                    state.anchored,
                    epoch in pending,
                    tx_hash,
                    state.funded,
                    state.paid,
                    None if state.anchored else self._elsewhere(project_id, owned, epoch),
                    await self.treasury.books(owner, project_id, epoch) if state.anchored else (),
                )
            )
        return out

    def _epochs(self, project_id: bytes) -> tuple[Record, set[int], dict[int, Record], set[int]]:
        """The store's half of `epochs` (in a reader thread): the project, the epochs with
        acceptances, the owner's epoch roots by epoch, and the epochs with an intent."""
        project = self.project(project_id)
        numbers = set(self.store.accepted_epochs(project_id, limit=MAX_LIMIT))
        roots: dict[int, Record] = {}
        for record in self.store.epoch_roots(project_id, limit=MAX_LIMIT).items:
            if record.author == project.author:
                roots.setdefault(record.expect(EpochRoot).epoch, record)
        pending = {
            epoch
            for epoch in numbers | set(roots)
            if self.store.state.intent(intent_key(project_id, epoch)) is not None
        }
        return project, numbers, roots, pending

    # Funding and claims.

    async def fund(
        self,
        project_id: bytes,
        epoch: int,
        amount: int,
        token: bytes = ETHER,
        *,
        approve: bool = True,
        force: bool = False,
    ) -> Funding:
        """Adds `amount` of `token` (wei by default) from this node's wallet to an anchored
        epoch, once its audit agrees with its anchor: see `Treasury.fund`.

        Raises:
            NotFound: the project is not in the store.
            SettlementError: the amount is not positive.
            AnchorDisagrees: the anchor disagrees with the records (not with `force`).
            WrongChain: the owner's epoch roots say the epoch is anchored on another chain or
                contract, and this node's holds no anchor of it.
            InsufficientFunds: the wallet does not hold the amount and the gas.
            InsufficientTokens, InsufficientAllowance, UnknownToken: as the chain client's.
            TransactionReverted: the epoch is not anchored, or the pool would overflow.
        """
        return await self.treasury.fund(
            project_id, epoch, amount, token, approve=approve, force=force
        )

    async def check_here(self, project_id: bytes, epoch: int, owner: bytes) -> None:
        """Raises WrongChain if the owner's epoch roots say the epoch settles on another chain
        or contract, and this node's chain holds no anchor of it under `owner`."""
        owned = await self.gateway.read(self.owner_roots, project_id)
        elsewhere = self._elsewhere(project_id, owned, epoch)
        if (
            elsewhere is not None
            and not (await _on_chain(self.chain.epoch, owner, project_id, epoch)).anchored
        ):
            raise elsewhere

    async def claim(self, contribution_id: bytes) -> Claim:
        """Claims what an accepted contribution is owed now in every token its epoch was
        funded in, one transaction per token; the money goes to its payout.

        Raises:
            SettlementError: the contribution is not accepted, its epoch is not anchored (or
                not known here yet), the local records do not give the anchored root, or there
                is nothing to claim.
            WrongChain: the epoch is anchored on another chain or contract than this node's.
            InsufficientFunds: this node's wallet cannot pay the claim's gas.
        """
        share, leaf, merkle, owner = await self._share(contribution_id)
        if share.elsewhere is not None:
            raise share.elsewhere
        if not share.anchored:
            raise SettlementError(f"epoch {share.epoch} of the project is not anchored yet")
        if not any(t.claimable for t in share.tokens):
            raise SettlementError(
                "nothing to claim: the epoch is not funded, or this share was already paid"
            )
        proof = merkle.proof(contribution_id)
        paid = []
        for owed in share.tokens:
            if owed.claimable == 0:
                continue
            tx = await _on_chain(
                self.chain.sign_claim,
                owner,
                share.project_id,
                share.epoch,
                leaf,
                proof,
                owed.token.address,
            )
            await _on_chain(self.chain.transact, tx)
            paid.append(Payment(owed.token, owed.claimable, tx.hash))
        ether = next((p for p in paid if p.token.address == ETHER), None)
        return Claim(
            contribution_id,
            leaf.payout,
            0 if ether is None else ether.amount,
            (ether or paid[0]).tx_hash,
            tuple(paid),
        )

    async def share(self, contribution_id: bytes) -> Share:
        """Returns an accepted contribution's standing: weight, epoch, claimable, claimed.

        Raises:
            NotFound: the contribution is not in the store.
            LateAcceptance: its acceptance came after its epoch was anchored: it counts for
                nothing.
            SettlementError: it has no acceptance, or it was withdrawn.
        """
        return (await self._share(contribution_id))[0]

    async def _share(self, contribution_id: bytes) -> tuple[Share, Leaf, MerkleTree, bytes]:
        body, pid = await self.gateway.read(self._accepted, contribution_id)
        merkle, summary = await self.tree(pid, body.epoch)
        leaf = next((x for x in merkle.leaves if x.contribution_id == contribution_id), None)
        if leaf is None:
            # The epoch was anchored between the two reads, without this acceptance.
            raise LateAcceptance(
                f"contribution {contribution_id.hex()} is not in the tree of epoch {body.epoch}"
            )
        owner = await self.anchorer(pid, body.epoch)
        state = await _on_chain(self.chain.epoch, owner, pid, body.epoch)
        if state.anchored and state.root != summary.root:
            raise SettlementError(
                f"the stored records give epoch {body.epoch} the root 0x{summary.root.hex()}, "
                f"but 0x{state.root.hex()} is anchored: sync with the network, or audit the epoch"
            )
        claimable = claimed = 0
        elsewhere = None
        tokens: list[Owed] = []
        if state.anchored:
            funded = await _on_chain(self.chain.epoch_tokens, owner, pid, body.epoch)
            for token in [ETHER, *(t for t in funded if t != ETHER)]:
                info = await _on_chain(self.chain.token_info, token)
                owed = await _on_chain(self.chain.claimable, owner, pid, body.epoch, leaf, token)
                got = await _on_chain(self.chain.claimed, owner, pid, body.epoch, leaf, token)
                tokens.append(Owed(info, owed, got))
            claimable, claimed = tokens[0].claimable, tokens[0].claimed
        else:
            owned = await self.gateway.read(self.owner_roots, pid)
            elsewhere = self._elsewhere(pid, owned, body.epoch)
        share = Share(
            contribution_id,
            pid,
            body.epoch,
            leaf.weight,
            leaf.payout,
            state.anchored,
            claimable,
            claimed,
            elsewhere,
            tuple(tokens),
        )
        return share, leaf, merkle, owner

    def _accepted(self, contribution_id: bytes) -> tuple[Acceptance, bytes]:
        """Returns the acceptance of a contribution that counts, and its project (in a reader
        thread): the one an anchored epoch's manifest lists, else the one in force if its epoch
        is open (`protocol.epoch.standing`)."""
        work = self.store.get(contribution_id)
        if work is None or not isinstance(work.body, Contribution):
            raise NotFound(f"no contribution {contribution_id.hex()} in the store")
        pid = work.expect(Contribution).project_id
        found = standing_of(self.store, contribution_id)
        if found is None:
            raise SettlementError(f"contribution {contribution_id.hex()} has no acceptance here")
        if found.status is Status.LATE:
            raise LateAcceptance(
                f"the acceptance of contribution {contribution_id.hex()} into epoch "
                f"{found.epoch} came after that epoch was anchored: it is not counted and will "
                "not be paid"
            )
        if found.status is Status.WITHDRAWN:
            raise SettlementError("the acceptance of this contribution was withdrawn")
        return found.acceptance.expect(Acceptance), pid

    async def anchorer(self, project_id: bytes, epoch: int) -> bytes:
        """Returns the address that anchored an epoch (or would): see `node.chain.anchors`."""
        project = await self.gateway.read(self.project, project_id)
        chain = self.chain
        named = await self.gateway.read(
            published_anchors, self.store, project, epoch, chain.chain_id, chain.address
        )
        payout = project.expect(Project).payout
        return (await _on_chain(senders, chain, named, payout))[0]

    # Which chain a project settles on.

    def owner_roots(self, project_id: bytes) -> list[EpochRoot]:
        """Returns the epoch roots that the project's owner signed, of every epoch (in a reader
        thread)."""
        project = self.project(project_id)
        found: list[EpochRoot] = []
        cursor = None
        while True:
            page = self.store.epoch_roots(project_id, cursor=cursor, limit=MAX_LIMIT)
            found += [r.expect(EpochRoot) for r in page.items if r.author == project.author]
            if page.cursor is None:
                return found
            cursor = page.cursor

    def _elsewhere(
        self, project_id: bytes, roots: list[EpochRoot], epoch: int
    ) -> WrongChain | None:
        """Returns where the owner's epoch roots say an epoch settles, if not on this node's
        chain and contract; else None.

        The roots of the epoch itself decide; an epoch with none yet goes by the project's
        other epochs (it will be anchored where they are). Any root on this node's chain and
        contract means the project settles here (it may have moved). Otherwise the latest root
        names where it settles. Without roots, nothing is known: None. The callers ask only
        while this node's chain holds no anchor of the epoch, which settles the question.
        """
        here = (self.chain.chain_id, self.chain.address)
        named = [r for r in roots if r.epoch == epoch] or roots
        if not named or any((r.chain_id, r.contract) == here for r in named):
            return None
        latest = max(named, key=lambda r: (r.epoch, r.created_at))
        return WrongChain(
            project_id,
            latest.chain_id,
            checksum(latest.contract),
            self.chain.chain_id,
            checksum(self.chain.address),
        )


async def _on_chain(fn: Callable[..., T], *args: Any) -> T:
    """Runs a blocking chain call in a thread of its own (not the store's gateway)."""
    return await trio.to_thread.run_sync(fn, *args)


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    """Returns the exceptions in a (nested) exception group."""
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out += _leaves(exc)
        else:
            out.append(exc)
    return out


def project_id_of(project: Record) -> bytes:
    """Returns the id of a project record (its owner key and name)."""
    return project_id(project.author, project.expect(Project).name)
