"""Ingest: how records, their indexes and the orphan area change, one write batch per call.

Theory of operation. `Store.ingest` builds one `Ingest` per call. Every change of the call goes
into one LevelDB write batch, written at the end, so a call is all or nothing: a crash, a full
disk or a bug anywhere before the write leaves the store as it was. A write batch cannot be read
back, so the call keeps an overlay of what it wrote that later records of the same call may need
to read: the records it stored, the revisions it put in force, the projects in force, topic
counts. Reads consult the overlay first, then the database.

A record goes through these steps (`offer`):

1. Known already? Stored (in the database or earlier in this call): a duplicate, nothing is
   written. Waiting in the orphan area: still an orphan, nothing is written. The filter of
   stored ids (`storage.seen`) answers this without a read for almost every new record.
2. `validate.check`: the clock. A record from the future is rejected now, even as an orphan.
3. Dependencies (`validate.dependencies`): if any is missing, the record is parked in the orphan
   area, with one "waiting" entry per missing dependency.
4. The rules that need its dependencies (`check_contribution`, ...), against the project
   revision in force. A record that breaks one is rejected and never stored.
5. Applied: the record, its topic entry and its kind's index entries; for a revisable record,
   the latest-revision entry and the acceptance index if it supersedes the record in force.
6. Orphans waiting for what the record provides lose that wait; those that wait for nothing more
   go back to step 4, in id order, so a project releases its contributions, which release their
   acceptances, all in the same batch.

Every stored revision stays stored (and in its topic, so that sync converges on the same sets);
only the L and E entries follow the record in force, chosen by (revision, id) exactly as
`protocol.validate.supersedes` orders them, so the outcome does not depend on arrival order.

The orphan area is bounded (count and bytes); past a bound the oldest arrivals are evicted. Its
index is small by construction, so the store mirrors it in memory (`Orphans`); if a call fails
before its write, the store reloads the mirror from the database.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Generic, TypeVar

from protocol import Acceptance, Contribution, EpochRoot, Profile, Project, ProtocolError, Record
from protocol import decode as decode_record
from protocol.records import project_id
from protocol.validate import (
    Ref,
    check,
    check_acceptance,
    check_contribution,
    check_epoch_root,
    dependencies,
)
from storage import keys
from storage.errors import translate
from storage.values import IngestResult

if TYPE_CHECKING:
    from storage.store import Store

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


class Ingest:
    """The work of one `Store.ingest` call; see the module comment."""

    def __init__(self, store: Store, now: float) -> None:
        self.store = store
        self.db = store._db
        self.now = now
        self.orphans = store._orphan_index()
        self.seen = store._seen
        self.wb = self.db.write_batch(sync=store.sync)
        self.put = self.wb.put
        self.topic_of = store._topic_of
        # The overlay: what this call wrote that it may read back.
        self.stored: dict[bytes, Record] = {}
        self.latest: dict[bytes, tuple[bytes, int]] = {}
        self.projects: dict[bytes, Record] = {}
        self.counts: dict[str, int] = {}
        self.parked: dict[bytes, Record] = {}
        self.works: list[Record] = []
        # Contributions that an acceptance of this call judged.
        self.judged: set[bytes] = set()
        self.unparked = False
        self.ready: deque[bytes] = deque()
        # The result.
        self.added: list[bytes] = []
        self.duplicates: list[bytes] = []
        self.orphaned: list[bytes] = []
        self.rejected: list[tuple[bytes, ProtocolError]] = []
        self.evicted: list[bytes] = []
        # Ids of the records passed in, to tell them from orphans of earlier calls.
        self.offered: set[bytes] = set()

    def run(self, records: Iterable[Record]) -> IngestResult:
        known, offer = self.known, self.offer
        for record in records:
            if not known(record.id):
                offer(record)
        return self.finish()

    def run_raw(self, blobs: Iterable[bytes]) -> IngestResult:
        for blob in blobs:
            data = bytes(blob)
            rid = hashlib.sha256(data).digest()
            if self.known(rid):
                continue
            try:
                record = decode_record(data)
            except ProtocolError as exc:
                self.offered.add(rid)
                self.rejected.append((rid, exc))
                continue
            self.offer(record)
        return self.finish()

    def finish(self) -> IngestResult:
        self.evict()
        store = self.store
        totals = {name: store._count(name) + more for name, more in self.counts.items()}
        for name, total in totals.items():
            self.wb.put(keys.count(name), keys.u64(total))
        # The store's caches must never run ahead of the database, even if the write fails or
        # this call is interrupted right after it (KeyboardInterrupt): before the write, each
        # learns what can only err on the safe side (an id filter that holds more ids costs a
        # read; a forgotten cache entry is read again), and what it may keep only once the
        # records are stored comes after the write.
        self.seen.update(self.stored)
        for contribution_id in self.judged:
            store._unjudged.pop(contribution_id)
        for pid in self.projects:
            store._projects.pop(pid)
        for name in totals:
            del store._counts[name]
        with translate(store.path, "writing to"):
            self.wb.write()
        store._counts.update(totals)
        for pid, posting in self.projects.items():
            store._projects.put(pid, posting)
        for record in self.works:
            store._works.put(record.id, record)
            if record.id not in self.judged:
                store._unjudged.put(record.id, True)
        waiting, offered = self.orphans.entries, self.offered
        released: tuple[bytes, ...] = ()
        discarded: tuple[tuple[bytes, ProtocolError], ...] = ()
        if not self.unparked:
            # The common case: nothing of an earlier call was released, nothing to sort out.
            added, rejected = tuple(self.added), tuple(self.rejected)
        else:
            added = tuple(r for r in self.added if r in offered)
            released = tuple(r for r in self.added if r not in offered)
            rejected = tuple(e for e in self.rejected if e[0] in offered)
            discarded = tuple(e for e in self.rejected if e[0] not in offered)
        return IngestResult(
            added=added,
            duplicates=tuple(self.duplicates),
            orphaned=tuple(dict.fromkeys(r for r in self.orphaned if r in waiting)),
            rejected=rejected,
            released=released,
            discarded=discarded,
            evicted=tuple(self.evicted),
        )

    # Steps 1 to 6.

    def known(self, rid: bytes) -> bool:
        """Sorts out a record that is stored or waiting already; returns True if it was."""
        if rid in self.orphans.entries:
            self.offered.add(rid)
            self.orphaned.append(rid)
            return True
        if rid in self.stored or (rid in self.seen and self.db.get(keys.RECORD + rid) is not None):
            self.duplicates.append(rid)
            return True
        return False

    def offer(self, record: Record) -> None:
        self.offered.add(record.id)
        try:
            check(record, now=self.now)
        except ProtocolError as exc:
            self.rejected.append((record.id, exc))
            return
        self.admit(record)
        while self.ready:
            self.admit(self.unpark(self.ready.popleft()))

    def admit(self, record: Record) -> None:
        found: dict[str, Record] = {}
        missing: list[Ref] = []
        for ref in dependencies(record):
            parent = self.lookup(ref)
            if parent is None:
                missing.append(ref)
            else:
                found[ref.kind] = parent
        if missing:
            self.park(record, missing)
            return
        body = record.body
        try:
            if isinstance(body, Contribution):
                check_contribution(record, found["project"])
            elif isinstance(body, Acceptance):
                check_acceptance(record, found["project"], found["contribution"])
            elif isinstance(body, EpochRoot):
                check_epoch_root(record, found["project"])
        except ProtocolError as exc:
            self.rejected.append((record.id, exc))
            return
        self.apply(record)

    def apply(self, record: Record) -> None:
        rid, body, put, counts = record.id, record.body, self.put, self.counts
        put(keys.RECORD + rid, record.raw)
        self.stored[rid] = record
        name, prefix = self.topic_of(record)
        created = keys.u64(body.created_at)
        put(prefix + created + rid, b"")
        counts[name] = counts.get(name, 0) + 1
        if isinstance(body, Contribution):
            put(keys.CONTRIBUTIONS + body.project_id + created + rid, b"")
            put(keys.BY_AUTHOR + record.author + created + rid, b"")
            self.works.append(record)
        elif isinstance(body, Acceptance):
            self.accept(record, body)
        elif isinstance(body, EpochRoot):
            put(keys.root(body.project_id, body.epoch, rid), b"")
        elif isinstance(body, Project):
            pid = project_id(record.author, body.name)
            if self.revise("project", pid, record, body.revision)[0]:
                self.projects[pid] = record
            self.release(Ref("project", pid))
        elif isinstance(body, Profile):
            self.revise("profile", record.author, record, body.revision)
        self.added.append(rid)
        if self.orphans.waiting:
            self.release(Ref("contribution", rid))

    def revise(
        self, slot: str, subject: bytes, record: Record, revision: int
    ) -> tuple[bool, tuple[bytes, int] | None]:
        """Puts `record` in force in its slot if it supersedes the record in force.

        Returns whether it did, and the (id, revision) in force before, if any.
        """
        key = keys.latest(slot, subject)
        current = self.latest.get(key)
        if current is None and not (slot == "acceptance" and self.unjudged(subject)):
            value = self.db.get(key)
            if value is not None:
                current = keys.read_latest(value)
        # (revision, id): the order of `protocol.validate.supersedes`.
        if current is not None and (revision, record.id) <= (current[1], current[0]):
            return False, current
        self.wb.put(key, keys.latest_value(record.id, revision))
        self.latest[key] = (record.id, revision)
        if slot == "acceptance":
            self.judged.add(subject)
        return True, current

    def accept(self, record: Record, body: Acceptance) -> None:
        in_force, replaced = self.revise("acceptance", body.contribution_id, record, body.revision)
        if not in_force:
            return
        if replaced is not None:
            previous = self.get(replaced[0])
            assert previous is not None, "a revision in force is not stored"
            old = previous.expect(Acceptance)
            if old.weight > 0:
                self.wb.delete(
                    keys.accepted_prefix(old.project_id, old.epoch) + old.contribution_id
                )
        if body.weight > 0:
            self.wb.put(
                keys.accepted_prefix(body.project_id, body.epoch) + body.contribution_id, record.id
            )

    def unjudged(self, contribution_id: bytes) -> bool:
        """Returns True if the contribution is known to have no acceptance stored yet.

        An acceptance is applied only after its contribution, so a contribution that this call
        stored, or that the store stored and saw no acceptance for since, has none in the
        database: its L entry need not be read.
        """
        return (
            contribution_id in self.stored or self.store._unjudged.get(contribution_id) is not None
        )

    # Orphans.

    def park(self, record: Record, missing: list[Ref]) -> None:
        rid = record.id
        seq = self.orphans.add(rid, len(record.raw), missing)
        self.wb.put(keys.orphan(rid), record.raw)
        self.wb.put(keys.arrival(seq, rid), keys.u32(len(record.raw)))
        for ref in missing:
            self.wb.put(keys.waiting(ref, rid), b"")
        self.parked[rid] = record
        self.orphaned.append(rid)

    def release(self, ref: Ref) -> None:
        """Marks `ref` as provided for the orphans waiting for it; queues those now complete."""
        ids = self.orphans.waiting.pop(ref, None)
        if not ids:
            return
        for rid in sorted(ids):
            self.wb.delete(keys.waiting(ref, rid))
            missing = self.orphans.missing[rid]
            missing.discard(ref)
            if not missing:
                self.ready.append(rid)

    def unpark(self, rid: bytes) -> Record:
        """Takes a complete orphan out of the orphan area and returns it."""
        self.unparked = True
        record = self.parked.pop(rid, None)
        if record is None:
            raw = self.db.get(keys.orphan(rid))
            assert raw is not None, "orphan index out of step with its table"
            # The orphan's signature was checked when it arrived.
            record = decode_record(raw, verify=False)
        self.drop(rid)
        return record

    def drop(self, rid: bytes) -> None:
        seq, refs = self.orphans.remove(rid)
        self.wb.delete(keys.orphan(rid))
        self.wb.delete(keys.arrival(seq, rid))
        for ref in refs:
            self.wb.delete(keys.waiting(ref, rid))

    def evict(self) -> None:
        orphans, store = self.orphans, self.store
        while orphans.entries and (
            len(orphans.entries) > store.max_orphans or orphans.size > store.max_orphan_bytes
        ):
            rid = next(iter(orphans.entries))
            self.parked.pop(rid, None)
            self.drop(rid)
            self.evicted.append(rid)

    # Reads through the overlay.

    def lookup(self, ref: Ref) -> Record | None:
        """Returns the record that provides `ref`: the project in force, or the record."""
        if ref.kind == "project":
            return self.project(ref.key)
        return self.get(ref.key)

    def project(self, pid: bytes) -> Record | None:
        posting = self.projects.get(pid)
        if posting is None:
            posting = self.store._project_in_force(pid)
        return posting

    def get(self, rid: bytes) -> Record | None:
        """Returns a record stored by this call or before it, or None."""
        record = self.stored.get(rid) or self.store._works.get(rid)
        if record is None:
            raw = self.db.get(keys.RECORD + rid)
            if raw is None:
                return None
            # Stored bytes were verified on the way in.
            record = decode_record(raw, verify=False)
        return record
