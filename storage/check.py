"""The consistency checker: what must hold between records, indexes and the orphan area.

It recomputes, from each record alone, every index entry that record must have, and checks each
index entry against the record it names, so it shares no code with ingest beyond the key
builders: a bug in ingest shows up here as a difference. It streams every table once; it holds
in memory the orphan tables (bounded), the reviewers each project's revisions name and the
project revisions in force (a few keys per project).

Acceptances are checked against both rules of `protocol.validate`: each stored one is signed by
its project's owner or by a key some stored revision names (the storage rule), and the one in
force of each contribution is the highest (revision, id) among those the revision in force
authorizes, or none (the counting rule), recomputed here from the A table.

Anchored epochs: every stored epoch root must have its whole manifest stored, each part's
listed acceptances stored and their K entries written; every K entry must name a stored
acceptance of that contribution and epoch, of an epoch with a stored root.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from protocol import (
    Acceptance,
    Contribution,
    Decision,
    EpochRoot,
    Manifest,
    Project,
    Proposal,
    ProtocolError,
    Record,
    Vote,
)
from protocol import decode as decode_record
from protocol.records import project_id
from protocol.topics import topic
from protocol.validate import Ref, authorized, slot
from storage import keys
from storage.seen import Seen

# Enough to see what is wrong; a badly broken store would otherwise list every key.
MAX_PROBLEMS = 100

_TABLES = {
    keys.META,
    keys.RECORD,
    keys.TOPIC,
    keys.LATEST,
    keys.CONTRIBUTIONS,
    keys.BY_AUTHOR,
    keys.ACCEPTED,
    keys.ACCEPTANCES,
    keys.REVIEWERS,
    keys.REVIEWED,
    keys.ROOTS,
    keys.COMMITTED,
    keys.PROPOSALS,
    keys.VOTES,
    keys.DECISIONS,
    keys.ORPHAN,
    keys.ARRIVAL,
    keys.WAITING,
    keys.STATE,
}


class _Checker:
    def __init__(self, db: Any, seen: Seen | None) -> None:
        self.db = db
        self.seen = seen
        self.problems: list[str] = []
        # (project id, key) of the reviewers named by stored project revisions.
        self.named: set[tuple[bytes, bytes]] = set()
        self.projects: dict[bytes, Record | None] = {}

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def fetch(self, rid: bytes, where: bytes) -> Record | None:
        raw = self.db.get(keys.RECORD + rid)
        if raw is None:
            self.problem(f"index entry {where.hex()} names record {rid.hex()}, which is not stored")
            return None
        try:
            return decode_record(raw, verify=False)
        except ProtocolError as exc:
            self.problem(f"record {rid.hex()} does not decode: {exc}")
            return None

    def prefixed(self, prefix: bytes) -> Any:
        return self.db.iterator(prefix=prefix)

    def run(self) -> tuple[str, ...]:
        self.tables()
        self.meta()
        topics = self.records()
        self.topics(topics)
        self.latest()
        self.accepted()
        self.reviewers()
        self.acceptances()
        self.reviewed()
        self.listed(keys.CONTRIBUTIONS, Contribution, "project_id")
        self.listed(keys.BY_AUTHOR, Contribution, "author")
        self.roots()
        self.committed()
        self.decisions()
        self.orphans()
        return tuple(self.problems)

    def tables(self) -> None:
        for key in self.db.iterator(include_value=False):
            if key[:1] not in _TABLES:
                self.problem(f"key {key.hex()} is in no table of the schema")

    def meta(self) -> None:
        version = self.db.get(keys.SCHEMA_KEY)
        if version is None or keys.read_u32(version) != keys.SCHEMA_VERSION:
            self.problem(f"schema version is {version!r}, expected {keys.SCHEMA_VERSION}")

    def records(self) -> Counter[str]:
        """Checks that every record decodes and has each index entry it needs."""
        counts: Counter[str] = Counter()
        for key, raw in self.prefixed(keys.RECORD):
            rid = key[1:]
            if hashlib.sha256(raw).digest() != rid:
                self.problem(f"record {rid.hex()} is stored under the wrong id")
                continue
            try:
                record = decode_record(raw, verify=False)
            except ProtocolError as exc:
                self.problem(f"record {rid.hex()} does not decode: {exc}")
                continue
            body = record.body
            name = topic(record)
            counts[name] += 1
            needed = [keys.topic_prefix(name) + keys.u64(body.created_at) + rid]
            if isinstance(body, Contribution):
                needed.append(keys.contribution(body.project_id, body.created_at, rid))
                needed.append(keys.by_author(record.author, body.created_at, rid))
            elif isinstance(body, EpochRoot):
                needed.append(keys.root(body.project_id, body.epoch, rid))
            elif isinstance(body, Project):
                pid = project_id(record.author, body.name)
                for reviewer in body.reviewers:
                    self.named.add((pid, reviewer))
                    needed.append(keys.reviewer(pid, reviewer))
            elif isinstance(body, Proposal):
                needed.append(keys.proposal(body.project_id, body.created_at, rid))
                if body.action == "settings":
                    for reviewer in body.param("reviewers"):
                        self.named.add((body.project_id, reviewer))
                        needed.append(keys.reviewer(body.project_id, reviewer))
            elif isinstance(body, Vote):
                needed.append(keys.vote(body.proposal_id, record.author, body.revision, rid))
            elif isinstance(body, Decision):
                needed.append(keys.decision(body.proposal_id, body.created_at, rid))
            elif isinstance(body, Acceptance):
                entry = keys.acceptance(body.contribution_id, body.revision, rid)
                needed.append(entry)
                listed = self.db.get(entry)
                if listed is not None and listed != record.author:
                    self.problem(f"acceptance entry {entry.hex()} names another author")
            for entry in needed:
                if self.db.get(entry) is None:
                    self.problem(f"{record.kind} {rid.hex()} lacks index entry {entry.hex()}")
            subject = slot(record)
            # Acceptances in force follow another rule, checked by `acceptances`; votes have
            # no entry in force (a tally chooses among them).
            if subject is not None and not isinstance(body, Acceptance | Vote):
                value = self.db.get(keys.latest(*subject))
                rank = (getattr(body, "revision", 0), rid)
                if value is None:
                    self.problem(f"{record.kind} {rid.hex()} has no revision in force")
                elif rank > (keys.read_latest(value)[1], keys.read_latest(value)[0]):
                    self.problem(f"{record.kind} {rid.hex()} supersedes the revision in force")
            if self.db.get(keys.orphan(rid)) is not None:
                self.problem(f"record {rid.hex()} is both stored and an orphan")
            if self.seen is not None and rid not in self.seen:
                self.problem(f"record {rid.hex()} is missing from the filter of stored ids")
        return counts

    def topics(self, records: Counter[str]) -> None:
        entries: Counter[str] = Counter()
        for key in self.db.iterator(prefix=keys.TOPIC, include_value=False):
            name_bytes, _, rest = key[1:].partition(b"\x00")
            name = name_bytes.decode("ascii", errors="replace")
            entries[name] += 1
            if len(rest) != 8 + keys.ID_SIZE:
                self.problem(f"topic entry {key.hex()} has the wrong size")
                continue
            record = self.fetch(rest[8:], key)
            if record is not None and (
                topic(record) != name or record.body.created_at != keys.read_u64(rest)
            ):
                self.problem(f"topic entry {key.hex()} does not match its record")
        counted: Counter[str] = Counter()
        for key, value in self.prefixed(keys.COUNT_PREFIX):
            counted[key[len(keys.COUNT_PREFIX) :].decode("ascii", errors="replace")] = (
                keys.read_u64(value)
            )
        for name in set(records) | set(entries) | set(counted):
            if not records[name] == entries[name] == counted[name]:
                self.problem(
                    f"topic {name}: {records[name]} records, {entries[name]} entries, "
                    f"count says {counted[name]}"
                )

    def latest(self) -> None:
        for key, value in self.prefixed(keys.LATEST):
            code, subject = key[1:2], key[2:]
            rid, revision = keys.read_latest(value)
            record = self.fetch(rid, key)
            if record is None:
                continue
            if slot(record) != (keys.SLOT_NAMES.get(code), subject) or revision != getattr(
                record.body, "revision", None
            ):
                self.problem(f"revision entry {key.hex()} does not match its record")
                continue
            body = record.body
            if isinstance(body, Acceptance):
                entry = keys.accepted_prefix(body.project_id, body.epoch) + subject
                listed = self.db.get(entry)
                if body.weight > 0 and listed != rid:
                    self.problem(f"acceptance in force {rid.hex()} is not in its epoch's index")
                if body.weight == 0 and listed is not None:
                    self.problem(f"withdrawn acceptance {rid.hex()} is in its epoch's index")

    def accepted(self) -> None:
        for key, rid in self.prefixed(keys.ACCEPTED):
            record = self.fetch(rid, key)
            if record is None:
                continue
            body = record.body
            if (
                not isinstance(body, Acceptance)
                or key != keys.accepted_prefix(body.project_id, body.epoch) + body.contribution_id
                or body.weight == 0
            ):
                self.problem(f"acceptance entry {key.hex()} does not match its record")
                continue
            value = self.db.get(keys.latest("acceptance", body.contribution_id))
            if value is None or keys.read_latest(value)[0] != rid:
                self.problem(f"acceptance entry {key.hex()} names a record not in force")

    def project(self, pid: bytes) -> Record | None:
        """Returns the project revision in force of `pid`, as the L table says."""
        if pid not in self.projects:
            value = self.db.get(keys.latest("project", pid))
            where = keys.latest("project", pid)
            found = None if value is None else self.fetch(keys.read_latest(value)[0], where)
            self.projects[pid] = found if found is not None and found.kind == "project" else None
        return self.projects[pid]

    def reviewers(self) -> None:
        for key in self.db.iterator(prefix=keys.REVIEWERS, include_value=False):
            named = (key[1 : 1 + keys.ID_SIZE], key[1 + keys.ID_SIZE :])
            if named not in self.named:
                self.problem(
                    f"reviewer entry {key.hex()} is named by no stored project revision or "
                    "settings proposal"
                )

    def acceptances(self) -> None:
        """Checks the A table, and the acceptance in force of each contribution it lists."""
        group: bytes | None = None
        best: tuple[int, bytes] | None = None
        for key, author in self.prefixed(keys.ACCEPTANCES):
            cid = key[1 : 1 + keys.ID_SIZE]
            if cid != group:
                if group is not None:
                    self.in_force(group, best)
                group, best = cid, None
            revision, rid = keys.read_acceptance(key)
            record = self.fetch(rid, key)
            if record is None:
                continue
            body = record.body
            if (
                not isinstance(body, Acceptance)
                or key != keys.acceptance(body.contribution_id, body.revision, rid)
                or author != record.author
            ):
                self.problem(f"acceptance entry {key.hex()} does not match its record")
                continue
            project = self.project(body.project_id)
            if project is None:
                self.problem(f"acceptance {rid.hex()} is of a project that is not stored")
                continue
            if author != project.author:
                if (body.project_id, author) not in self.named:
                    self.problem(
                        f"acceptance {rid.hex()} is signed by a key that no stored revision of "
                        "its project names"
                    )
                if self.db.get(keys.reviewed(body.project_id, author, cid)) is None:
                    self.problem(f"acceptance {rid.hex()} lacks its reviewer's entry")
            if authorized(author, project):
                # Keys come in (revision, id) order: the last one authorized wins.
                best = (revision, rid)
        if group is not None:
            self.in_force(group, best)

    def in_force(self, contribution_id: bytes, best: tuple[int, bytes] | None) -> None:
        value = self.db.get(keys.latest("acceptance", contribution_id))
        found = None if value is None else keys.read_latest(value)
        expected = None if best is None else (best[1], best[0])
        if found != expected:
            self.problem(
                f"contribution {contribution_id.hex()} has acceptance "
                f"{'none' if found is None else found[0].hex()} in force, expected "
                f"{'none' if expected is None else expected[0].hex()}"
            )

    def reviewed(self) -> None:
        size = keys.ID_SIZE
        for key in self.db.iterator(prefix=keys.REVIEWED, include_value=False):
            pid, author, cid = key[1 : 1 + size], key[1 + size : 1 + 2 * size], key[1 + 2 * size :]
            project = self.project(pid)
            matched = project is not None and project.author != author
            if matched:
                matched = False
                for entry, signer in self.prefixed(keys.ACCEPTANCES + cid):
                    record = self.fetch(keys.read_acceptance(entry)[1], entry)
                    if (
                        signer == author
                        and record is not None
                        and isinstance(record.body, Acceptance)
                        and record.body.project_id == pid
                    ):
                        matched = True
                        break
            if not matched:
                self.problem(f"reviewer entry {key.hex()} names no acceptance by that reviewer")

    def listed(self, table: bytes, cls: type[Contribution], field: str) -> None:
        for key in self.db.iterator(prefix=table, include_value=False):
            record = self.fetch(key[-keys.ID_SIZE :], key)
            if record is None:
                continue
            body = record.body
            owner = record.author if field == "author" else getattr(body, field, None)
            if (
                not isinstance(body, cls)
                or key[1:33] != owner
                or keys.read_u64(key, 33) != body.created_at
            ):
                self.problem(f"index entry {key.hex()} does not match its record")

    def roots(self) -> None:
        for key in self.db.iterator(prefix=keys.ROOTS, include_value=False):
            record = self.fetch(key[-keys.ID_SIZE :], key)
            if record is None:
                continue
            body = record.body
            if not isinstance(body, EpochRoot) or key != keys.root(
                body.project_id, body.epoch, record.id
            ):
                self.problem(f"epoch root entry {key.hex()} does not match its record")
                continue
            self.manifest(record, body)

    def manifest(self, root: Record, body: EpochRoot) -> None:
        """Checks that an epoch root's manifest is stored whole, with the K entries it makes."""
        wanted, index = body.manifest, 0
        while wanted:
            part = self.fetch(wanted, keys.root(body.project_id, body.epoch, root.id))
            if part is None:
                return
            listed = part.body
            if not isinstance(listed, Manifest) or (
                listed.project_id,
                listed.epoch,
                listed.part,
                listed.parts,
            ) != (body.project_id, body.epoch, index, body.parts):
                self.problem(f"epoch root {root.id.hex()} names a manifest that does not fit it")
                return
            for aid in listed.acceptances:
                acceptance = self.fetch(aid, keys.RECORD + part.id)
                if acceptance is None or not isinstance(acceptance.body, Acceptance):
                    continue
                entry = keys.committed(acceptance.body.contribution_id, body.epoch, aid)
                if self.db.get(entry) is None:
                    self.problem(f"epoch root {root.id.hex()} lacks K entry {entry.hex()}")
            wanted, index = listed.next, index + 1

    def committed(self) -> None:
        for key in self.db.iterator(prefix=keys.COMMITTED, include_value=False):
            cid, epoch, aid = keys.read_committed(key)
            record = self.fetch(aid, key)
            if record is None:
                continue
            body = record.body
            if (
                not isinstance(body, Acceptance)
                or body.contribution_id != cid
                or body.epoch != epoch
                or len(key) != 1 + 2 * keys.ID_SIZE + 4
            ):
                self.problem(f"K entry {key.hex()} does not match its acceptance")
                continue
            roots = keys.ROOTS + body.project_id + keys.u32(epoch)
            with self.db.iterator(prefix=roots, include_value=False) as it:
                if next(it, None) is None:
                    self.problem(f"K entry {key.hex()} is of an epoch with no stored root")

    def decisions(self) -> None:
        """Checks that P and U entries name the proposals and votes they are built from."""
        for key in self.db.iterator(prefix=keys.PROPOSALS, include_value=False):
            record = self.fetch(key[-keys.ID_SIZE :], key)
            if record is None:
                continue
            body = record.body
            if not isinstance(body, Proposal) or key != keys.proposal(
                body.project_id, body.created_at, record.id
            ):
                self.problem(f"proposal entry {key.hex()} does not match its record")
        for key in self.db.iterator(prefix=keys.VOTES, include_value=False):
            record = self.fetch(key[-keys.ID_SIZE :], key)
            if record is None:
                continue
            body = record.body
            if not isinstance(body, Vote) or key != keys.vote(
                body.proposal_id, record.author, body.revision, record.id
            ):
                self.problem(f"vote entry {key.hex()} does not match its record")
        for key in self.db.iterator(prefix=keys.DECISIONS, include_value=False):
            record = self.fetch(key[-keys.ID_SIZE :], key)
            if record is None:
                continue
            body = record.body
            if not isinstance(body, Decision) or key != keys.decision(
                body.proposal_id, body.created_at, record.id
            ):
                self.problem(f"decision entry {key.hex()} does not match its record")

    def orphans(self) -> None:
        arrived: dict[bytes, int] = {}
        for key, value in self.prefixed(keys.ARRIVAL):
            arrived[key[9:]] = keys.read_u32(value)
        waits: set[bytes] = set()
        for key in self.db.iterator(prefix=keys.WAITING, include_value=False):
            ref, rid = keys.ref_of(key)
            waits.add(rid)
            if rid not in arrived:
                self.problem(f"waiting entry {key.hex()} names an orphan that is not there")
            if self.provided(ref):
                self.problem(f"orphan {rid.hex()} waits for a {ref.kind} that is stored")
        seen = set()
        for key, raw in self.prefixed(keys.ORPHAN):
            rid = key[1:]
            seen.add(rid)
            if arrived.get(rid) != len(raw) or hashlib.sha256(raw).digest() != rid:
                self.problem(f"orphan {rid.hex()} does not match its arrival entry")
            if rid not in waits:
                self.problem(f"orphan {rid.hex()} waits for nothing")
        for rid in arrived.keys() - seen:
            self.problem(f"arrival entry names orphan {rid.hex()}, which is not there")

    def provided(self, ref: Ref) -> bool:
        if ref.kind == "project":
            return self.db.get(keys.latest("project", ref.key)) is not None
        return self.db.get(keys.RECORD + ref.key) is not None


def check(db: Any, seen: Seen | None = None) -> tuple[str, ...]:
    """Returns the problems of the store in plyvel database `db` (none if it is consistent).

    With `seen`, the store's filter of stored ids, also checks that it holds every stored id.
    """
    return _Checker(db, seen).run()
