"""An epoch's Merkle tree as the stored records make it, kept while they stay the same.

Building the tree of a 100,000-leaf epoch reads and decodes 200,000 records and hashes the
tree: seconds. Every proof export, share and claim of a contribution in the epoch needs that
tree, so the last few built are kept, keyed by what they were built from: the store, the
project revision in force and the record count of the project's work topic. Every record that
can change an epoch's tree changes one of those: acceptances and contributions are on the work
topic (and records are never removed), and which acceptances are in force depends only on them
and on the project revision in force.

The audit (node/chain/audit.py) does not use this: it trusts nothing it has not checked itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from protocol import Acceptance, Project, Record
from protocol.epoch import Summary, tree
from protocol.merkle import MerkleTree
from protocol.records import project_id
from protocol.topics import shard, work
from storage import Store
from storage.store import MAX_LIMIT

# Trees kept; one of 100,000 leaves takes a few tens of MiB.
KEPT = 4

_Key = tuple[int, str, bytes, int, bytes, int]
_kept: OrderedDict[_Key, tuple[MerkleTree, Summary]] = OrderedDict()
_lock = threading.Lock()


def stored_tree(store: Store, project: Record, epoch: int) -> tuple[MerkleTree, Summary]:
    """Returns the tree of an epoch from the stored acceptances in force and their contributions.

    `project` is the project revision in force. Safe to call from several threads.

    Raises:
        EmptyTree: no contribution is accepted into the epoch.
        ProtocolError: the errors of `protocol.epoch.tree`.
        StorageError: the store could not be read.
    """
    pid = project_id(project.author, project.expect(Project).name)
    key = (id(store), str(store.path), pid, epoch, project.id, store.topic_count(work(shard(pid))))
    with _lock:
        found = _kept.get(key)
        if found is not None:
            _kept.move_to_end(key)
            return found
    built = _build(store, project, pid, epoch)
    with _lock:
        _kept[key] = built
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    return built


def _build(store: Store, project: Record, pid: bytes, epoch: int) -> tuple[MerkleTree, Summary]:
    acceptances: list[Record] = []
    works: dict[bytes, Record] = {}
    cursor = None
    while True:
        page = store.acceptances(pid, epoch, cursor=cursor, limit=MAX_LIMIT)
        for acceptance in page.items:
            contribution = store.get(acceptance.expect(Acceptance).contribution_id)
            if contribution is not None:  # the store holds no acceptance without it
                works[contribution.id] = contribution
            acceptances.append(acceptance)
        if page.cursor is None:
            break
        cursor = page.cursor
    return tree(project, acceptances, works, epoch)
