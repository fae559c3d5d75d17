"""An epoch's Merkle tree as the stored records make it, kept while they stay the same.

An anchored epoch's tree is built from the acceptances its manifest lists (`protocol.epoch`): the
manifest of the epoch root on the caller's chain, or else of the first root (an honest owner
publishes one manifest per epoch, which all its roots name). An open epoch's tree is built from
the stored acceptances in force, less the contributions an anchored epoch pays already.

Building the tree of a 100,000-leaf epoch reads and decodes 200,000 records and hashes the
tree: seconds. Every proof export, share and claim of a contribution in the epoch needs that
tree, so the last few built are kept, keyed by what they were built from. An anchored epoch's
tree is keyed by its root record, which never changes. An open epoch's by the store, the project
revision in force and the record count of the project's work topic: every record that can
change it changes one of those (acceptances, contributions, manifests and roots are on the work
topic, records are never removed, and which acceptances are in force depends only on them and on
the project revision in force).

The audit (node/chain/audit.py) does not use this: it trusts nothing it has not checked itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from protocol import Acceptance, EpochRoot, Project, Record
from protocol.epoch import (
    Standing,
    Summary,
    committed,
    counted,
    first_root,
    listed,
    manifest_parts,
    standing,
    summarize,
)
from protocol.errors import MissingRecord
from protocol.merkle import MerkleTree
from protocol.records import project_id
from protocol.topics import shard, work
from storage import Store
from storage.store import MAX_LIMIT

# Trees kept; one of 100,000 leaves takes a few tens of MiB.
KEPT = 4

_kept: OrderedDict[Hashable, EpochTree] = OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class EpochTree:
    """An epoch's tree and where its leaves come from.

    Attributes:
        merkle, summary: the tree and its root, leaf count and total weight.
        acceptances: the ids of the acceptances that give the leaves, sorted: the manifest's
            list for an anchored epoch, what a manifest would list for an open one.
        root: the epoch root whose manifest gave the tree, or None for an open epoch.
    """

    merkle: MerkleTree
    summary: Summary
    acceptances: tuple[bytes, ...]
    root: Record | None


def stored_tree(
    store: Store, project: Record, epoch: int, *, chain: tuple[int, bytes] | None = None
) -> EpochTree:
    """Returns the tree of an epoch as the stored records make it.

    Args:
        store: the store.
        project: the project revision in force.
        epoch: the epoch.
        chain: (chain id, contract) whose epoch root to prefer when several name different
            manifests; the first root decides otherwise (`protocol.epoch.first_root`).

    Safe to call from several threads.

    Raises:
        EmptyTree: the epoch is open and no contribution counts in it.
        ProtocolError: a record does not fit (`protocol.epoch`), or a listed record is
            missing, which only a damaged store can show.
        StorageError: the store could not be read.
    """
    pid = project_id(project.author, project.expect(Project).name)
    roots = _roots(store, pid, epoch)
    if roots:
        on_chain = [
            r
            for r in roots
            if chain is not None
            and (r.expect(EpochRoot).chain_id, r.expect(EpochRoot).contract) == chain
        ]
        chosen = first_root(on_chain) or first_root(roots)
        assert chosen is not None
        return committed_tree(store, project, chosen)
    count = store.topic_count(work(shard(pid)))
    key = ("open", id(store), str(store.path), pid, epoch, project.id, count)
    return _kept_or_built(key, lambda: _open(store, project, pid, epoch))


def committed_tree(store: Store, project: Record, root: Record) -> EpochTree:
    """Returns the tree of the manifest an epoch root names (see `stored_tree`)."""
    key = ("root", id(store), str(store.path), root.id)
    return _kept_or_built(key, lambda: _committed(store, project, root))


def _kept_or_built(key: Hashable, build: Callable[[], EpochTree]) -> EpochTree:
    with _lock:
        found = _kept.get(key)
        if found is not None:
            _kept.move_to_end(key)
            return found
    built = build()
    with _lock:
        _kept[key] = built
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    return built


def _roots(store: Store, pid: bytes, epoch: int) -> list[Record]:
    found: list[Record] = []
    cursor = None
    while True:
        page = store.epoch_roots(pid, epoch=epoch, cursor=cursor, limit=MAX_LIMIT)
        found += page.items
        if page.cursor is None:
            return found
        cursor = page.cursor


def _committed(store: Store, project: Record, root: Record) -> EpochTree:
    body = root.expect(EpochRoot)
    ids = listed(manifest_parts(root, project, store.get))
    acceptances: list[Record] = []
    works: dict[bytes, Record] = {}
    for aid in ids:
        acceptance = store.get(aid)
        if acceptance is None:
            raise MissingRecord(f"acceptance {aid.hex()[:16]} of a stored manifest is missing")
        contribution = store.get(acceptance.expect(Acceptance).contribution_id)
        if contribution is not None:
            works[contribution.id] = contribution
        acceptances.append(acceptance)
    merkle = MerkleTree.build(committed(body.project_id, body.epoch, acceptances, works))
    return EpochTree(merkle, summarize(merkle), ids, root)


def _open(store: Store, project: Record, pid: bytes, epoch: int) -> EpochTree:
    acceptances: list[Record] = []
    works: dict[bytes, Record] = {}
    settled: set[bytes] = set()
    cursor = None
    while True:
        page = store.acceptances(pid, epoch, cursor=cursor, limit=MAX_LIMIT)
        for acceptance in page.items:
            cid = acceptance.expect(Acceptance).contribution_id
            contribution = store.get(cid)
            if contribution is not None:  # the store holds no acceptance without it
                works[contribution.id] = contribution
            if store.committed_of(cid):
                settled.add(cid)
            acceptances.append(acceptance)
        if page.cursor is None:
            break
        cursor = page.cursor
    pairs = counted(project, acceptances, works, epoch, settled)
    merkle = MerkleTree.build(leaf for _, leaf in pairs)
    ids = tuple(sorted(acceptance.id for acceptance, _ in pairs))
    return EpochTree(merkle, summarize(merkle), ids, None)


def standing_of(store: Store, contribution_id: bytes) -> Standing | None:
    """Returns where a stored contribution stands (`protocol.epoch.standing`): which of its
    acceptances counts, in which epoch, and whether the one in force is late.

    Raises:
        StorageError: the store could not be read.
    """
    listed_in: list[Record] = []
    for _, aid in store.committed_of(contribution_id):
        acceptance = store.get(aid)
        if acceptance is not None:
            listed_in.append(acceptance)
    in_force = store.acceptance_of(contribution_id)
    if in_force is None and not listed_in:
        return None
    pid = (in_force or listed_in[0]).expect(Acceptance).project_id
    return standing(in_force, listed_in, lambda epoch: store.anchored(pid, epoch))
