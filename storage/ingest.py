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
4. The rules that need its dependencies (`check_contribution`, `check_manifest`,
   `check_vote`, ...). A record that breaks one is rejected and never stored. An acceptance is
   stored only if its author is the project's owner or a reviewer that some stored revision of
   the project, or some stored `settings` proposal of it, names (the V index); one whose author
   none names yet is held until the end of the call, in case a record of this call names them,
   and then rejected (see `Ingest.defer` for why not an orphan).
5. Applied: the record, its topic entry and its kind's index entries; for a revisable record
   but a vote (which has only its U entry), the latest-revision entry and the acceptance index
   if it supersedes the record in force; for an epoch root, the K entries of every acceptance its manifest lists (all stored by then: a
   manifest part depends on the next part and on its acceptances, a root on part 0).
6. Orphans waiting for what the record provides lose that wait; those that wait for nothing more
   go back to step 4, in id order, so a project releases its contributions, which release their
   acceptances, all in the same batch.

Every stored revision stays stored (and in its topic, so that sync converges on the same sets);
only the L and E entries follow the record in force, chosen by (revision, id) exactly as
`protocol.validate.supersedes` orders them, so the outcome does not depend on arrival order.
For acceptances, only those whose author the project revision in force authorizes compete
(`protocol.validate.latest_authorized`); when a project revision in force changes the
reviewers, the contributions that the added or removed reviewers accepted (the G index) have
their acceptance in force chosen again from all their stored acceptances (the A index).

The orphan area is bounded (count and bytes); past a bound the oldest arrivals are evicted. Its
index is small by construction, so the store mirrors it in memory (`storage.caches.Orphans`).

What the store keeps in memory between calls (the id filter, the orphan index, topic counts,
recent projects and contributions, block summaries) is a `storage.caches.Caches`. A call reads
it, changes the orphan index as it goes, and changes the rest only through `Caches.commit`,
which writes the call's batch: the rule that keeps the caches from running ahead of the
database lives there, with the code that keeps it.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable
from typing import Any

from protocol import (
    Acceptance,
    Contribution,
    Decision,
    EpochRoot,
    Manifest,
    NotAuthorized,
    Profile,
    Project,
    Proposal,
    ProtocolError,
    Record,
    Vote,
)
from protocol import decode as decode_record
from protocol.records import project_id
from protocol.validate import (
    Ref,
    authorized,
    check,
    check_acceptance,
    check_contribution,
    check_decision,
    check_epoch_root,
    check_manifest,
    check_proposal,
    check_vote,
    dependencies,
)
from storage import keys
from storage.caches import Caches
from storage.values import IngestResult


class Ingest:
    """The work of one `Store.ingest` call; see the module comment."""

    def __init__(
        self,
        caches: Caches,
        db: Any,
        now: float,
        *,
        sync: bool,
        max_orphans: int,
        max_orphan_bytes: int,
    ) -> None:
        """Starts a call on the store whose caches are `caches` and whose open handle is `db`.

        `sync` is the store's setting for its writes; `max_orphans` and `max_orphan_bytes` are
        the bounds of its orphan area.
        """
        self.caches = caches
        self.db = db
        self.now = now
        self.max_orphans = max_orphans
        self.max_orphan_bytes = max_orphan_bytes
        self.orphans = caches.orphans()
        self.seen = caches.seen
        self.wb = db.write_batch(sync=sync)
        self.put = self.wb.put
        self.topic_of = caches.topic_of
        # The overlay: what this call wrote that it may read back.
        self.stored: dict[bytes, Record] = {}
        # L entries written by this call; None for an acceptance slot it emptied.
        self.latest: dict[bytes, tuple[bytes, int] | None] = {}
        # The A, V and G entries of this call: acceptances by contribution, as (revision, id,
        # author); (project id, key) of reviewers named; contributions by (project id, author).
        self.acceptances: dict[bytes, list[tuple[int, bytes, bytes]]] = {}
        self.named: set[tuple[bytes, bytes]] = set()
        self.reviewed: dict[tuple[bytes, bytes], set[bytes]] = {}
        # Acceptances whose author no stored revision names (yet), by id; see `defer`.
        self.deferred: dict[bytes, Record] = {}
        self.again: deque[Record] = deque()
        self.projects: dict[bytes, Record] = {}
        self.counts: dict[str, int] = {}
        self.parked: dict[bytes, Record] = {}
        # The ids of the contributions stored.
        self.works: list[bytes] = []
        # Contributions that an acceptance of this call judged.
        self.judged: set[bytes] = set()
        # The acceptances listed by manifest parts this call stored, by part id, for the K
        # entries of a root of the same call.
        self.lists: dict[bytes, list[Record]] = {}
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
        records = list(records)
        # The id filter is probed for the whole call at once; it changes only in `finish`.
        maybe = self.seen.probe([record.id for record in records])
        known, offer = self.known, self.offer
        for record, stored in zip(records, maybe, strict=True):
            if not known(record.id, stored):
                offer(record)
        return self.finish()

    def run_raw(self, blobs: Iterable[bytes]) -> IngestResult:
        datas = [bytes(blob) for blob in blobs]
        ids = [hashlib.sha256(data).digest() for data in datas]
        maybe = self.seen.probe(ids)
        for data, rid, stored in zip(datas, ids, maybe, strict=True):
            if self.known(rid, stored):
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
        for rid, record in self.deferred.items():
            self.rejected.append((rid, _unnamed(record)))
        self.evict()
        self.caches.commit(
            self.wb,
            stored=self.stored,
            counts=self.counts,
            projects=self.projects,
            works=self.works,
            judged=self.judged,
        )
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

    def known(self, rid: bytes, maybe: bool) -> bool:
        """Sorts out a record that is stored or waiting already; returns True if it was.

        `maybe` is the id filter's answer for `rid` (False: certainly not stored before this
        call).
        """
        if rid in self.orphans.entries:
            self.offered.add(rid)
            self.orphaned.append(rid)
            return True
        if rid in self.deferred:
            # Held until the end of the call, where it is stored or rejected once.
            self.offered.add(rid)
            return True
        if rid in self.stored or (maybe and self.db.get(keys.RECORD + rid) is not None):
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
        while self.ready or self.again:
            if self.ready:
                self.admit(self.unpark(self.ready.popleft()))
            else:
                self.admit(self.again.popleft())

    def admit(self, record: Record) -> None:
        found: dict[str, Record] = {}
        # The acceptances a manifest part lists, which are many refs of one kind.
        listed: list[Record] = []
        missing: list[Ref] = []
        projects, project_in_force, get = self.projects, self.caches.project, self.get
        for ref in dependencies(record):
            # The record that provides `ref`: the project in force, or the record by id.
            if ref.kind == "project":
                parent = projects.get(ref.key) or project_in_force(ref.key)
            else:
                parent = get(ref.key)
            if parent is None:
                missing.append(ref)
            elif ref.kind in ("acceptance", "vote"):
                listed.append(parent)
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
                if not self.vouched(record.author, found["project"], body.project_id):
                    self.defer(record)
                    return
            elif isinstance(body, Manifest):
                check_manifest(record, found["project"], found.get("manifest"), listed)
                self.lists[record.id] = listed
            elif isinstance(body, EpochRoot):
                check_epoch_root(record, found["project"], found["manifest"])
            elif isinstance(body, Proposal):
                check_proposal(record, found["project"])
            elif isinstance(body, Vote):
                check_vote(record, found["proposal"])
            elif isinstance(body, Decision):
                check_decision(record, found["project"], found["proposal"], listed)
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
            self.works.append(rid)
        elif isinstance(body, Acceptance):
            self.accept(record, body)
        elif isinstance(body, EpochRoot):
            put(keys.root(body.project_id, body.epoch, rid), b"")
            self.commit(body)
        elif isinstance(body, Project):
            self.post(record, body)
        elif isinstance(body, Profile):
            self.revise("profile", record.author, record, body.revision)
        elif isinstance(body, Proposal):
            put(keys.proposal(body.project_id, body.created_at, rid), b"")
            if body.action == "settings":
                # A decision may name reviewers: their acceptances are stored, so that they
                # count if it passes (node/governance.py), whatever the arrival order.
                self.name(body.project_id, body.param("reviewers"))
                self.undefer(body.project_id, body.param("reviewers"))
        elif isinstance(body, Vote):
            put(keys.vote(body.proposal_id, record.author, body.revision, rid), b"")
        elif isinstance(body, Decision):
            put(keys.decision(body.proposal_id, body.created_at, rid), b"")
        self.added.append(rid)
        if self.orphans.waiting:
            # Whatever kind of record a dependent takes this one for: if it is not that kind,
            # its check rejects the dependent, as when both arrive in the same call.
            for kind in keys.RECORD_REFS:
                self.release(Ref(kind, rid))

    def commit(self, root: EpochRoot) -> None:
        """Writes the K entries of the acceptances that an epoch root's manifest lists.

        The root was admitted, so every part and every acceptance listed is stored, in this
        call or before it, and was checked (`validate.check_manifest`). A manifest that several
        roots name (one epoch anchored on several chains) writes the same entries again.
        """
        wanted = root.manifest
        while wanted:
            part = self.get(wanted)
            assert part is not None, "an epoch root is applied before its manifest"
            body = part.expect(Manifest)
            listed = self.lists.get(part.id)
            if listed is None:
                listed = []
                for aid in body.acceptances:
                    acceptance = self.get(aid)
                    assert acceptance is not None, "a manifest part is stored before its list"
                    listed.append(acceptance)
            for acceptance in listed:
                judged = acceptance.expect(Acceptance)
                self.put(keys.committed(judged.contribution_id, root.epoch, acceptance.id), b"")
            wanted = body.next

    def revise(
        self, slot: str, subject: bytes, record: Record, revision: int
    ) -> tuple[bool, tuple[bytes, int] | None]:
        """Puts a profile or project in force in its slot if it supersedes the record in force.

        Returns whether it did, and the (id, revision) in force before, if any.
        """
        key = keys.latest(slot, subject)
        current = self.latest.get(key)
        if current is None:
            value = self.db.get(key)
            if value is not None:
                current = keys.read_latest(value)
        # (revision, id): the order of `protocol.validate.supersedes`.
        if current is not None and (revision, record.id) <= (current[1], current[0]):
            return False, current
        self.wb.put(key, keys.latest_value(record.id, revision))
        self.latest[key] = (record.id, revision)
        return True, current

    def post(self, record: Record, body: Project) -> None:
        """Applies a project revision: V entries, the revision in force, what depends on it."""
        pid = project_id(record.author, body.name)
        previous = self.project(pid)
        self.name(pid, body.reviewers)
        if self.revise("project", pid, record, body.revision)[0]:
            self.projects[pid] = record
            if previous is not None:
                before = previous.expect(Project).reviewers
                if before != body.reviewers:
                    self.recount(pid, record, set(before) ^ set(body.reviewers))
        self.undefer(pid, body.reviewers)
        self.release(Ref("project", pid))

    def name(self, pid: bytes, reviewers: Iterable[bytes]) -> None:
        """Writes the V entries of reviewers that a project revision or a `settings` proposal
        names (the storage rule of acceptances)."""
        for reviewer in reviewers:
            if (pid, reviewer) not in self.named:
                self.named.add((pid, reviewer))
                self.wb.put(keys.reviewer(pid, reviewer), b"")

    def undefer(self, pid: bytes, reviewers: tuple[bytes, ...]) -> None:
        """Stores after all the acceptances of this call whose author `reviewers` names."""
        if self.deferred:
            for rid, held in list(self.deferred.items()):
                judged = held.expect(Acceptance)
                if judged.project_id == pid and held.author in reviewers:
                    del self.deferred[rid]
                    self.again.append(held)

    def accept(self, record: Record, body: Acceptance) -> None:
        rid, author, cid = record.id, record.author, body.contribution_id
        self.put(keys.acceptance(cid, body.revision, rid), author)
        self.acceptances.setdefault(cid, []).append((body.revision, rid, author))
        project = self.project(body.project_id)
        assert project is not None, "an acceptance is applied before its project"
        if author != project.author:
            self.put(keys.reviewed(body.project_id, author, cid), b"")
            self.reviewed.setdefault((body.project_id, author), set()).add(cid)
        if not authorized(author, project):
            # Stored, since a revision names its author, but not counted by the one in force.
            return
        current = self.in_force(cid)
        # (revision, id): the order of `protocol.validate.supersedes`.
        if current is not None and (body.revision, rid) <= (current[1], current[0]):
            return
        self.enforce(cid, current, (rid, body.revision), record)

    def in_force(self, contribution_id: bytes) -> tuple[bytes, int] | None:
        """Returns (id, revision) of the acceptance in force of a contribution, if any."""
        key = keys.latest("acceptance", contribution_id)
        if key in self.latest:
            return self.latest[key]
        if self.unjudged(contribution_id):
            return None
        value = self.db.get(key)
        return None if value is None else keys.read_latest(value)

    def enforce(
        self,
        contribution_id: bytes,
        current: tuple[bytes, int] | None,
        new: tuple[bytes, int] | None,
        record: Record | None = None,
    ) -> None:
        """Replaces the acceptance in force `current` of a contribution by `new` (L and E)."""
        if current == new:
            return
        wb = self.wb
        if current is not None:
            previous = self.get(current[0])
            assert previous is not None, "a revision in force is not stored"
            old = previous.expect(Acceptance)
            if old.weight > 0:
                wb.delete(keys.accepted_prefix(old.project_id, old.epoch) + contribution_id)
        key = keys.latest("acceptance", contribution_id)
        if new is None:
            wb.delete(key)
        else:
            if record is None:
                record = self.get(new[0])
                assert record is not None, "an acceptance to put in force is not stored"
            body = record.expect(Acceptance)
            if body.weight > 0:
                wb.put(keys.accepted_prefix(body.project_id, body.epoch) + contribution_id, new[0])
            wb.put(key, keys.latest_value(*new))
        self.latest[key] = new
        self.judged.add(contribution_id)

    def recount(self, pid: bytes, project: Record, changed: set[bytes]) -> None:
        """Chooses again the acceptance in force of contributions that `changed` accepted.

        `project` is the new revision in force; `changed` the reviewers it adds or removes.
        Only contributions that one of them accepted can see their acceptance in force change.
        """
        contributions: set[bytes] = set()
        for author in changed:
            if author == project.author:
                continue
            prefix = keys.REVIEWED + pid + author
            for key in self.db.iterator(prefix=prefix, include_value=False):
                contributions.add(key[len(prefix) :])
            contributions.update(self.reviewed.get((pid, author), ()))
        for cid in sorted(contributions):
            ranked = [
                (keys.read_acceptance(key), author)
                for key, author in self.db.iterator(prefix=keys.ACCEPTANCES + cid)
            ]
            ranked += [((rev, rid), author) for rev, rid, author in self.acceptances.get(cid, ())]
            best = max(
                (rank for rank, author in ranked if authorized(author, project)), default=None
            )
            self.enforce(cid, self.in_force(cid), None if best is None else (best[1], best[0]))

    def vouched(self, author: bytes, project: Record, pid: bytes) -> bool:
        """Returns True if the owner or a stored revision of the project names `author`.

        `project` is the revision in force, which answers most cases without a read.
        """
        return (
            authorized(author, project)
            or (pid, author) in self.named
            or self.db.get(keys.reviewer(pid, author)) is not None
        )

    def defer(self, record: Record) -> None:
        """Holds an acceptance whose author no stored revision of its project names.

        A revision later in this call may name the author (records of one call may come in any
        order); otherwise `finish` rejects it. It is not parked in the orphan area, although a
        revision may name its author some day, because anyone can sign such an acceptance for
        any stored contribution at no cost: as an orphan it would wait with no end in sight
        and push out of the bounded area the records whose parents are on their way, while a
        rejection costs the peer that sent it (gossip counts it against them). Nothing is
        lost: the honest node that sent it stored it (it had the revision naming its author)
        and keeps it in its topic, so sync offers it again once this node has that revision.
        """
        self.deferred[record.id] = record

    def unjudged(self, contribution_id: bytes) -> bool:
        """Returns True if the contribution is known to have no acceptance in force yet.

        An acceptance is applied only after its contribution, so a contribution that this call
        stored, or that the store stored and put no acceptance in force for since, has no L
        entry in the database: it need not be read.
        """
        return contribution_id in self.stored or self.caches.unjudged(contribution_id) is not None

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
        orphans = self.orphans
        while orphans.entries and (
            len(orphans.entries) > self.max_orphans or orphans.size > self.max_orphan_bytes
        ):
            rid = next(iter(orphans.entries))
            self.parked.pop(rid, None)
            self.drop(rid)
            self.evicted.append(rid)

    # Reads through the overlay.

    def project(self, pid: bytes) -> Record | None:
        posting = self.projects.get(pid)
        if posting is None:
            posting = self.caches.project(pid)
        return posting

    def get(self, rid: bytes) -> Record | None:
        """Returns a record stored by this call or before it, or None."""
        record = self.stored.get(rid) or self.caches.recent(rid)
        if record is None:
            raw = self.db.get(keys.RECORD + rid)
            if raw is None:
                return None
            # Stored bytes were verified on the way in.
            record = decode_record(raw, verify=False)
        return record


def _unnamed(record: Record) -> NotAuthorized:
    body = record.expect(Acceptance)
    return NotAuthorized(
        f"acceptance {record.id.hex()[:16]} is signed by {record.author.hex()[:16]}, who is "
        f"neither the owner nor a reviewer named by any revision of project "
        f"{body.project_id.hex()[:16]} held here"
    )
