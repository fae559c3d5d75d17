"""Intake: what every record from a peer goes through between its decoding and the store.

Gossip (node/net/gossip.py) and sync (node/net/sync.py) both hand records here, with the peer
that sent them and the topic they came on. In order, cheapest first:

1. Replays (`fresh`): the ids of a batch are looked up in the store's id filter before anything
   is decoded, so records the node holds cost a sha256 each and no signature check. A gossip
   batch of nothing but stored records counts against the peer's replay allowance
   (node/net/core/quotas.py).
2. The topic (`take`): a record must arrive on its own topic (`protocol.topics.topic`). A node
   that follows no shard must not be made to store a shard's records by receiving them on
   `meta`; whoever passes on a record on the wrong topic could have known: an offence.
3. The clock (`take`, node/net/core/held.py): a record dated up to HOLD_SKEW beyond the
   validity window is held and offered to the store once the node's clock makes it valid (the
   held records' ticker); further out, it is an offence of the peer.
4. Authors (`ration` before signatures are checked, then `take`, node/net/core/authors.py):
   records of authors whose rations are spent are dropped unverified; each record is charged to its author's ration,
   which grows with the author's accepted work; keys with none share the newcomers' pool. What
   goes past is not stored, and is nobody's offence (`Taken.rationed`).
5. Orphans (`take`): records whose parents the node has not seen are charged to the peer, within
   its quota and the room left in the orphan area; what goes past the peer's quota is not
   stored, and is an offence if the peer's orphans have waited ORPHAN_GRACE already.

`take` returns what happened (`Taken`): the store's result, how many records were held or left
out, and the offence, if any, for the caller to penalize (gossip also refuses to forward).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from node.gateway import Gateway
from node.net.core.authors import Authors, Lately, Limits, Rationed
from node.net.core.held import Held, Timing, judge
from node.net.core.quotas import Quotas
from node.net.core.ticker import Ticker
from protocol import Acceptance, Record
from protocol.envelope import claimed_author
from protocol.topics import topic as topic_of
from protocol.validate import dependencies
from storage import IngestResult, Store

if TYPE_CHECKING:
    # trio-typing's stubs (a py-libp2p dependency) shadow trio's own annotations for mypy.
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)

# How long after a record was stored a gossip copy of it is not held against the sender.
REPLAY_GRACE = 30.0


@dataclass
class Taken:
    """What became of records a peer sent (`Intake.take`)."""

    result: IngestResult = field(default_factory=IngestResult)
    held: int = 0
    # Records not stored: all of them if there is an offence other than orphans; otherwise
    # orphans past the peer's quota, or with no room left in the orphan area.
    refused: int = 0
    # Records not stored because their authors went past their rations (nobody's offence).
    rationed: int = 0
    offence: str | None = None


class Intake:
    """Checks records from peers and stores them; see the module's comment.

    Args:
        gateway: the store's gateway.
        clock: wall time, seconds since 1970 (the records' own scale).
        limits: the authors' rations (node/net/core/authors.py); None rations nobody.
    """

    def __init__(
        self,
        gateway: Gateway,
        *,
        clock: Callable[[], float] = time.time,
        limits: Limits | None = None,
    ) -> None:
        self._gateway = gateway
        self._clock = clock
        store = gateway.store
        self.quotas = Quotas(store.max_orphans, store.max_orphan_bytes)
        self.authors = None if limits is None else Authors(limits)
        # Left out for their authors' rations lately: sync does not fetch them again yet.
        self.rationed = Rationed()
        # Stored lately, by gossip or sync: a gossip copy of one of them that comes now is no
        # replay (see `replay`).
        self.stored_lately = Lately(REPLAY_GRACE)
        self.held = Held()
        self._ticker = Ticker(self.held.due, self.held.next_wakeup, self._release, clock)
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._ticker.run)
            task_status.started()

    async def fresh(self, blobs: Sequence[bytes]) -> list[bytes]:
        """Returns the blobs whose records the node does not hold (stored, or held), in order.

        Orphans are not looked up: that would wait for the store's lock, which an ingest holds
        throughout, and so keep verification from overlapping the store's writes.
        """
        ids = [hashlib.sha256(blob).digest() for blob in blobs]
        store = self._gateway.store
        # The id filter rules out almost every new id on the loop; only the ids it cannot rule
        # out cost a trip to a reader thread (a record of gossip: one thread hop less).
        maybe = [rid for rid, stored in zip(ids, store.maybe_stored(ids), strict=True) if stored]
        known = await self._gateway.read(store.stored, maybe) if maybe else set()
        held = self.held
        return [
            blob
            for blob, rid in zip(blobs, ids, strict=True)
            if rid not in known and rid not in held
        ]

    def replay(self, peer: str, ids: Sequence[bytes]) -> bool:
        """`peer` sent a gossip batch of records that are all stored here: returns True if that
        is an offence (past its replay allowance, node/net/core/quotas.py).

        Not if one of them was stored in the last REPLAY_GRACE seconds: under load, a gossip
        message waits in py-libp2p's validation queue for seconds, and the node's sync with the
        very peer that published it may store its records meanwhile. The peer could not have
        known; counting those got an honest publisher banned during a flood.
        """
        now = self._clock()
        if any(self.stored_lately.recent(rid, now) for rid in ids):
            return False
        return self.quotas.replay(peer, now)

    def ration(self, blobs: Sequence[bytes]) -> list[bytes]:
        """Returns the blobs whose claimed authors have room in their rations now, in order;
        the others are dropped before their signatures are checked (nobody's offence).

        Charges nothing: `take` does, once the records are verified.
        """
        authors = self.authors
        if authors is None:
            return list(blobs)
        claims = [claimed_author(blob) for blob in blobs]
        verdicts = authors.room(
            [(a, len(b)) for a, b in zip(claims, blobs, strict=True) if a is not None],
            self._clock(),
        )
        kept: list[bytes] = []
        dropped: list[bytes] = []
        judged = iter(verdicts)
        for blob, author in zip(blobs, claims, strict=True):
            if author is None or next(judged):
                kept.append(blob)
            else:
                dropped.append(hashlib.sha256(blob).digest())
        self.rationed.add(dropped, self._clock())
        return kept

    async def take(self, peer: str, topic: str, records: Sequence[Record]) -> Taken:
        """Checks `records` (decoded and verified) that `peer` sent on `topic`, and stores them.

        Records on another topic, or too far in the future, spoil the whole call: nothing is
        stored and `offence` says why. Early records are held.

        Raises:
            StorageError: the store failed (nobody's offence).
        """
        now = self._clock()
        for record in records:
            if topic_of(record) != topic:
                return Taken(
                    refused=len(records),
                    offence=f"{record.kind} {record.id.hex()[:16]} belongs on "
                    f"{topic_of(record)}, not {topic}",
                )
        ready: list[Record] = []
        early: list[Record] = []
        for record in records:
            timing = judge(record, now)
            if timing is Timing.TOO_FAR:
                ahead = record.body.created_at - now
                return Taken(
                    refused=len(records),
                    offence=f"{record.kind} {record.id.hex()[:16]} is dated {ahead:.0f} s ahead",
                )
            (ready if timing is Timing.VALID else early).append(record)
        held = sum(self.held.hold(peer, record) for record in early)
        if early:
            self._ticker.poke()
        taken = await self.store(peer, ready, now)
        taken.held = held
        return taken

    async def store(self, peer: str, records: Sequence[Record], now: float) -> Taken:
        """Stores valid records of `peer`, its orphans within quota (see the module comment)."""
        if not records:
            return Taken()
        with trio.CancelScope(shield=True):
            # Shielded: py-libp2p cancels a validator that runs past its timeout, and records
            # that were written must still be counted and announced.
            result, refused, over, rationed = await self._gateway.write(
                _ingest_within, self._gateway.store, self.quotas, self.authors, peer, records, now
            )
        self.rationed.add(rationed, now)
        self.stored_lately.add([*result.added, *result.released], now)
        self.quotas.settled(
            (*result.released, *(rid for rid, _ in result.discarded), *result.evicted)
        )
        sizes = {r.id: len(r.raw) for r in records}
        self.quotas.parked(
            peer, ((rid, sizes[rid]) for rid in result.orphaned if rid in sizes), now
        )
        offence = None
        if over:
            count, size = self.quotas.orphans_of(peer)
            offence = (
                f"{refused} orphans past its quota ({count} orphans, {size} bytes waiting, "
                "the oldest for over two minutes)"
            )
        return Taken(result, refused=refused, rationed=len(rationed), offence=offence)

    def _release(self, due: Sequence[tuple[str, Record]]) -> None:
        """Stores held records whose time has come (the held records' ticker)."""
        if not due or self._nursery is None:
            return
        by_peer: dict[str, list[Record]] = {}
        for peer, record in due:
            by_peer.setdefault(peer, []).append(record)
        for peer, records in by_peer.items():
            self._nursery.start_soon(self._store_held, peer, records)

    async def _store_held(self, peer: str, records: list[Record]) -> None:
        try:
            taken = await self.store(peer, records, self._clock())
        except Exception as exc:  # StorageError: sync brings them again once the store takes writes
            log.debug("held records of %s could not be stored: %s", peer, exc)
            return
        log.debug("stored %d held records of %s", len(taken.result.added), peer)


def _ingest_within(
    store: Store,
    quotas: Quotas,
    authors: Authors | None,
    peer: str,
    records: Sequence[Record],
    now: float,
) -> tuple[IngestResult, int, bool, list[bytes]]:
    """Ingests `records`, leaving out those past their authors' rations and the would-be
    orphans that `peer` has no room for (in the writer thread, so that what is stored cannot
    change between the look and the write).

    Returns:
        The store's result, how many orphans were left out, whether the peer went past its
        own quota, and the ids of the records left out for their authors' rations.
    """
    rationed: list[bytes] = []
    # Records charged to their authors' rations here, with the standing they were charged at:
    # what is then not stored is given back (`_refund`).
    charged: dict[bytes, tuple[Record, int]] = {}
    if authors is not None:
        admitted: list[Record] = []
        for record in records:
            standing = _admit(store, authors, record, now)
            if standing is None:
                rationed.append(record.id)
                continue
            admitted.append(record)
            if standing >= 0:
                charged[record.id] = (record, standing)
        records = admitted
        if not records:
            return IngestResult(), 0, False, rationed
    brought = {r.id for r in records}
    projects: dict[bytes, bool] = {}
    orphans: list[Record] = []
    for record in records:
        if store.is_orphan(record.id):
            continue  # waiting already: charged when it came
        for ref in dependencies(record):
            if ref.kind == "project":
                # Records of one call share a topic, so a project never comes with its work.
                if ref.key not in projects:
                    projects[ref.key] = store.project(ref.key) is not None
                found = projects[ref.key]
            else:
                found = ref.key in brought or store.has(ref.key)
            if not found:
                orphans.append(record)
                break
    left_out: set[bytes] = set()
    over = False
    if orphans:
        room, over = quotas.orphan_room(peer, [len(r.raw) for r in orphans], store.orphans(), now)
        left_out = {r.id for r in orphans[room:]}
        records = [r for r in records if r.id not in left_out]
    try:
        result = store.ingest(records, now=now)
    except BaseException:
        _refund(authors, charged.values(), now)
        raise
    _refund(authors, (charged[rid] for rid in left_out if rid in charged), now)
    _vouch(store, authors, records, result)
    return result, len(left_out), over, rationed


def _refund(authors: Authors | None, charged: Iterable[tuple[Record, int]], now: float) -> None:
    """Gives back the rations charged for records the node did not keep."""
    if authors is None:
        return
    for record, standing in charged:
        authors.refund(record.author, len(record.raw), standing, now)


def _vouch(
    store: Store, authors: Authors | None, records: Sequence[Record], result: IngestResult
) -> None:
    """Has the standing of the contributors whose work was just accepted looked up again."""
    if authors is None:
        return
    stored = {*result.added, *result.released}
    for record in records:
        if record.id in stored and isinstance(record.body, Acceptance):
            contribution = store.get(record.body.contribution_id)
            if contribution is not None:
                authors.vouched(contribution.author)


# Contributions of an author looked at to find its standing: enough to reach the trust cap
# when most of them were accepted, and a bounded read for a key with thousands of others.
STANDING_SCAN = 256


def _admit(store: Store, authors: Authors, record: Record, now: float) -> int | None:
    """Charges `record` to its author's ration if it fits. Returns None if it does not, else
    the author's standing it was charged at, or -1 for a record stored already (free: the store
    takes it as a duplicate, and nothing was charged)."""
    if store.has(record.id):
        return -1
    author = record.author
    standing = authors.standing(author, now)
    if standing is None:
        standing = standing_of(store, author, authors.limits.trust_cap)
        authors.learn(author, standing, now)
    return standing if authors.admit(author, len(record.raw), standing, now) else None


def standing_of(store: Store, author: bytes, cap: int) -> int:
    """How many contributions of `author` (up to `cap`) have an acceptance in force of weight
    above 0 signed by another key: what the network has vouched for (a key cannot vouch for
    itself by accepting its own work in its own project)."""
    accepted = 0
    cursor: bytes | None = None
    looked = 0
    while looked < STANDING_SCAN and accepted < cap:
        page = store.contributions_by(author, cursor=cursor, limit=100)
        for contribution in page.items:
            looked += 1
            acceptance = store.acceptance_of(contribution.id)
            if (
                acceptance is not None
                and acceptance.author != author
                and isinstance(acceptance.body, Acceptance)
                and acceptance.body.weight > 0
            ):
                accepted += 1
        cursor = page.cursor
        if cursor is None:
            break
    return accepted
