"""The record store: one LevelDB directory, opened safely, and the queries the node needs.

The key schema is documented in `storage.keys` (and docs/STORAGE.md); ingest, the only writer of
records and indexes, in `storage.ingest`; what it keeps in memory between calls in
`storage.caches`; node state in `storage.state`; the consistency checker in `storage.check`; the
marker file and the checks of a directory in `storage.directory`.

The schema version is kept in the marker file and under a meta key inside the database; a store
of another version is refused, never rewritten. LevelDB allows one process per directory; a
second open fails with `StoreInUse`.

Durability: a write returns once LevelDB has handed it to the operating system, so it survives
the process being killed. With `sync=True` every write is also flushed to the disk, so it
survives a power cut too, at a cost of one fsync per ingest call. Anchoring intents are always
written with sync.

Ingest takes the store's lock, so calls from several threads run one at a time; queries take no
lock and read what the last finished write left.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import plyvel

from protocol import Record
from protocol import decode as decode_record
from protocol.topics import ALL as TOPICS
from storage import keys
from storage.blocks import MODULUS, Blocks, id_value
from storage.caches import Caches
from storage.check import check as check_store
from storage.directory import prepare
from storage.errors import (
    BadCursor,
    NotAStore,
    StorageError,
    StoreClosed,
    VersionMismatch,
    translate,
)
from storage.ingest import Ingest
from storage.repair import rebuild_listings
from storage.seen import MIN_CAPACITY, Seen
from storage.state import State
from storage.values import IngestResult, LevelStats, Page, level_stats

# LevelDB options of every store (the benchmark's raw baseline uses the same ones). Bloom
# filters make the "is this id stored?" lookup of every ingested record cheap when it is not.
# The write buffer: with 16 MiB, a store growing to a million records (446 MiB) wrote faster
# than LevelDB's one compaction thread merged the buffer's tables into level 1 (record ids
# are random, so each merge rewrites the level), and writes waited for it: 9 us per record on
# top of ingest's 11 of CPU. With 32 MiB the merges are half as many and writes no longer
# wait (scripts/bench/store.py, docs/BENCHMARKS.md); it costs up to 32 MiB more memory while
# a node writes (the buffer, and the one being written out).
LEVELDB_OPTIONS: dict[str, Any] = {
    "bloom_filter_bits": 10,
    "write_buffer_size": 32 * 1024 * 1024,
    "lru_cache_size": 32 * 1024 * 1024,
}

MAX_ORPHANS = 10_000
MAX_ORPHAN_BYTES = 64 * 1024 * 1024
MAX_LIMIT = 1000


class Store:
    """A WorkWork record store; create it with `Store.open`."""

    def __init__(
        self,
        db: Any,
        path: Path,
        *,
        sync: bool,
        max_orphans: int,
        max_orphan_bytes: int,
        seen: Seen,
    ) -> None:
        self._handle: Any = db
        self.path = path
        self.sync = sync
        self.max_orphans = max_orphans
        self.max_orphan_bytes = max_orphan_bytes
        self.state = State(_StateTables(self))
        self._lock = threading.Lock()
        # What ingest keeps in memory (`storage.caches`): it reads the database through `_db`.
        self._caches = Caches(
            path,
            seen,
            db=lambda: self._db,
            load_project=self.project,
            topic_keys=self._keys,
        )
        # Called before every use of the database: a node sets it to refuse use from threads
        # that must not block (its event loop), so that tests catch a call that would.
        self.guard: Callable[[], None] | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        sync: bool = False,
        max_orphans: int = MAX_ORPHANS,
        max_orphan_bytes: int = MAX_ORPHAN_BYTES,
    ) -> Store:
        """Opens the store in directory `path`, creating it if allowed.

        Args:
            path: the store's directory; it may be missing or empty when `create` is true.
            create: make a new store where there is none.
            sync: flush every write to the disk before returning (survives power loss).
            max_orphans, max_orphan_bytes: bounds of the orphan area.

        Raises:
            NotAStore: `path` is a file, or a directory with files that is not a store.
            VersionMismatch: the store has another schema version.
            StoreInUse: another process (or Store) has the store open.
            StorageError: anything else: a missing store, permissions, a full disk, corruption.
        """
        path = Path(path).absolute()
        with translate(path, "opening"):
            prepare(path, create)
            db = plyvel.DB(str(path), create_if_missing=create, **LEVELDB_OPTIONS)
        try:
            with translate(path, "opening"):
                version = db.get(keys.SCHEMA_KEY)
                if version is None:
                    # A new store, or one whose creation stopped before this key was written.
                    with db.iterator(include_value=False) as it:
                        if next(it, None) is not None:
                            raise NotAStore(
                                f"{path} has a marker but its database has no schema version",
                                path,
                            )
                    db.put(keys.SCHEMA_KEY, keys.u32(keys.SCHEMA_VERSION), sync=True)
                elif keys.read_u32(version) != keys.SCHEMA_VERSION:
                    found = keys.read_u32(version)
                    raise VersionMismatch(path, found, keys.SCHEMA_VERSION)
                seen = _take_seen(db)
        except BaseException:
            db.close()
            raise
        return cls(
            db,
            path,
            sync=sync,
            max_orphans=max_orphans,
            max_orphan_bytes=max_orphan_bytes,
            seen=seen,
        )

    def close(self) -> None:
        """Closes the database; further use raises `StoreClosed`. Closing twice is harmless."""
        with self._lock:
            if self._handle is not None:
                # Should this fail (a full disk, say), the next open rebuilds the filter.
                with contextlib.suppress(plyvel.Error):
                    self._handle.put(keys.SEEN_KEY, self._seen.dump(), sync=True)
                self._handle.close()
                self._handle = None

    @property
    def closed(self) -> bool:
        return self._handle is None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.path}{' closed' if self.closed else ''}>"

    @property
    def _db(self) -> Any:
        if self._handle is None:
            raise StoreClosed(f"store {self.path} is closed", self.path)
        if self.guard is not None:
            self.guard()
        return self._handle

    # Ingest.

    def ingest(self, records: Iterable[Record], *, now: float) -> IngestResult:
        """Validates and stores records, with all their index entries, in one atomic write.

        The records must have been decoded with signature verification (or signed here): their
        signatures are not checked again. Everything else is: the clock, the rules that need
        other records, and duplicates. Records may depend on each other in any order; one
        whose parent is missing waits in the orphan area. Rejected records do not stop the
        others. Ingesting what is already stored writes nothing.

        Args:
            records: the records, in any order.
            now: the current time (seconds since 1970), for the clock-skew rule.

        Raises:
            StorageError: the write failed (nothing of this call is stored then).
        """
        return self._run(lambda work: work.run(records), now)

    def ingest_raw(self, blobs: Iterable[bytes], *, now: float) -> IngestResult:
        """Like `ingest`, for envelope bytes: decodes them and checks their signatures first.

        A blob whose id is already stored is a duplicate without being decoded. A blob that
        fails to decode is rejected, named by the sha256 of its bytes.
        """
        return self._run(lambda work: work.run_raw(blobs), now)

    def _run(self, job: Callable[[Ingest], IngestResult], now: float) -> IngestResult:
        # Reads made while ingesting fail as StorageErrors too, like the write does.
        with self._lock, translate(self.path, "ingesting into"):
            try:
                work = Ingest(
                    self._caches,
                    self._db,
                    now,
                    sync=self.sync,
                    max_orphans=self.max_orphans,
                    max_orphan_bytes=self.max_orphan_bytes,
                )
                return job(work)
            except BaseException:
                self._caches.discard_unwritten()
                raise

    @property
    def _seen(self) -> Seen:
        """The id filter, which the caches keep (and tests replace here)."""
        return self._caches.seen

    @_seen.setter
    def _seen(self, seen: Seen) -> None:
        self._caches.seen = seen

    @property
    def _blocks(self) -> dict[str, Blocks]:
        """Topic -> the block summaries of its index, for the topics asked about."""
        return self._caches.blocks

    # Single records.

    def get(self, rid: bytes) -> Record | None:
        """Returns the stored record with id `rid`, or None (orphans are not stored records)."""
        with translate(self.path, "reading"):
            raw = self._db.get(keys.RECORD + rid)
        # Stored bytes were verified on the way in.
        return None if raw is None else decode_record(raw, verify=False)

    def get_many(self, rids: Iterable[bytes]) -> list[Record | None]:
        """Returns `get` of each of `rids`, in order: for reading thousands of records at once.

        The reads share one error translation instead of entering it per record, which is a
        fifth of a point read's cost.
        """
        db = self._db
        prefix = keys.RECORD
        with translate(self.path, "reading"):
            raws = [db.get(prefix + rid) for rid in rids]
        # Stored bytes were verified on the way in.
        return [None if raw is None else decode_record(raw, verify=False) for raw in raws]

    def get_raw(self, rid: bytes) -> bytes | None:
        """Returns the stored bytes of record `rid` (what its author signed), or None.

        For serving records as they are: nothing is decoded.
        """
        with translate(self.path, "reading"):
            raw: bytes | None = self._db.get(keys.RECORD + rid)
        return raw

    def get_raws(self, ids: Iterable[bytes], budget: int, overhead: int = 0) -> list[bytes]:
        """Returns the stored bytes of those of `ids` that are stored, in order, as many as fit
        in `budget` bytes, each counting its length plus `overhead`; ids not stored are skipped.

        For serving a fetch: one pass with no per-id call, which holds the GIL beside the event
        loop for about half the time that `get_raw` per id does.
        """
        out: list[bytes] = []
        used = 0
        prefix = keys.RECORD
        with translate(self.path, "reading"):
            get = self._db.get
            for rid in ids:
                raw = get(prefix + rid)
                if raw is None:
                    continue
                used += len(raw) + overhead
                if used > budget:
                    break
                out.append(raw)
        return out

    def has(self, rid: bytes) -> bool:
        """Returns True if the record with id `rid` is stored."""
        with translate(self.path, "reading"):
            return self._db.get(keys.RECORD + rid) is not None

    def complete(self, prefix: str, limit: int = 2) -> list[tuple[str, bytes]]:
        """Returns up to `limit` ids that begin with the hex digits `prefix`, as (kind, id):
        `record` for a stored record's id, `project` for a project id. For ids written short,
        as git takes a commit's: a prefix that names exactly one id stands for it.

        Raises:
            ValueError: `prefix` is not hex digits (lower case).
        """
        if not all(c in "0123456789abcdef" for c in prefix):
            raise ValueError(f"{prefix!r} is not hex digits")
        whole = bytes.fromhex(prefix[: len(prefix) - len(prefix) % 2])
        found: list[tuple[str, bytes]] = []
        tables = (("record", keys.RECORD), ("project", keys.LATEST + keys.SLOTS["project"]))
        with translate(self.path, "reading"):
            for kind, table in tables:
                for key in self._db.iterator(prefix=table + whole, include_value=False):
                    subject = key[len(table) :]
                    if subject.hex().startswith(prefix):
                        found.append((kind, subject))
                        if len(found) >= limit:
                            return found
                    elif len(whole) * 2 < len(prefix) and subject.hex()[: len(prefix)] > prefix:
                        break  # past the ids an odd-length prefix can name
        return found

    def maybe_stored(self, ids: Sequence[bytes]) -> list[bool]:
        """Returns, for each of `ids`, whether it may be a stored record (False: it is not one).

        Only the in-memory id filter answers: no read, no lock, and so no need to leave the event
        loop. The filter's bits are only ever set, so that is safe from any thread while an
        ingest runs; an id that a concurrent ingest is storing may still be answered False, as
        if the call had come a moment earlier.
        """
        return self._caches.seen.probe(ids)

    def stored(self, ids: Iterable[bytes]) -> set[bytes]:
        """Returns those of `ids` that are stored records.

        The id filter answers for almost every id that is not stored, without a read; a read
        confirms each of the others. For sorting out replays before any decoding.
        """
        ids = list(ids)
        maybe = self._caches.seen.probe(ids)
        with translate(self.path, "reading"):
            db = self._db
            return {
                rid
                for rid, stored in zip(ids, maybe, strict=True)
                if stored and db.get(keys.RECORD + rid) is not None
            }

    def project(self, pid: bytes) -> Record | None:
        """Returns the revision in force of project `pid` (a `project_id`), or None."""
        return self._in_force("project", pid)

    def profile(self, author: bytes) -> Record | None:
        """Returns the revision in force of the profile of `author`, or None."""
        return self._in_force("profile", author)

    def acceptance_of(self, contribution_id: bytes) -> Record | None:
        """Returns the acceptance in force of a contribution (weight 0 included), or None.

        That is the highest (revision, id) among its stored acceptances whose author the project
        revision in force authorizes (`protocol.validate.latest_authorized`): None if there is
        no such acceptance, even if acceptances by reviewers it removed are stored.
        """
        return self._in_force("acceptance", contribution_id)

    def _in_force(self, slot: str, subject: bytes) -> Record | None:
        with translate(self.path, "reading"):
            value = self._db.get(keys.latest(slot, subject))
        return None if value is None else self._load(keys.read_latest(value)[0])

    def _load(self, rid: bytes) -> Record:
        record = self.get(rid)
        if record is None:
            raise StorageError(
                f"store {self.path} is inconsistent: an index names record {rid.hex()}, which "
                "is not stored",
                self.path,
            )
        return record

    # Pages of records.

    def projects(self, *, cursor: bytes | None = None, limit: int = 100) -> Page[Record]:
        """Returns projects in force, in project id order."""
        return self._records(keys.LATEST + keys.SLOTS["project"], cursor, limit, _latest_id)

    def profiles(self, *, cursor: bytes | None = None, limit: int = 100) -> Page[Record]:
        """Returns profiles in force, in author key order."""
        return self._records(keys.LATEST + keys.SLOTS["profile"], cursor, limit, _latest_id)

    def contributions(
        self, project_id: bytes, *, cursor: bytes | None = None, limit: int = 100
    ) -> Page[Record]:
        """Returns the contributions to a project, oldest first (by created_at, then id)."""
        return self._records(keys.CONTRIBUTIONS + project_id, cursor, limit, _key_id)

    def contributions_by(
        self, author: bytes, *, cursor: bytes | None = None, limit: int = 100
    ) -> Page[Record]:
        """Returns the contributions signed by `author`, oldest first."""
        return self._records(keys.BY_AUTHOR + author, cursor, limit, _key_id)

    def acceptances(
        self, project_id: bytes, epoch: int, *, cursor: bytes | None = None, limit: int = 100
    ) -> Page[Record]:
        """Returns the acceptances in force of weight > 0 for (project, epoch), by contribution id.

        While the epoch is open, these give the leaves of its Merkle tree, but for contributions
        an anchored epoch pays already (`committed_of`); once it is anchored, its manifest does
        (`protocol.epoch`), and those not listed are late. An acceptance superseded by a
        revision (that moves it to another epoch, changes its weight or withdraws it with
        weight 0), or whose author a new project revision in force removes from its reviewers,
        leaves this list in the same write.
        """
        return self._records(keys.accepted_prefix(project_id, epoch), cursor, limit, _value_id)

    def acceptance_ids(
        self, project_id: bytes, epoch: int, *, cursor: bytes | None = None, limit: int = 100
    ) -> Page[bytes]:
        """Returns the ids of what `acceptances` returns, in the same order and pages, from the
        index alone: no record is read or decoded."""
        entries, next_cursor = self._scan(keys.accepted_prefix(project_id, epoch), cursor, limit)
        return Page(tuple(value for _, value in entries), next_cursor)

    def acceptances_of(
        self, contribution_id: bytes, *, cursor: bytes | None = None, limit: int = 100
    ) -> Page[Record]:
        """Returns every stored acceptance of a contribution, in force or not, by any author,
        by revision then id (the last one has the highest revision)."""
        return self._records(keys.ACCEPTANCES + contribution_id, cursor, limit, _key_id)

    def proposals(
        self, project_id: bytes, *, cursor: bytes | None = None, limit: int = 100
    ) -> Page[Record]:
        """Returns the proposals of a project, oldest first (by created_at, then id)."""
        return self._records(keys.PROPOSALS + project_id, cursor, limit, _key_id)

    def votes(
        self, proposal_id: bytes, *, cursor: bytes | None = None, limit: int = 100
    ) -> Page[Record]:
        """Returns every stored vote on a proposal, revisions included, by author, revision
        and id (which of them counts is the tally's rule, `protocol.tally.ballots`)."""
        return self._records(keys.VOTES + proposal_id, cursor, limit, _key_id)

    def decisions(
        self, proposal_id: bytes, *, cursor: bytes | None = None, limit: int = 100
    ) -> Page[Record]:
        """Returns the decisions of a proposal, oldest first (normally one; which holds is
        `protocol.validate.first_decision`)."""
        return self._records(keys.DECISIONS + proposal_id, cursor, limit, _key_id)

    def committed_of(self, contribution_id: bytes) -> tuple[tuple[int, bytes], ...]:
        """Returns (epoch, acceptance id) of each acceptance of a contribution that the manifest
        of a stored epoch root lists: the anchored epochs that pay it (normally none or one).
        """
        prefix = keys.COMMITTED + contribution_id
        with translate(self.path, "reading"):
            found = [
                keys.read_committed(key)[1:]
                for key in self._db.iterator(prefix=prefix, include_value=False)
            ]
        return tuple(found)

    def anchored(self, project_id: bytes, epoch: int) -> bool:
        """Returns True if an epoch root of (project, epoch) is stored: the epoch is anchored,
        and its manifest (stored with it) says what it covers."""
        prefix = keys.ROOTS + project_id + keys.u32(epoch)
        with (
            translate(self.path, "reading"),
            self._db.iterator(prefix=prefix, include_value=False) as it,
        ):
            return next(it, None) is not None

    def named(self, project_id: bytes, key: bytes) -> bool:
        """Returns True if some stored revision of the project names `key` as a reviewer."""
        with translate(self.path, "reading"):
            return self._db.get(keys.reviewer(project_id, key)) is not None

    def accepted_epochs(self, project_id: bytes, *, start: int = 0, limit: int = 100) -> list[int]:
        """Returns the epochs of a project, from `start` up, that have accepted contributions.

        A skip scan: one seek per epoch found, however many acceptances each epoch holds.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit {limit} is outside [1, {MAX_LIMIT}]")
        prefix = keys.ACCEPTED + project_id
        high = keys.upper_bound(prefix)
        found: list[int] = []
        epoch = start
        with translate(self.path, "reading"):
            while len(found) < limit and epoch <= 0xFFFFFFFF:
                low = keys.accepted_prefix(project_id, epoch)
                with self._db.iterator(start=low, stop=high, include_value=False) as it:
                    key = next(it, None)
                if key is None:
                    break
                epoch = keys.read_u32(key[len(prefix) : len(prefix) + 4])
                found.append(epoch)
                epoch += 1
        return found

    def epoch_roots(
        self,
        project_id: bytes,
        *,
        epoch: int | None = None,
        cursor: bytes | None = None,
        limit: int = 100,
    ) -> Page[Record]:
        """Returns the epoch roots of a project (of one epoch if given), by epoch then id."""
        prefix = keys.ROOTS + project_id
        if epoch is not None:
            prefix += keys.u32(epoch)
        return self._records(prefix, cursor, limit, _key_id)

    def _records(
        self,
        prefix: bytes,
        cursor: bytes | None,
        limit: int,
        pick: Callable[[bytes, bytes], bytes],
    ) -> Page[Record]:
        entries, next_cursor = self._scan(prefix, cursor, limit)
        return Page(tuple(self._load(pick(k, v)) for k, v in entries), next_cursor)

    def _scan(
        self,
        prefix: bytes,
        cursor: bytes | None,
        limit: int,
        *,
        start: bytes = b"",
        stop: bytes | None = None,
    ) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        """Returns up to `limit` (key, value) pairs under `prefix`, and the next cursor.

        The cursor is the last key returned without the prefix; the next page starts right
        after it (key + 0x00 is the least key greater than key). Only limit + 1 keys are read.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit {limit} is outside [1, {MAX_LIMIT}]")
        low = prefix + start
        if cursor is not None:
            if type(cursor) is not bytes or not cursor:
                raise BadCursor(f"not a cursor of this query: {cursor!r}", self.path)
            low = max(low, prefix + cursor + b"\x00")
        high = keys.upper_bound(prefix) if stop is None else prefix + stop
        entries: list[tuple[bytes, bytes]] = []
        with translate(self.path, "reading"), self._db.iterator(start=low, stop=high) as it:
            for key, value in it:
                if len(entries) == limit:
                    return entries, entries[-1][0][len(prefix) :]
                entries.append((key, value))
        return entries, None

    # Topics, for sync.

    def topic_ids(
        self,
        name: str,
        *,
        start: tuple[int, bytes] | None = None,
        end: tuple[int, bytes] | None = None,
        cursor: bytes | None = None,
        limit: int = MAX_LIMIT,
    ) -> Page[tuple[int, bytes]]:
        """Returns (created_at, id) of the records of a topic in that order, within [start, end).

        Every stored record is in its topic, revisions superseded or not; orphans are not.
        A bound's id may be shorter than 32 bytes: (t, b"") is the first possible id at t.

        Raises:
            ValueError: `name` is not a topic of `protocol.topics`.
        """
        prefix = _topic(name)
        low, high = _range_keys(start, end)
        entries, next_cursor = self._scan(prefix, cursor, limit, start=low, stop=high)
        size = len(prefix)
        items = tuple((keys.read_u64(k, size), k[size + 8 :]) for k, _ in entries)
        return Page(items, next_cursor)

    def topic_count(self, name: str) -> int:
        """Returns how many records the topic `name` holds."""
        _topic(name)
        with translate(self.path, "reading"):
            value = self._db.get(keys.count(name))
        return 0 if value is None else keys.read_u64(value)

    def topic_summary(self, name: str) -> tuple[int, int]:
        """Returns how many records the topic `name` holds and the sum of their ids.

        The sum is of the ids as little-endian integers, modulo 2**256: with the count, what
        the sync fingerprint of the whole topic is made of (`protocol.reconcile`). See
        `topic_range` for how it is kept.
        """
        return self.topic_range(name)

    def topic_range(
        self,
        name: str,
        start: tuple[int, bytes] | None = None,
        end: tuple[int, bytes] | None = None,
    ) -> tuple[int, int]:
        """Returns the count and the id sum (mod 2**256) of the topic's records in [start, end).

        Bounds are as `topic_ids` takes them. The first call for a topic reads its index once
        to cut it into blocks (`storage.blocks`); after that a range costs the scan of at most
        two partial blocks, whatever its size, and ingest keeps the blocks up to date.
        """
        prefix = _topic(name)
        low, high = _range_keys(start, end)
        with self._lock:
            blocks = self._topic_blocks(name, prefix)
            first = blocks.index(low)
            last = len(blocks.edges) - 1 if high is None else blocks.index(high)
            # The range's parts in its first and last blocks, and the whole blocks between.
            if first == last:
                parts = [(first, low, high)]
            else:
                parts = [(first, low, blocks.edges[first + 1]), (last, blocks.edges[last], high)]
            count, total = blocks.whole(first + 1, last)
            for block, lo, hi in parts:
                if lo <= blocks.edges[block] and hi == blocks.end(block):
                    more = blocks.whole(block, block + 1)  # covered whole: nothing to read
                else:
                    more = self._sum_keys(prefix, lo, hi)
                count += more[0]
                total += more[1]
        return count, total % MODULUS

    def topic_items_at(
        self,
        name: str,
        offsets: Sequence[int],
        start: tuple[int, bytes] | None = None,
        end: tuple[int, bytes] | None = None,
    ) -> list[tuple[int, bytes]]:
        """Returns the (created_at, id) items at `offsets` (ascending) of the range [start, end).

        Raises:
            IndexError: an offset is outside the range.
        """
        prefix = _topic(name)
        low, high = _range_keys(start, end)
        out: list[tuple[int, bytes]] = []
        with self._lock:
            blocks = self._topic_blocks(name, prefix)
            block = blocks.index(low)
            region_low, seen = low, 0  # the part of the range read or skipped so far
            wanted = iter(offsets)
            target = next(wanted, None)
            while target is not None:
                region_high = blocks.end(block)
                if high is not None and (region_high is None or region_high >= high):
                    region_high = high
                if region_low == blocks.edges[block] and region_high == blocks.end(block):
                    size = blocks.counts[block]  # a whole block: no need to read it
                else:
                    size = -1
                if size >= 0 and target >= seen + size:
                    seen += size
                else:
                    found = self._keys(prefix, region_low, region_high)
                    while target is not None and target < seen + len(found):
                        key = found[target - seen]
                        out.append((keys.read_u64(key), key[8:]))
                        target = next(wanted, None)
                    seen += len(found)
                if region_high is None or region_high == high:
                    if target is not None:
                        raise IndexError(f"offset {target} is outside the range")
                    break
                block += 1
                region_low = blocks.edges[block]
        return out

    def _topic_blocks(self, name: str, prefix: bytes) -> Blocks:
        blocks = self._blocks.get(name)
        if blocks is None:
            blocks = self._blocks[name] = Blocks.build(self._keys(prefix, b"", None))
        return blocks

    def _keys(self, prefix: bytes, low: bytes, high: bytes | None) -> list[bytes]:
        """Returns the keys under `prefix` in [low, high), without the prefix."""
        stop = keys.upper_bound(prefix) if high is None else prefix + high
        size = len(prefix)
        with translate(self.path, "reading"):
            return [
                key[size:]
                for key in self._db.iterator(start=prefix + low, stop=stop, include_value=False)
            ]

    def _sum_keys(self, prefix: bytes, low: bytes, high: bytes | None) -> tuple[int, int]:
        found = self._keys(prefix, low, high)
        return len(found), sum(map(id_value, found))

    # Orphans and consistency.

    def orphans(self) -> tuple[int, int]:
        """Returns how many records wait in the orphan area, and their size in bytes."""
        with self._lock:
            index = self._caches.orphans()
            return len(index.entries), index.size

    def is_orphan(self, rid: bytes) -> bool:
        """Returns True if the record `rid` waits in the orphan area."""
        with self._lock:
            return rid in self._caches.orphans().entries

    def compactions(self) -> tuple[LevelStats, ...]:
        """LevelDB's levels under the store, with the compaction work each took so far."""
        with translate(self.path, "reading the statistics of"):
            return level_stats(self._db.get_property(b"leveldb.stats").decode())

    def check(self) -> tuple[str, ...]:
        """Checks the whole store; returns the problems found (none if it is consistent).

        Reads every record and index entry once, so it takes time in proportion to the store.
        """
        with self._lock, translate(self.path, "checking"):
            return check_store(self._db, self._seen)

    def rebuild_indexes(self) -> int:
        """Rebuilds the index tables that each record alone determines (`storage.repair`) from
        the records; returns the number of entries written or removed. For a store no node
        runs on (`workwork store check --repair`); no cache of the store holds these tables."""
        with self._lock, translate(self.path, "rebuilding the indexes of"):
            return rebuild_listings(self._db, sync=True)

    def rebuild_filter(self) -> None:
        """Rebuilds the filter of stored ids from the records themselves: the repair of a filter
        that misses stored ids (`check` says which), which only ever costs a lookup more."""
        with self._lock, translate(self.path, "rebuilding the filter of"):
            self._seen = _build_seen(self._db)


class _StateTables:
    """How `State` reaches its store's database (`storage.state.Tables`).

    Writes take the store's lock, as ingest does, and are flushed to the disk when the caller
    asks for it or the store flushes every write. Errors are translated as the store's are.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def put(self, key: bytes, value: bytes, *, sync: bool = False) -> None:
        store = self._store
        with store._lock, translate(store.path, "writing to"):
            store._db.put(key, value, sync=sync or store.sync)

    def delete(self, key: bytes, *, sync: bool = False) -> None:
        store = self._store
        with store._lock, translate(store.path, "writing to"):
            store._db.delete(key, sync=sync or store.sync)

    def get(self, key: bytes) -> bytes | None:
        store = self._store
        with translate(store.path, "reading"):
            value: bytes | None = store._db.get(key)
        return value

    def scan(
        self, prefix: bytes, cursor: bytes | None, limit: int
    ) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        return self._store._scan(prefix, cursor, limit)


def _take_seen(db: Any) -> Seen:
    """Returns the id filter a clean close saved, deleting it first; or one rebuilt from R.

    The saved filter is deleted (with sync) before the store writes anything, so that a filter
    that misses later writes is never loaded: see `storage.seen`.
    """
    saved = db.get(keys.SEEN_KEY)
    if saved is not None:
        db.delete(keys.SEEN_KEY, sync=True)
        seen = Seen.load(saved)
        if seen is not None:
            return seen
    return _build_seen(db)


def _build_seen(db: Any) -> Seen:
    """Returns the id filter of the records stored in `db`, read from the R table."""
    total = sum(keys.read_u64(v) for _, v in db.iterator(prefix=keys.COUNT_PREFIX))
    seen = Seen(max(2 * total, MIN_CAPACITY))
    for key in db.iterator(prefix=keys.RECORD, include_value=False):
        seen.add(key[1:])
    return seen


def _topic(name: str) -> bytes:
    if name not in TOPICS:
        raise ValueError(f"unknown topic {name!r}")
    return keys.topic_prefix(name)


def _range_keys(
    start: tuple[int, bytes] | None, end: tuple[int, bytes] | None
) -> tuple[bytes, bytes | None]:
    """Returns a topic range's bounds as index keys without the topic prefix (None: no end).

    (0, b"") is below every key, as no start is: both give b"", the first block's edge.
    """
    low = b"" if start is None or start == (0, b"") else keys.u64(start[0]) + start[1]
    return low, None if end is None else keys.u64(end[0]) + end[1]


def _key_id(key: bytes, value: bytes) -> bytes:
    return key[-keys.ID_SIZE :]


def _value_id(key: bytes, value: bytes) -> bytes:
    return value


def _latest_id(key: bytes, value: bytes) -> bytes:
    return keys.read_latest(value)[0]
