"""Audit of one epoch: is the anchored root the Merkle root of valid, signed, accepted work?

Theory of operation. The audit trusts nothing it is about to compare. It reads the records that
give the epoch its leaves from the store, which decodes each from its stored bytes as it reads
it, and checks every signature again over those same bytes (the store verified them on the way
in; the audit does not take that on trust), checks the rules that tie each record to the
project (`protocol.validate`), and builds the tree of the records that pass, as `protocol.epoch`
defines it. Which records those are:

- an anchored epoch (the store holds an owner's epoch root of it): the acceptances its manifest
  lists, every part of which is checked too, and their contributions. The manifest is that of
  the root naming the anchor found on the chain, else of the first root. Acceptances in force
  that the manifest does not list are late: they are reported (`late`), not found at fault, so
  the verdict on an honest anchor does not depend on what arrived after it;
- an open epoch: the acceptances in force, less the contributions an anchored epoch pays.

That local tree is the reference. Every other statement about the epoch is then compared with it
and with each other:

- the `Anchored` event on chain, found under the anchoring address (`node.chain.anchors`: the sender
  of the anchor transaction the owner's `epoch_root` names, else the project's payout address);
- the owner's signed `epoch_root` records in the store, which also name the chain, contract and
  transaction of the anchor;
- optionally, the tree dump (OpenZeppelin `standard-v1`) that the anchoring node published,
  which is the only source that says leaf by leaf what was anchored.

Each difference is one `Finding`, typed by `Kind`, naming the record or contribution at fault and
the two values that disagree. A bad record is reported and left out of the local tree, so it
also shows up as the root mismatch it causes. The audit writes nothing.

It scales to epochs of 100,000 leaves by reading the store a page at a time and checking each
page's signatures in worker threads (libsodium releases the GIL) while the next page is read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from node.chain.anchors import find_epoch_anchor, published_anchors
from node.chain.client import Allocation, Anchor, ChainClient, PoolState
from node.errors import AuditError
from node.net.verify import THREADS
from protocol import (
    BadSignature,
    Contribution,
    EpochRoot,
    InvalidRecord,
    Project,
    ProtocolError,
    Record,
    decode,
)
from protocol.envelope import signature_valid
from protocol.epoch import Summary, first_root, leaves, listed
from protocol.merkle import Leaf, MerkleTree, checksum
from protocol.records import Acceptance, Manifest, project_id
from protocol.validate import (
    check,
    check_acceptance,
    check_authorized,
    check_contribution,
    check_epoch_root,
    check_manifest,
)
from storage import Store
from storage.store import MAX_LIMIT

__all__ = ["AuditError", "AuditReport", "Finding", "Kind", "audit_epoch"]


class Kind(StrEnum):
    """What a finding is about; the JSON form of a finding carries this value as `kind`."""

    # A record of the epoch whose signature does not verify from its stored bytes.
    BAD_SIGNATURE = "bad_signature"
    # A signed record that breaks a rule: an acceptance by neither the owner nor a reviewer of
    # the project in force, a record of another project, a record dated in the future.
    RULE_VIOLATION = "rule_violation"
    # A leaf of the published tree that the local records do not give.
    MISSING_LEAF = "missing_leaf"
    # A leaf of the local records that the published tree does not have.
    EXTRA_LEAF = "extra_leaf"
    # A contribution in both trees with different weights, or different payout addresses.
    WEIGHT_MISMATCH = "weight_mismatch"
    PAYOUT_MISMATCH = "payout_mismatch"
    # The root, leaf count or total weight that a source states differs from the local tree's.
    ROOT_MISMATCH = "root_mismatch"
    LEAF_COUNT_MISMATCH = "leaf_count_mismatch"
    TOTAL_WEIGHT_MISMATCH = "total_weight_mismatch"
    # No `Anchored` event for (project payout address, project, epoch) on the chain.
    NOT_ANCHORED = "not_anchored"
    # No signed `epoch_root` record of the epoch in the store.
    NO_EPOCH_ROOT = "no_epoch_root"
    # An `epoch_root` record names another chain id, contract or transaction than the anchor's.
    EPOCH_ROOT_MISMATCH = "epoch_root_mismatch"
    # The project's pool allocated money to an epoch that no epoch root of the owner names on
    # this chain: an anchor nobody can audit, whose leaves nobody may know.
    UNPUBLISHED_ALLOCATION = "unpublished_allocation"


@dataclass(frozen=True, slots=True)
class Finding:
    """One difference the audit found.

    Attributes:
        kind: what kind of difference.
        message: one line a person understands.
        record: the id of the record at fault, if one is.
        contribution: the contribution (leaf) concerned, if one is.
        source: what was compared with the local records: "chain", "dump" or "epoch_root".
        field: the field that differs (root, leaf_count, weight, chain_id, tx_hash, ...).
        expected: the value the reference holds: the local records' (or, for an epoch root's
            chain fields, the chain's).
        found: the value `source` states.
    """

    kind: Kind
    message: str
    record: bytes | None = None
    contribution: bytes | None = None
    source: str | None = None
    field: str | None = None
    expected: str | None = None
    found: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "message": self.message,
            "record": _hex_or_none(self.record),
            "contribution": _hex_or_none(self.contribution),
            "source": self.source,
            "field": self.field,
            "expected": self.expected,
            "found": self.found,
        }


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What an audit of (project, epoch) found.

    Attributes:
        project_id, epoch: the epoch audited.
        owner: the anchoring address (`node.chain.anchors`): the sender of the anchor, or if none was
            found, the payout address of the project revision in force.
        local: root, leaf count and total weight of the tree of the valid local records, or None
            if no valid record puts a leaf in the epoch.
        records: how many records were decoded and checked (signature and rules).
        chain_id, contract: the chain that was read, or None for an audit without a chain.
        anchor: the `Anchored` event found, or None.
        epoch_roots: the ids of the `epoch_root` records of the epoch in the store.
        dump_root: the root of the tree dump given, or None.
        findings: every difference, in the order found.
        manifest: the epoch root whose manifest gave the local tree, or None (open epoch).
        late: the acceptances in force of the epoch that its manifest does not list: they
            came after the anchor and count for nothing. Not findings.
    """

    project_id: bytes
    epoch: int
    owner: bytes
    local: Summary | None
    records: int
    chain_id: int | None
    contract: bytes | None
    anchor: Anchor | None
    epoch_roots: tuple[bytes, ...]
    dump_root: bytes | None
    findings: tuple[Finding, ...] = field(default=())
    manifest: bytes | None = None
    late: tuple[bytes, ...] = ()
    # The project's pools per token (owner: the project's anchoring address), and every
    # allocation made from them, to any epoch: empty without a chain.
    pools: tuple[tuple[bytes, PoolState], ...] = ()
    allocations: tuple[Allocation, ...] = ()

    @property
    def ok(self) -> bool:
        """True if nothing differs: the anchored root is that of valid, signed, accepted work."""
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        """Returns the report as JSON-ready values, with the same keys every time."""
        local = self.local
        anchor = self.anchor
        return {
            "ok": self.ok,
            "project_id": _hex(self.project_id),
            "epoch": self.epoch,
            "owner": checksum(self.owner),
            "leaves": 0 if local is None else local.leaf_count,
            "total_weight": 0 if local is None else local.total_weight,
            "root": None if local is None else _hex(local.root),
            "records_checked": self.records,
            "chain": None
            if self.chain_id is None or self.contract is None
            else {
                "chain_id": self.chain_id,
                "contract": checksum(self.contract),
                "anchor": None
                if anchor is None
                else {
                    "root": _hex(anchor.root),
                    "leaf_count": anchor.leaf_count,
                    "total_weight": anchor.total_weight,
                    "tx_hash": _hex(anchor.tx_hash),
                    "block_number": anchor.block_number,
                },
            },
            "epoch_roots": [_hex(rid) for rid in self.epoch_roots],
            "manifest_of": _hex_or_none(self.manifest),
            "late": [_hex(rid) for rid in self.late],
            "dump_root": _hex_or_none(self.dump_root),
            "pools": [
                {
                    "token": checksum(token),
                    "funded": str(pool.funded),
                    "unallocated": str(pool.unallocated),
                    "refunded": str(pool.refunded),
                }
                for token, pool in self.pools
            ],
            "allocations": [
                {
                    "epoch": a.epoch,
                    "token": checksum(a.token),
                    "amount": str(a.amount),
                    "tx_hash": _hex(a.tx_hash),
                }
                for a in self.allocations
            ],
            "findings": [finding.to_json() for finding in self.findings],
        }

    def summary(self) -> str:
        """Returns the report as a few lines of text for a person."""
        local = self.local
        verdict = "OK" if self.ok else f"{len(self.findings)} finding(s)"
        lines = [f"Audit of project {_hex(self.project_id)} epoch {self.epoch}: {verdict}"]
        if local is None:
            lines.append("  local records: no valid leaf in this epoch")
        else:
            lines.append(
                f"  local records: {local.leaf_count:,} leaves, total weight "
                f"{local.total_weight:,}, root {_hex(local.root)}"
            )
        lines.append(f"  records checked (signature and rules): {self.records:,}")
        if self.chain_id is None or self.contract is None:
            lines.append("  chain: not checked")
        elif self.anchor is None:
            lines.append(
                f"  chain {self.chain_id}, contract {checksum(self.contract)}: not anchored by "
                f"{checksum(self.owner)}"
            )
        else:
            a = self.anchor
            lines.append(
                f"  chain {self.chain_id}, contract {checksum(self.contract)}: anchored by "
                f"{checksum(self.owner)} in tx {_hex(a.tx_hash)} (block {a.block_number}): "
                f"{a.leaf_count:,} leaves, total weight {a.total_weight:,}, root {_hex(a.root)}"
            )
        lines.append(f"  epoch_root records: {len(self.epoch_roots)}")
        if self.manifest is not None:
            lines.append(f"  leaves from the manifest of epoch root {_hex(self.manifest)}")
        if self.late:
            lines.append(
                f"  late acceptances (after the anchor; not counted, not findings): "
                f"{len(self.late):,}"
            )
        if self.dump_root is not None:
            lines.append(f"  tree dump: root {_hex(self.dump_root)}")
        for token, pool in self.pools:
            lines.append(
                f"  pool in {checksum(token)}: funded {pool.funded:,}, unallocated "
                f"{pool.unallocated:,}, refunded {pool.refunded:,} (smallest units)"
            )
        mine = [a for a in self.allocations if a.epoch == self.epoch]
        if mine:
            lines.append(
                "  allocated from the pool to this epoch: "
                + ", ".join(f"{a.amount:,} of {checksum(a.token)}" for a in mine)
            )
        lines.extend(f"  - {f.kind.value}: {f.message}" for f in self.findings)
        return "\n".join(lines)


def audit_epoch(
    store: Store,
    chain: ChainClient | None,
    project_id: bytes,
    epoch: int,
    dump: Mapping[str, Any] | None = None,
    *,
    now: float | None = None,
) -> AuditReport:
    """Audits one epoch of a project against the chain, the epoch roots and a tree dump.

    Args:
        store: the store holding the project's records.
        chain: the chain to read the anchor from, or None to audit the records alone.
        project_id: the project.
        epoch: the epoch.
        dump: the `standard-v1` dump of the anchored tree, as published by the anchoring node.
        now: the time for the clock rule (records dated too far ahead); defaults to the clock.

    Raises:
        AuditError: the project is not stored, or `dump` is not a valid tree dump.
        ChainError: the chain could not be read.
        StorageError: the store could not be read.
    """
    now = time.time() if now is None else now
    project = store.project(project_id)
    if project is None:
        raise AuditError(f"project {_hex(project_id)} is not in the store")
    published = _load_dump(dump)
    audit = _Audit(project, epoch, now)
    audit.verify([project])
    roots = _epoch_roots(store, project_id, epoch)
    valid_roots = audit.roots(roots)
    owner = project.expect(Project).payout
    anchor = None
    tried: list[bytes] = []
    if chain is not None:
        tried, anchor = find_epoch_anchor(chain, store, project, epoch)
    chosen = _chosen(valid_roots, chain, anchor)
    late: tuple[bytes, ...] = ()
    if chosen is None:
        local_leaves = audit.read(store)
    else:
        local_leaves, covered = audit.committed(store, chosen)
        late = _late(store, project_id, epoch, covered)
    local = _summary(local_leaves)
    if chain is not None:
        if anchor is None:
            audit.add(
                Kind.NOT_ANCHORED,
                f"no Anchored event of project {_hex(project_id)} epoch {epoch} by "
                f"{' or '.join(checksum(a) for a in tried)} on chain {chain.chain_id} at "
                f"{checksum(chain.address)}",
                source="chain",
            )
        else:
            owner = anchor.owner
            audit.compare(
                "chain", None, local, Summary(anchor.root, anchor.leaf_count, anchor.total_weight)
            )
    for root in valid_roots:
        body = root.expect(EpochRoot)
        audit.compare(
            "epoch_root", root.id, local, Summary(body.root, body.leaf_count, body.total_weight)
        )
        if chain is not None and anchor is not None:
            audit.placed(root, body, chain, anchor)
    if not valid_roots:
        audit.add(
            Kind.NO_EPOCH_ROOT,
            f"the store has no valid epoch_root record of project {_hex(project_id)} epoch {epoch}",
            source="epoch_root",
        )
    if published is not None:
        audit.compare(
            "dump",
            None,
            local,
            Summary(published.root, len(published), sum(leaf.weight for leaf in published.leaves)),
        )
        audit.leaves(store, local_leaves, published.leaves)
    pools: list[tuple[bytes, PoolState]] = []
    allocations: list[Allocation] = []
    if chain is not None:
        pool_owner = project.expect(Project).payout
        pools = [
            (token, chain.pool(pool_owner, project_id, token))
            for token in chain.pool_tokens(pool_owner, project_id)
        ]
        allocations = chain.allocations(pool_owner, project_id)
        for allocation in allocations:
            if not published_anchors(
                store, project, allocation.epoch, chain.chain_id, chain.address
            ):
                audit.add(
                    Kind.UNPUBLISHED_ALLOCATION,
                    f"the pool allocated {allocation.amount} of {checksum(allocation.token)} to "
                    f"epoch {allocation.epoch} (tx {_hex(allocation.tx_hash)}), which no "
                    f"epoch_root record of the owner names on chain {chain.chain_id}",
                    source="pool",
                    field="epoch",
                    found=str(allocation.epoch),
                )
    return AuditReport(
        project_id=project_id,
        epoch=epoch,
        owner=owner,
        local=local,
        records=audit.checked,
        chain_id=None if chain is None else chain.chain_id,
        contract=None if chain is None else chain.address,
        anchor=anchor,
        epoch_roots=tuple(root.id for root in roots),
        dump_root=None if published is None else published.root,
        findings=tuple(audit.findings),
        manifest=None if chosen is None else chosen.id,
        late=late,
        pools=tuple(pools),
        allocations=tuple(allocations),
    )


def _chosen(
    roots: Sequence[Record], chain: ChainClient | None, anchor: Anchor | None
) -> Record | None:
    """Returns the epoch root whose manifest gives the local tree: the one naming the anchor's
    transaction on this chain and contract, else the first (`protocol.epoch.first_root`)."""
    if chain is not None and anchor is not None:
        for root in roots:
            body = root.expect(EpochRoot)
            if (body.chain_id, body.contract, body.tx_hash) == (
                chain.chain_id,
                chain.address,
                anchor.tx_hash,
            ):
                return root
    return first_root(roots)


def _late(
    store: Store, project_id: bytes, epoch: int, covered: frozenset[bytes]
) -> tuple[bytes, ...]:
    """Returns the acceptances in force of an anchored epoch that its manifest does not list."""
    # Only ids are compared, so they come from the index: no acceptance is read or decoded.
    found: list[bytes] = []
    cursor = None
    while True:
        page = store.acceptance_ids(project_id, epoch, cursor=cursor, limit=_PAGE)
        found += [aid for aid in page.items if aid not in covered]
        if page.cursor is None:
            return tuple(found)
        cursor = page.cursor


# Records per page read from the store, and per batch handed to a verifying thread.
_PAGE = MAX_LIMIT
_CHUNK = 500


class _Audit:
    """The findings of one audit as it goes, and the checks that produce them."""

    def __init__(self, project: Record, epoch: int, now: float) -> None:
        self.project = project
        self.project_id = project_id(project.author, project.expect(Project).name)
        self.epoch = epoch
        self.now = now
        self.findings: list[Finding] = []
        self.checked = 0
        # Other epochs of the project, by whether a valid root of theirs is stored.
        self._rooted: dict[int, bool] = {}

    def add(self, kind: Kind, message: str, **details: Any) -> None:
        self.findings.append(Finding(kind, message, **details))

    def verify(self, records: Sequence[Record]) -> set[bytes]:
        """Checks the signatures and the clock rule of `records`; returns the ids that fail."""
        return self._collect(records, _verify(records, self.now))

    def _collect(
        self, records: Sequence[Record], errors: list[tuple[int, ProtocolError]]
    ) -> set[bytes]:
        self.checked += len(records)
        bad = set()
        for index, exc in errors:
            record = records[index]
            bad.add(record.id)
            kind = Kind.RULE_VIOLATION if _is_rule(exc) else Kind.BAD_SIGNATURE
            self.add(kind, f"{record.kind} {_hex(record.id)}: {exc}", record=record.id)
        return bad

    def roots(self, roots: Sequence[Record]) -> list[Record]:
        """Checks the epoch roots' signatures and rules; returns those that pass."""
        bad = self.verify(roots)
        valid = []
        for root in roots:
            if root.id in bad:
                continue
            try:
                check_epoch_root(root, self.project)
            except ProtocolError as exc:
                self.add(Kind.RULE_VIOLATION, f"epoch_root {_hex(root.id)}: {exc}", record=root.id)
                continue
            valid.append(root)
        return valid

    def read(self, store: Store) -> list[Leaf]:
        """Returns the leaves of an open epoch: those the valid acceptances in force give, less
        the contributions that an anchored epoch pays."""
        return self._leaves(store, _pages(store, self.project_id, self.epoch), manifest=False)

    def committed(self, store: Store, root: Record) -> tuple[list[Leaf], frozenset[bytes]]:
        """Returns the leaves that the valid acceptances an epoch root's manifest lists give,
        and the ids it lists. Every part is checked (signature, link, author) first; a manifest
        that cannot be read whole gives no leaf, which the comparisons then report."""
        parts = self._parts(store, root)
        if parts is None:
            return [], frozenset()
        ids = listed(parts)
        pages = (self._listed_page(store, ids[i : i + _PAGE]) for i in range(0, len(ids), _PAGE))
        return self._leaves(store, pages, manifest=True), frozenset(ids)

    def _parts(self, store: Store, root: Record) -> list[Record] | None:
        body = root.expect(EpochRoot)
        parts: list[Record] = []
        wanted = body.manifest
        for index in range(body.parts):
            part = store.get(wanted)
            if part is None:
                self.add(
                    Kind.RULE_VIOLATION,
                    f"part {index} ({_hex(wanted)}) of the manifest of epoch root "
                    f"{_hex(root.id)} is not in the store",
                    record=root.id,
                )
                return None
            if self.verify([part]):
                return None
            try:
                if index == 0:
                    check_epoch_root(root, self.project, part)
                else:
                    check_manifest(parts[-1], self.project, part, None)
                if index == body.parts - 1:
                    check_manifest(part, self.project, None, None)
            except ProtocolError as exc:
                self.add(
                    Kind.RULE_VIOLATION, f"manifest part {_hex(part.id)}: {exc}", record=part.id
                )
                return None
            parts.append(part)
            wanted = part.expect(Manifest).next
        return parts

    def _listed_page(self, store: Store, ids: Sequence[bytes]) -> list[Record]:
        found = []
        for aid, acceptance in zip(ids, store.get_many(ids), strict=True):
            if acceptance is None or not isinstance(acceptance.body, Acceptance):
                self.add(
                    Kind.RULE_VIOLATION,
                    f"the manifest lists acceptance {_hex(aid)}, which is not in the store",
                    record=aid,
                )
                continue
            found.append(acceptance)
        return found

    def _leaves(self, store: Store, pages: Iterator[list[Record]], *, manifest: bool) -> list[Leaf]:
        """Checks each page of acceptances and their contributions, and returns their leaves:
        acceptances a manifest lists (`manifest`), or acceptances in force of an open epoch.

        A page's signatures are checked in worker threads while the next page is read.
        """
        result: list[Leaf] = []
        with ThreadPoolExecutor(THREADS) as pool:
            pending: tuple[list[Record], list[Record | None], list[Future[Any]]] | None = None
            for accepted in pages:
                works = store.get_many([a.expect(Acceptance).contribution_id for a in accepted])
                records = [*accepted, *(w for w in works if w is not None)]
                futures = [
                    pool.submit(_verify, records[i : i + _CHUNK], self.now)
                    for i in range(0, len(records), _CHUNK)
                ]
                if pending is not None:
                    result += self._finish(store, *pending, manifest=manifest)
                pending = (accepted, works, futures)
            if pending is not None:
                result += self._finish(store, *pending, manifest=manifest)
        if manifest:
            # One leaf per contribution: a manifest listing two acceptances of one is at fault,
            # and neither gives a leaf.
            twice = _twice(result)
            for cid in sorted(twice):
                self.add(
                    Kind.RULE_VIOLATION,
                    f"the manifest lists more than one acceptance of contribution {_hex(cid)}",
                    contribution=cid,
                )
            result = [leaf for leaf in result if leaf.contribution_id not in twice]
        return result

    def _finish(
        self,
        store: Store,
        accepted: list[Record],
        works: list[Record | None],
        futures: list[Future[Any]],
        *,
        manifest: bool,
    ) -> list[Leaf]:
        records = [*accepted, *(w for w in works if w is not None)]
        errors = [
            (i * _CHUNK + index, exc)
            for i, future in enumerate(futures)
            for index, exc in future.result()
        ]
        bad = self._collect(records, errors)
        valid_acceptances = []
        valid_works: dict[bytes, Record] = {}
        for acceptance, work in zip(accepted, works, strict=True):
            if acceptance.id in bad:
                continue
            body = acceptance.expect(Acceptance)
            if work is None:
                self.add(
                    Kind.RULE_VIOLATION,
                    f"acceptance {_hex(acceptance.id)} names contribution "
                    f"{_hex(body.contribution_id)}, which is not in the store",
                    record=acceptance.id,
                    contribution=body.contribution_id,
                )
                continue
            if work.id in bad:
                continue
            try:
                check_contribution(work, self.project)
                check_acceptance(acceptance, self.project, work)
                if manifest:
                    self._listable(store, acceptance)
                else:
                    check_authorized(acceptance, self.project)
            except ProtocolError as exc:
                self.add(
                    Kind.RULE_VIOLATION,
                    f"acceptance {_hex(acceptance.id)} of contribution "
                    f"{_hex(body.contribution_id)}: {exc}",
                    record=acceptance.id,
                    contribution=body.contribution_id,
                )
                continue
            valid_acceptances.append(acceptance)
            valid_works[work.id] = work
        if manifest:
            # Checked one by one above (`_listable`): each listed acceptance gives its leaf.
            return [
                Leaf(
                    work_id,
                    valid_works[work_id].expect(Contribution).payout,
                    a.expect(Acceptance).weight,
                )
                for a in valid_acceptances
                for work_id in (a.expect(Acceptance).contribution_id,)
            ]
        settled = {cid for cid in valid_works if self._settled(store, cid)}
        return list(leaves(self.project, valid_acceptances, valid_works, self.epoch, settled))

    def _settled(self, store: Store, contribution_id: bytes) -> bool:
        """Returns whether another anchored epoch pays a contribution: the store's K index
        says which epochs list it, and one of them must have an epoch root that verifies and is
        the owner's (the K entries of a forged root do not settle anything)."""
        return any(
            epoch != self.epoch and self._anchored(store, epoch)
            for epoch, _ in store.committed_of(contribution_id)
        )

    def _anchored(self, store: Store, epoch: int) -> bool:
        if epoch not in self._rooted:
            valid = False
            for root in _epoch_roots(store, self.project_id, epoch):
                try:
                    check_epoch_root(decode(root.raw), self.project)
                except ProtocolError:
                    continue
                valid = True
                break
            self._rooted[epoch] = valid
        return self._rooted[epoch]

    def _listable(self, store: Store, acceptance: Record) -> None:
        """Checks what makes a listed acceptance count: of this epoch, with a weight, signed by
        the owner or by a reviewer some revision of the project names (the storage rule: a
        reviewer removed after the anchor does not undo it; the owner vouched for the list)."""
        body = acceptance.expect(Acceptance)
        if body.epoch != self.epoch or body.weight == 0:
            raise InvalidRecord(
                f"it is listed in the manifest of epoch {self.epoch}, but puts its contribution "
                f"in epoch {body.epoch} with weight {body.weight}"
            )
        if acceptance.author != self.project.author and not store.named(
            self.project_id, acceptance.author
        ):
            raise InvalidRecord(
                f"it is signed by {acceptance.author.hex()[:16]}, whom no revision of the "
                "project names as a reviewer"
            )

    def compare(
        self, source: str, record: bytes | None, local: Summary | None, stated: Summary
    ) -> None:
        """Adds a finding for each of root, leaf count and total weight that `stated` gets wrong."""
        where = source if record is None else f"{source} record {_hex(record)}"
        mine = local or Summary(b"", 0, 0)
        for kind, name, expected, found in (
            (
                Kind.ROOT_MISMATCH,
                "root",
                None if local is None else _hex(local.root),
                _hex(stated.root),
            ),
            (Kind.LEAF_COUNT_MISMATCH, "leaf_count", str(mine.leaf_count), str(stated.leaf_count)),
            (
                Kind.TOTAL_WEIGHT_MISMATCH,
                "total_weight",
                str(mine.total_weight),
                str(stated.total_weight),
            ),
        ):
            if expected != found:
                self.add(
                    kind,
                    f"{where} states {name} {found}, the local records give {expected}",
                    record=record,
                    source=source,
                    field=name,
                    expected=expected,
                    found=found,
                )

    def placed(self, root: Record, body: EpochRoot, chain: ChainClient, anchor: Anchor) -> None:
        """Adds a finding for each place an epoch root names that is not the anchor's."""
        for name, expected, found in (
            ("chain_id", str(chain.chain_id), str(body.chain_id)),
            ("contract", checksum(chain.address), checksum(body.contract)),
            ("tx_hash", _hex(anchor.tx_hash), _hex(body.tx_hash)),
        ):
            if expected != found:
                self.add(
                    Kind.EPOCH_ROOT_MISMATCH,
                    f"epoch_root record {_hex(root.id)} names {name} {found}, the anchor's is "
                    f"{expected}",
                    record=root.id,
                    source="epoch_root",
                    field=name,
                    expected=expected,
                    found=found,
                )

    def leaves(self, store: Store, local: Sequence[Leaf], published: Sequence[Leaf]) -> None:
        """Adds a finding for each leaf that the local records and the published tree disagree on."""
        mine = {leaf.contribution_id: leaf for leaf in local}
        theirs = {leaf.contribution_id: leaf for leaf in published}
        for cid, leaf in theirs.items():
            other = mine.get(cid)
            if other is None:
                self.add(
                    Kind.MISSING_LEAF,
                    f"the tree dump has contribution {_hex(cid)} (weight {leaf.weight}), which "
                    f"the local records do not put in the epoch: {_why_not(store, cid, self.epoch)}",
                    contribution=cid,
                    source="dump",
                    found=str(leaf.weight),
                )
                continue
            if other.weight != leaf.weight:
                self.add(
                    Kind.WEIGHT_MISMATCH,
                    f"contribution {_hex(cid)} weighs {other.weight} locally, {leaf.weight} in "
                    "the tree dump",
                    contribution=cid,
                    source="dump",
                    field="weight",
                    expected=str(other.weight),
                    found=str(leaf.weight),
                )
            if other.payout != leaf.payout:
                self.add(
                    Kind.PAYOUT_MISMATCH,
                    f"contribution {_hex(cid)} pays {checksum(other.payout)} locally, "
                    f"{checksum(leaf.payout)} in the tree dump",
                    contribution=cid,
                    source="dump",
                    field="payout",
                    expected=checksum(other.payout),
                    found=checksum(leaf.payout),
                )
        for cid, leaf in mine.items():
            if cid not in theirs:
                self.add(
                    Kind.EXTRA_LEAF,
                    f"contribution {_hex(cid)} (weight {leaf.weight}) is accepted into the "
                    "epoch locally, but the tree dump does not have it",
                    contribution=cid,
                    source="dump",
                    expected=str(leaf.weight),
                )


def _verify(records: Sequence[Record], now: float) -> list[tuple[int, ProtocolError]]:
    """Checks each record's signature over its stored bytes, and its date.

    The store decoded each record from those bytes as it read it (`Store.get`, everything but
    the signature); checking the signature of the same bytes here completes what `decode` does,
    without decoding a second time. Returns (index, error) of the records that fail. Runs in a
    worker thread (libsodium releases the GIL).
    """
    errors: list[tuple[int, ProtocolError]] = []
    for index, record in enumerate(records):
        try:
            if not signature_valid(record.raw):
                raise BadSignature(
                    f"signature does not verify for author {record.author.hex()[:16]}"
                )
            check(record, now=now)
        except ProtocolError as exc:
            errors.append((index, exc))
    return errors


def _pages(store: Store, project_id: bytes, epoch: int) -> Iterator[list[Record]]:
    cursor = None
    while True:
        page = store.acceptances(project_id, epoch, cursor=cursor, limit=_PAGE)
        if page.items:
            yield list(page.items)
        if page.cursor is None:
            return
        cursor = page.cursor


def _epoch_roots(store: Store, project_id: bytes, epoch: int) -> list[Record]:
    found: list[Record] = []
    cursor = None
    while True:
        page = store.epoch_roots(project_id, epoch=epoch, cursor=cursor, limit=_PAGE)
        found += page.items
        if page.cursor is None:
            return found
        cursor = page.cursor


def _twice(tree_leaves: Sequence[Leaf]) -> set[bytes]:
    seen: set[bytes] = set()
    twice: set[bytes] = set()
    for leaf in tree_leaves:
        (twice if leaf.contribution_id in seen else seen).add(leaf.contribution_id)
    return twice


def _summary(tree_leaves: Sequence[Leaf]) -> Summary | None:
    if not tree_leaves:
        return None
    tree = MerkleTree.build(tree_leaves)
    return Summary(tree.root, len(tree), sum(leaf.weight for leaf in tree_leaves))


def _load_dump(dump: Mapping[str, Any] | None) -> MerkleTree | None:
    if dump is None:
        return None
    try:
        return MerkleTree.load(dump)
    except ProtocolError as exc:
        raise AuditError(f"the tree dump is not valid: {exc}") from exc


def _why_not(store: Store, contribution_id: bytes, epoch: int) -> str:
    """Says why the local records give no leaf for a contribution of a published tree."""
    if store.get(contribution_id) is None:
        return "the contribution is not in the store"
    acceptance = store.acceptance_of(contribution_id)
    if acceptance is None:
        return (
            "the store has no acceptance of it in force (none by the owner or a reviewer of the "
            "project revision in force)"
        )
    body = acceptance.expect(Acceptance)
    if body.weight == 0:
        return f"its acceptance in force {_hex(acceptance.id)} withdraws it (weight 0)"
    if body.epoch != epoch:
        return f"its acceptance in force {_hex(acceptance.id)} is for epoch {body.epoch}"
    return "its records are rejected (see the findings above)"


def _is_rule(exc: ProtocolError) -> bool:
    return isinstance(exc, InvalidRecord)


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _hex_or_none(data: bytes | None) -> str | None:
    return None if data is None else _hex(data)
