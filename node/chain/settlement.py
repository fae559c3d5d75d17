"""The settlement service: closes and anchors epochs, funds them, claims shares.

Anchoring an epoch of a project this node owns goes through four steps, each of which can be
interrupted (the process killed) and resumed without losing or repeating the anchor:

1. build the epoch's tree from the stored acceptances in force, and keep its standard-v1 dump
   in `<data dir>/epochs/` (what the owner gives auditors and contributors);
2. sign the `anchor` transaction and record it in the store as an intent, synced to disk,
   BEFORE sending it;
3. send it and wait for its confirmations, sending the same signed bytes again if a reorg drops
   it (the nonce makes a second inclusion impossible, and the contract refuses to anchor an
   epoch twice anyway);
4. sign the `epoch_root` record, ingest and publish it, and delete the intent.

On start, every intent left by a previous run is resumed from what the chain says: anchored with
our root means step 4; not anchored means step 3 again. Epochs of projects with an epoch length
close by themselves once they end (plus a grace period for clock skew); any epoch closes on the
owner's command.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from node.chain.anchors import anchoring_addresses
from node.chain.client import ChainClient, SignedTx
from node.chain.trees import stored_tree
from node.errors import ChainError, NotFound, SettlementError
from protocol import Acceptance, Contribution, EpochRoot, Project, Record
from protocol.epoch import Summary
from protocol.merkle import Leaf, MerkleTree
from protocol.records import project_id
from protocol.topics import META
from protocol.validate import MAX_SKEW
from storage import Store

if TYPE_CHECKING:
    from trio_typing import TaskStatus

    from node.keys import Identity
    from node.net.node import Node

log = logging.getLogger(__name__)

T = TypeVar("T")

# An epoch of a project with an epoch length closes this long after it ends, so that
# acceptances dated up to the clock-skew limit before its end have arrived.
GRACE = MAX_SKEW
# How often the service looks for epochs to close.
CLOSE_INTERVAL = 30.0
# A sent anchor not mined after this many polls is sent again (the chain may have dropped it).
RESEND_AFTER = 20

_INTENT = b"anchor"


@dataclass(frozen=True, slots=True)
class Anchored:
    """An anchored epoch, as this node published it."""

    project_id: bytes
    epoch: int
    summary: Summary
    tx_hash: bytes
    block_number: int
    record: Record


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


@dataclass(frozen=True, slots=True)
class Claim:
    """A paid claim: what went to whom, in which transaction."""

    contribution_id: bytes
    payout: bytes
    amount: int
    tx_hash: bytes


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


def _intent_key(project_id: bytes, epoch: int) -> bytes:
    return _INTENT + project_id + epoch.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class _Intent:
    """A signed anchor transaction, recorded before it is sent."""

    project_id: bytes
    epoch: int
    summary: Summary
    chain_id: int
    contract: bytes
    tx: SignedTx

    def encode(self) -> bytes:
        return json.dumps(
            {
                "project_id": self.project_id.hex(),
                "epoch": self.epoch,
                "root": self.summary.root.hex(),
                "leaf_count": self.summary.leaf_count,
                "total_weight": self.summary.total_weight,
                "chain_id": self.chain_id,
                "contract": self.contract.hex(),
                "raw": self.tx.raw.hex(),
                "hash": self.tx.hash.hex(),
                "nonce": self.tx.nonce,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> _Intent:
        d = json.loads(data)
        summary = Summary(bytes.fromhex(d["root"]), d["leaf_count"], d["total_weight"])
        tx = SignedTx(bytes.fromhex(d["raw"]), bytes.fromhex(d["hash"]), d["nonce"])
        return cls(
            bytes.fromhex(d["project_id"]),
            d["epoch"],
            summary,
            d["chain_id"],
            bytes.fromhex(d["contract"]),
            tx,
        )


class Settlement:
    """Anchoring, funding and claiming for one node, on one chain.

    Args:
        node: the running node (its store, and `submit` to publish epoch roots).
        identity: the keys that sign epoch roots (Ed25519) and transactions (the wallet).
        chain: the chain client; its account must be the identity's wallet.
        data_dir: where the tree dumps of anchored epochs are kept (`epochs/`).
        auto_close: close ended epochs of projects with an epoch length by themselves.
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
    ) -> None:
        self.node = node
        self.identity = identity
        self.chain = chain
        self.dumps = Path(data_dir) / "epochs"
        self.clock = clock
        self.auto_close = auto_close
        self._locks: dict[tuple[bytes, int], trio.Lock] = {}
        # The ids of this node's projects, and the meta topic's record count when they were
        # listed: the list is made again only when a project or profile has arrived since.
        self._own: tuple[bytes, ...] = ()
        self._own_stamp = -1

    @property
    def store(self) -> Store:
        return self.node.store

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Resumes the anchors a previous run left unfinished, then closes epochs as they end.

        A chain that is down only delays this: the next round tries again.
        """
        task_status.started()
        while True:
            try:
                await self.resume()
                if self.auto_close:
                    await self.close_due()
            except (ChainError, SettlementError, NotFound) as exc:
                log.warning("settlement: %s; trying again in %.0f s", exc, CLOSE_INTERVAL)
            await trio.sleep(CLOSE_INTERVAL)

    # Anchoring.

    async def resume(self) -> list[Anchored]:
        """Finishes every anchor whose intent a previous run recorded."""
        done = []
        page = self.store.state.intents(limit=1000)
        for key, value in page.items:
            if key.startswith(_INTENT):
                intent = _Intent.decode(value)
                log.info("settlement: resuming the anchor of epoch %d", intent.epoch)
                done.append(await self.anchor(intent.project_id, intent.epoch))
        return done

    async def close_due(self) -> list[Anchored]:
        """Anchors every ended epoch, not yet anchored, of the projects this node owns."""
        now = self.clock()
        done = []
        for pid in await self._own_projects():
            project = self.store.project(pid)
            if project is None:
                continue
            body = project.expect(Project)
            if body.epoch_length == 0:
                continue
            for epoch in self.store.accepted_epochs(pid, limit=1000):
                if (epoch + 1) * body.epoch_length + GRACE > now:
                    break
                if self._published(pid, epoch) is None:
                    done.append(await self.anchor(pid, epoch))
        return done

    async def _own_projects(self) -> tuple[bytes, ...]:
        """Returns the ids of the projects this node's identity owns.

        Projects are not indexed by owner, so finding them reads every project in force: on a
        bootstrap node, thousands. That is done in a thread, and only when the meta topic (where
        projects are) has changed since the last time.
        """
        stamp = self.store.topic_count(META)
        if stamp != self._own_stamp:
            self._own = await self._call(self._list_own)
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

    async def anchor(self, project_id: bytes, epoch: int) -> Anchored:
        """Closes an epoch and anchors it: returns once the root is confirmed and published.

        Idempotent: an epoch already anchored and published is returned as it is; one left half
        done by a crash is finished.

        Raises:
            NotFound: the project is not in the store.
            SettlementError: the project is not this node's, its anchoring address is
                not this node's wallet, the epoch has no accepted contribution, or the chain holds
                another root for it.
            ChainError: the chain refused or did not answer (the intent stays for a retry).
        """
        key = (project_id, epoch)
        lock = self._locks.setdefault(key, trio.Lock())
        async with lock:
            published = self._published(project_id, epoch)
            if published is not None:
                found = await self._call(
                    self.chain.find_anchor, self.chain.sender, project_id, epoch
                )
                if found is not None and found.tx_hash == published.tx_hash:
                    return published
                # Published, but the chain does not hold that anchor: a reorg deeper than the
                # confirmations waited for, or a dev chain started afresh. Anchor again.
                log.warning(
                    "settlement: epoch %d was published in tx 0x%s, which the chain does not "
                    "hold; anchoring it again",
                    epoch,
                    published.tx_hash.hex(),
                )
            project = self._own_project(project_id)
            raw = self.store.state.intent(_intent_key(project_id, epoch))
            if raw is not None:
                intent = _Intent.decode(raw)
            else:
                merkle, summary = self.tree(project_id, epoch)
                self._dump(project_id, epoch, merkle)
                intent = await self._prepare(project, epoch, summary)
            tx_hash, block = await self._confirm(intent)
            return await self._publish(intent, tx_hash, block)

    def tree(self, project_id: bytes, epoch: int) -> tuple[MerkleTree, Summary]:
        """Returns the tree of an epoch as the stored acceptances in force make it.

        Raises:
            NotFound: the project is not in the store.
            SettlementError: the epoch has no accepted contribution.
        """
        project = self._project(project_id)
        if not self.store.acceptances(project_id, epoch, limit=1).items:
            raise SettlementError(f"epoch {epoch} has no accepted contribution: nothing to anchor")
        return stored_tree(self.store, project, epoch)

    def _project(self, project_id: bytes) -> Record:
        """Returns the project revision in force; NotFound if the store has none."""
        project = self.store.project(project_id)
        if project is None:
            raise NotFound(f"project {project_id.hex()} is not in the store")
        return project

    def _own_project(self, project_id: bytes) -> Record:
        project = self._project(project_id)
        if project.author != self.identity.public_key:
            raise SettlementError(
                f"project {project.expect(Project).name!r} belongs to another key: only its owner "
                "anchors its epochs"
            )
        payout = project.expect(Project).payout
        if payout != self.chain.sender:
            raise SettlementError(
                f"the project anchors from 0x{payout.hex()}, but this node's wallet is "
                f"0x{self.chain.sender.hex()}: revise the project's payout address first"
            )
        return project

    def _published(
        self, project_id: bytes, epoch: int, tx_hash: bytes | None = None
    ) -> Anchored | None:
        """Returns the epoch root this identity published for an epoch on this chain, if any
        (the one naming `tx_hash`, if given)."""
        for record in self.store.epoch_roots(project_id, epoch=epoch).items:
            body = record.expect(EpochRoot)
            if (
                record.author == self.identity.public_key
                and body.chain_id == self.chain.chain_id
                and body.contract == self.chain.address
                and tx_hash in (None, body.tx_hash)
            ):
                summary = Summary(body.root, body.leaf_count, body.total_weight)
                return Anchored(project_id, epoch, summary, body.tx_hash, -1, record)
        return None

    def _dump(self, project_id: bytes, epoch: int, merkle: MerkleTree) -> None:
        path = self.dump_path(project_id, epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(merkle.dump(), indent=1))
        tmp.replace(path)

    def dump_path(self, project_id: bytes, epoch: int) -> Path:
        """Where the tree of an anchored epoch is kept (OpenZeppelin's standard-v1 dump)."""
        return self.dumps / project_id.hex() / f"{epoch}.json"

    async def _prepare(self, project: Record, epoch: int, summary: Summary) -> _Intent:
        project_id = project_id_of(project)
        on_chain = await self._call(self.chain.epoch, self.chain.sender, project_id, epoch)
        if on_chain.anchored and on_chain.root != summary.root:
            raise SettlementError(
                f"epoch {epoch} is already anchored with root 0x{on_chain.root.hex()}, but the "
                f"stored acceptances give 0x{summary.root.hex()}"
            )
        if on_chain.anchored:
            # Anchored by an earlier run that lost its intent (a store restored from backup):
            # find that transaction instead of sending another.
            found = await self._call(self.chain.find_anchor, self.chain.sender, project_id, epoch)
            if found is None:
                raise ChainError(f"epoch {epoch} is anchored but its Anchored event is missing")
            tx = SignedTx(b"", found.tx_hash, -1)
        else:
            tx = await self._call(self.chain.sign_anchor, project_id, epoch, summary)
        intent = _Intent(project_id, epoch, summary, self.chain.chain_id, self.chain.address, tx)
        self.store.state.put_intent(_intent_key(project_id, epoch), intent.encode())
        return intent

    async def _confirm(self, intent: _Intent) -> tuple[bytes, int]:
        """Sends the intent's transaction until it is confirmed; returns its hash and block."""
        if intent.chain_id != self.chain.chain_id or intent.contract != self.chain.address:
            raise SettlementError(
                f"an unfinished anchor of epoch {intent.epoch} was made for chain "
                f"{intent.chain_id} contract 0x{intent.contract.hex()}, not this chain"
            )
        sender = self.chain.sender
        confirmations = self.chain.config.confirmations
        polls = 0
        seen = False
        while True:
            state = await self._call(self.chain.epoch, sender, intent.project_id, intent.epoch)
            if seen and not state.anchored:
                # Anchored a moment ago, not any more: a reorg dropped the block. Send again now.
                log.warning("settlement: a reorg dropped the anchor of epoch %d", intent.epoch)
                polls = 0
            seen = state.anchored
            if state.anchored:
                if state.root != intent.summary.root:
                    raise SettlementError(
                        f"epoch {intent.epoch} was anchored with another root "
                        f"(0x{state.root.hex()}) than this node's intent"
                    )
                found = await self._call(
                    self.chain.find_anchor, sender, intent.project_id, intent.epoch
                )
                if found is not None:
                    head = await self._call(self.chain.block_number)
                    if head - found.block_number >= confirmations:
                        return found.tx_hash, found.block_number
            elif intent.tx.raw and polls % RESEND_AFTER == 0:
                # Not anchored: never sent, dropped by a reorg, or not mined yet. Sending the
                # same signed bytes again is harmless in every case.
                if polls:
                    log.warning(
                        "settlement: anchor of epoch %d not mined; sending again", intent.epoch
                    )
                await self._send(intent)
            polls += 1
            await trio.sleep(self.chain.config.poll_interval)

    async def _send(self, intent: _Intent) -> None:
        try:
            await self._call(self.chain.send, intent.tx)
        except ChainError as exc:
            if "nonce" not in str(exc).lower():
                raise
            # The nonce was used by another transaction of this wallet, and the epoch is not
            # anchored: this transaction can never be mined. Sign a new one, record it, send it.
            log.warning("settlement: anchor tx replaced (%s); signing it again", exc)
            tx = await self._call(
                self.chain.sign_anchor, intent.project_id, intent.epoch, intent.summary
            )
            renewed = _Intent(
                intent.project_id,
                intent.epoch,
                intent.summary,
                intent.chain_id,
                intent.contract,
                tx,
            )
            self.store.state.put_intent(
                _intent_key(intent.project_id, intent.epoch), renewed.encode()
            )
            await self._call(self.chain.send, tx)

    async def _publish(self, intent: _Intent, tx_hash: bytes, block: int) -> Anchored:
        published = self._published(intent.project_id, intent.epoch, tx_hash)
        if published is None:
            body = EpochRoot(
                created_at=int(self.clock()),
                project_id=intent.project_id,
                epoch=intent.epoch,
                root=intent.summary.root,
                leaf_count=intent.summary.leaf_count,
                total_weight=intent.summary.total_weight,
                chain_id=self.chain.chain_id,
                contract=self.chain.address,
                tx_hash=tx_hash,
            )
            record = self.identity.sign(body)
            await self.node.submit([record])
        else:
            record = published.record
        self.store.state.delete_intent(_intent_key(intent.project_id, intent.epoch))
        log.info(
            "settlement: epoch %d anchored in tx 0x%s (block %d)",
            intent.epoch,
            tx_hash.hex(),
            block,
        )
        return Anchored(intent.project_id, intent.epoch, intent.summary, tx_hash, block, record)

    # Status.

    async def epochs(self, project_id: bytes) -> list[EpochStatus]:
        """Returns every epoch of a project with accepted contributions, or an epoch root."""
        project = self._project(project_id)
        owner = project.expect(Project).payout
        numbers = set(self.store.accepted_epochs(project_id, limit=1000))
        roots: dict[int, Record] = {}
        for record in self.store.epoch_roots(project_id, limit=1000).items:
            if record.author == project.author:
                roots.setdefault(record.expect(EpochRoot).epoch, record)
        out = []
        for epoch in sorted(numbers | set(roots)):
            root_record = roots.get(epoch)
            if root_record is not None:
                body = root_record.expect(EpochRoot)
                summary = Summary(body.root, body.leaf_count, body.total_weight)
                tx_hash: bytes | None = body.tx_hash
            else:
                summary = self.tree(project_id, epoch)[1]
                tx_hash = None
            state = await self._call(self.chain.epoch, owner, project_id, epoch)
            pending = self.store.state.intent(_intent_key(project_id, epoch)) is not None
            out.append(
                EpochStatus(
                    epoch,
                    summary.leaf_count,
                    summary.total_weight,
                    summary.root,
                    state.anchored,
                    pending,
                    tx_hash,
                    state.funded,
                    state.paid,
                )
            )
        return out

    # Funding and claims.

    async def fund(self, project_id: bytes, epoch: int, amount: int) -> bytes:
        """Adds `amount` wei from this node's wallet to an anchored epoch's pool.

        Raises:
            NotFound: the project is not in the store.
            SettlementError: the amount is not positive.
            TransactionReverted: the epoch is not anchored, or the pool would overflow.
        """
        if amount <= 0:
            raise SettlementError("the amount to fund must be a positive number of wei")
        owner = await self._anchorer(project_id, epoch)
        tx = await self._call(self.chain.sign_fund, owner, project_id, epoch, amount)
        await self._call(self.chain.transact, tx)
        return tx.hash

    async def claim(self, contribution_id: bytes) -> Claim:
        """Claims what an accepted contribution is owed now; the money goes to its payout.

        Raises:
            SettlementError: the contribution is not accepted, its epoch is not anchored (or
                not known here yet), the local records do not give the anchored root, or there
                is nothing to claim.
        """
        share, leaf, merkle, owner = await self._share(contribution_id)
        if not share.anchored:
            raise SettlementError(f"epoch {share.epoch} of the project is not anchored yet")
        if share.claimable == 0:
            raise SettlementError(
                "nothing to claim: the epoch is not funded, or this share was already paid"
            )
        proof = merkle.proof(contribution_id)
        tx = await self._call(
            self.chain.sign_claim, owner, share.project_id, share.epoch, leaf, proof
        )
        await self._call(self.chain.transact, tx)
        return Claim(contribution_id, leaf.payout, share.claimable, tx.hash)

    async def share(self, contribution_id: bytes) -> Share:
        """Returns an accepted contribution's standing: weight, epoch, claimable, claimed."""
        return (await self._share(contribution_id))[0]

    async def _share(self, contribution_id: bytes) -> tuple[Share, Leaf, MerkleTree, bytes]:
        work = self.store.get(contribution_id)
        if work is None or not isinstance(work.body, Contribution):
            raise NotFound(f"no contribution {contribution_id.hex()} in the store")
        acceptance = self.store.acceptance_of(contribution_id)
        if acceptance is None:
            raise SettlementError(f"contribution {contribution_id.hex()} has no acceptance here")
        body = acceptance.expect(Acceptance)
        if body.weight == 0:
            raise SettlementError("the acceptance of this contribution was withdrawn")
        pid = work.expect(Contribution).project_id
        merkle, summary = self.tree(pid, body.epoch)
        leaf = next(x for x in merkle.leaves if x.contribution_id == contribution_id)
        owner = await self._anchorer(pid, body.epoch)
        state = await self._call(self.chain.epoch, owner, pid, body.epoch)
        if state.anchored and state.root != summary.root:
            raise SettlementError(
                f"the stored records give epoch {body.epoch} the root 0x{summary.root.hex()}, "
                f"but 0x{state.root.hex()} is anchored: sync with the network, or audit the epoch"
            )
        claimable = claimed = 0
        if state.anchored:
            claimable = await self._call(self.chain.claimable, owner, pid, body.epoch, leaf)
            claimed = await self._call(self.chain.claimed, owner, pid, body.epoch, leaf)
        share = Share(
            contribution_id,
            pid,
            body.epoch,
            leaf.weight,
            leaf.payout,
            state.anchored,
            claimable,
            claimed,
        )
        return share, leaf, merkle, owner

    async def _anchorer(self, project_id: bytes, epoch: int) -> bytes:
        """Returns the address that anchored an epoch (or would): see `node.chain.anchors`."""
        project = self._project(project_id)
        addresses = await self._call(anchoring_addresses, self.chain, self.store, project, epoch)
        return addresses[0]

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args)


def project_id_of(project: Record) -> bytes:
    """Returns the id of a project record (its owner key and name)."""
    return project_id(project.author, project.expect(Project).name)
