"""What the store keeps in memory between ingest calls, and the rule that keeps it true.

Theory of operation. At scale, reads are what ingest pays for: a LevelDB point read that misses
costs more than writing the record (docs/STORAGE.md, "What ingest keeps in memory"). So the
store keeps in memory, in one `Caches` object, what spares them:

- the id filter (`storage.seen`): every stored id, and a few others;
- the orphan index (`Orphans`): a mirror of the Q and W tables, bounded with the orphan area;
- the record count of each topic that ingest has written to (the `count:` meta keys);
- projects in force and records stored lately (`Recent`), which the records that follow them
  are validated against: a contribution its acceptances, the acceptances a manifest part
  lists (hundreds), a proposal its votes;
- contributions stored since opening that no acceptance has been put in force for since: an
  acceptance of one cannot supersede anything, so its L entry need not be read;
- the block summaries of the topics the store was asked about (`storage.blocks`);
- the topic of each project lately seen, which depends on the project id alone.

None of it may ever run ahead of the database, or ingest would take a stored record for a new
one, or validate against a project revision that was never stored. A write can fail (a full
disk) and a call can be interrupted anywhere, even right after its write returned (a
KeyboardInterrupt). So `commit`, which writes every ingest call's batch, changes the caches
around the write in this order:

1. before the write, only what errs on the safe side: the id filter learns the call's ids (an
   id it holds that is not stored costs one read); entries the call makes stale are dropped,
   and so are the counts of the topics it writes to (what is forgotten is read again);
2. the write;
3. after it, what may hold only once the records are stored: the new counts, projects in
   force, records stored lately, contributions still unjudged, and the block summaries.

The orphan index is the exception: a call changes it as it goes, before its write, so when a
call fails the store calls `discard_unwritten`, and the next use reloads it from the database.

Everything here is used under the store's lock (ingest, and the queries that read the block
summaries or the orphan index, take it), so a cache never learns a value older than the last
write.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from protocol import Record
from protocol.topics import topic
from protocol.validate import Ref
from storage import keys
from storage.blocks import Blocks
from storage.errors import translate
from storage.seen import Seen

# Entries per generation of the recent-record caches.
CACHE_SIZE = 8192

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """A bounded map that keeps what was put recently: two generations of at most `size` each.

    Cheaper than an LRU on every call (plain dict operations), which matters on the path of
    every ingested record; what was put more than `size` puts ago may be forgotten.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._new: dict[K, V] = {}
        self._old: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self._new.get(key)
        if value is None:
            value = self._old.get(key)
        return value

    def put(self, key: K, value: V) -> None:
        if len(self._new) >= self.size:
            self._old = self._new
            self._new = {}
        self._new[key] = value

    def update(self, items: dict[K, V]) -> None:
        """Puts every item of `items` (a call's worth), in one dict operation if they fit in a
        generation; a generation never holds more than `size`."""
        if len(items) > self.size:
            # Rare (a call of more than `size` records): one at a time keeps the bound.
            for key, value in items.items():
                self.put(key, value)
            return
        if len(self._new) + len(items) > self.size:
            self._old = self._new
            self._new = {}
        self._new.update(items)

    def pop(self, key: K) -> None:
        self._new.pop(key, None)
        self._old.pop(key, None)


class Orphans:
    """The orphan area's index, mirrored from the Q and W tables (it is bounded, so it fits)."""

    def __init__(self) -> None:
        # id -> (arrival sequence number, envelope size), oldest first.
        self.entries: dict[bytes, tuple[int, int]] = {}
        # id -> the dependencies it still waits for, and the reverse.
        self.missing: dict[bytes, set[Ref]] = {}
        self.waiting: dict[Ref, set[bytes]] = {}
        self.next_seq = 0
        self.size = 0

    @classmethod
    def load(cls, db: object) -> Orphans:
        """Reads the orphan index of a plyvel database."""
        self = cls()
        for key, value in db.iterator(prefix=keys.ARRIVAL):  # type: ignore[attr-defined]
            seq, rid = keys.read_u64(key, 1), key[9:]
            self.entries[rid] = (seq, keys.read_u32(value))
            self.missing[rid] = set()
            self.next_seq = seq + 1
            self.size += keys.read_u32(value)
        for key in db.iterator(prefix=keys.WAITING, include_value=False):  # type: ignore[attr-defined]
            ref, rid = keys.ref_of(key)
            self.missing.setdefault(rid, set()).add(ref)
            self.waiting.setdefault(ref, set()).add(rid)
        return self

    def add(self, rid: bytes, size: int, missing: list[Ref]) -> int:
        seq = self.next_seq
        self.next_seq += 1
        self.entries[rid] = (seq, size)
        self.size += size
        self.missing[rid] = set(missing)
        for ref in missing:
            self.waiting.setdefault(ref, set()).add(rid)
        return seq

    def remove(self, rid: bytes) -> tuple[int, set[Ref]]:
        """Forgets an orphan; returns its sequence number and the refs it still waited for."""
        seq, size = self.entries.pop(rid)
        self.size -= size
        refs = self.missing.pop(rid)
        for ref in refs:
            ids = self.waiting.get(ref)
            if ids is not None:
                ids.discard(rid)
                if not ids:
                    del self.waiting[ref]
        return seq, refs


class Caches:
    """What one store keeps in memory for ingest; see the module comment for its rule.

    The store passes in how to read the database, so that every read still goes through it
    (and its guard): `db` returns the open handle, `load_project` the project revision in force
    in the database, `topic_keys(prefix, low, high)` a topic's index keys in [low, high) without
    the prefix.
    """

    def __init__(
        self,
        path: Path,
        seen: Seen,
        *,
        db: Callable[[], Any],
        load_project: Callable[[bytes], Record | None],
        topic_keys: Callable[[bytes, bytes, bytes | None], list[bytes]],
    ) -> None:
        self._path = path
        self._db = db
        self._load_project = load_project
        self._topic_keys = topic_keys
        # The filter of stored ids (`storage.seen`).
        self.seen = seen
        # Topic -> the block summaries of its index, for the topics asked about; the store's
        # range queries build and read them, `commit` adds what ingest stores.
        self.blocks: dict[str, Blocks] = {}
        self._orphans: Orphans | None = None
        self._counts: dict[str, int] = {}
        self._projects: Recent[bytes, Record] = Recent(CACHE_SIZE)
        self._recent: Recent[bytes, Record] = Recent(CACHE_SIZE)
        self._unjudged: Recent[bytes, bool] = Recent(4 * CACHE_SIZE)
        # Project id -> (topic, T prefix) of its records; small, and cleared when it grows.
        self._topics: dict[bytes, tuple[str, bytes]] = {}
        # Reads on the path of every record, bound here rather than wrapped, which would cost a
        # call each. `recent(rid)`: a record stored lately, or None.
        # `unjudged(rid)`: True if the contribution was stored since opening and no acceptance
        # was put in force for it since, None if that is not known.
        self.recent = self._recent.get
        self.unjudged = self._unjudged.get

    def orphans(self) -> Orphans:
        """Returns the orphan index, read from the database on first use after a failure."""
        if self._orphans is None:
            with translate(self._path, "reading"):
                self._orphans = Orphans.load(self._db())
        return self._orphans

    def discard_unwritten(self) -> None:
        """Forgets what an ingest call that failed may have changed without writing it.

        Only the orphan index changes before the write (`commit` does the rest); it is read
        again from the database on its next use.
        """
        self._orphans = None

    def topic_of(self, record: Record) -> tuple[str, bytes]:
        """Returns the topic of `record` and its T prefix, as `protocol.topics.topic` would."""
        pid = getattr(record.body, "project_id", None)
        if pid is None:
            name = topic(record)
            return name, keys.topic_prefix(name)
        found = self._topics.get(pid)
        if found is None:
            if len(self._topics) >= 4 * CACHE_SIZE:
                self._topics.clear()
            name = topic(record)
            found = self._topics[pid] = (name, keys.topic_prefix(name))
        return found

    def project(self, pid: bytes) -> Record | None:
        """Returns the revision in force of project `pid` as stored, or None."""
        posting = self._projects.get(pid)
        if posting is None:
            posting = self._load_project(pid)
            if posting is not None:
                self._projects.put(pid, posting)
        return posting

    def commit(
        self,
        batch: Any,
        *,
        stored: dict[bytes, Record],
        counts: dict[str, int],
        projects: dict[bytes, Record],
        works: list[bytes],
        judged: set[bytes],
    ) -> None:
        """Writes the batch of an ingest call, and brings the caches up to date around it.

        Args:
            batch: the call's plyvel write batch, complete but for the topic counts.
            stored: the records the call stored, by id.
            counts: how many records the call stored in each topic.
            projects: the project revisions the call put in force, by project id.
            works: the ids of the contributions the call stored.
            judged: the contributions whose acceptance in force the call changed.

        Raises:
            StorageError: the write failed. Nothing of the call is stored, and the caches say
                nothing that the database does not.
        """
        totals = {name: self._count(name) + more for name, more in counts.items()}
        for name, total in totals.items():
            batch.put(keys.count(name), keys.u64(total))
        # Before the write: only what errs on the safe side.
        self.seen.update_many(list(stored))
        for contribution_id in judged:
            self._unjudged.pop(contribution_id)
        for pid in projects:
            self._projects.pop(pid)
        for name in totals:
            del self._counts[name]
        with translate(self._path, "writing to"):
            batch.write()
        # After the write: what holds only once the records are stored.
        self._counts.update(totals)
        if self.blocks:
            self._add_to_blocks(stored, counts)
        for pid, posting in projects.items():
            self._projects.put(pid, posting)
        self._recent.update(stored)
        self._unjudged.update(dict.fromkeys(works if not judged else set(works) - judged, True))

    def _count(self, name: str) -> int:
        if name not in self._counts:
            value = self._db().get(keys.count(name))
            self._counts[name] = 0 if value is None else keys.read_u64(value)
        return self._counts[name]

    def _add_to_blocks(self, stored: dict[bytes, Record], counts: dict[str, int]) -> None:
        """Counts what a call stored into the block summaries of its topics (`storage.blocks`)."""
        added: dict[str, list[bytes]] = {}
        if len(counts) == 1:  # the usual call: records of one topic
            name = next(iter(counts))
            if name in self.blocks:
                added[name] = [keys.u64(r.body.created_at) + i for i, r in stored.items()]
        else:
            for rid, record in stored.items():
                name = self.topic_of(record)[0]
                if name in self.blocks:
                    key = keys.u64(record.body.created_at) + rid
                    added.setdefault(name, []).append(key)
        for name, new in added.items():
            blocks = self.blocks[name]
            prefix = keys.topic_prefix(name)
            for block in blocks.add(new):  # from the last: the indexes below stay valid
                held = self._topic_keys(prefix, blocks.edges[block], blocks.end(block))
                blocks.split(block, held)
