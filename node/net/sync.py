"""Sync: what makes "nothing lost" true when gossip drops or a node was offline.

A request/response protocol on its own protocol id (`PROTOCOL`), one stream per request, over
py-libp2p's RequestResponse helper (varint-framed, size-capped, timed out). Requests are
`protocol.wire` messages:

- `reconcile(topic, payload)`: one round of range-based set reconciliation
  (`protocol.reconcile`) of the record ids both sides hold on a topic. The responder keeps no
  state between rounds, so serving many peers costs no memory.
- `fetch(ids)`: up to MAX_FETCH_IDS records by id, answered with at most MAX_RESPONSE_BYTES.
- `peers`: peer exchange.

When to sync with whom is the sync plan's decision (node/net/core/syncs.py): on every new
connection once identify says the peer speaks sync, every `sync_interval` after, sooner from
the other peers when one breaks a sync off (fail over), and with backoff. A sync session with a
peer exchanges peers, then reconciles each topic the node follows and fetches what it lacks in
bounded batches, through the same decode, signature, clock and store checks as gossip. Pull
only: the other side pulls from us when it syncs in turn, on the same connection.

Failure belongs to the peer. Whatever a peer does (hang up mid-answer, time out, answer
garbage, vanish) ends that peer's session as a `SyncError`, and only that session; the store
failing (a full disk) ends it as a `StorageError`, which blames nobody. `sync_with` is the
boundary that turns the exception groups of its nurseries into exactly one of the two, and a
session catches even a bug, logs it, and counts it against the session, never the node.

Every store read (the responder's and the reconciler's range queries, what we have) goes
through the node's gateway in a reader thread, and every write in its writer thread: the event
loop never waits on LevelDB.

Serving other nodes' syncs is node/net/serve.py. Rounds per topic are bounded by MAX_ROUNDS; a
peer whose answers do not decode gets a strike (`node.net.peers`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio
from libp2p.peer.id import ID
from libp2p.request_response import (
    ProtocolNotSupportedError,
    RequestResponse,
    RequestResponseError,
)

from node.errors import SyncError
from node.gateway import Gateway
from node.net import verify
from node.net.core.authors import Rationed
from node.net.core.syncs import Outcome, SyncPlan
from node.net.core.ticker import Ticker
from node.net.host import Stack
from node.net.intake import Intake
from node.net.peers import Peers
from node.net.serve import CODEC, CONFIG, PROTOCOL, Server, StoreItems
from node.net.verify import decode_all
from protocol import ProtocolError, Record
from protocol.reconcile import Reconciler
from protocol.wire import (
    MAX_FETCH_IDS,
    Fetch,
    PeerList,
    PeersRequest,
    Reconcile,
    Records,
    Refused,
    Request,
    Response,
    decode_response,
    encode_request,
)
from storage import StorageError, Store

if TYPE_CHECKING:
    # trio-typing's stubs (a py-libp2p dependency) shadow trio's own annotations for mypy.
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)

MAX_ROUNDS = 64
# How long a new connection's first sync waits for identify to say what the peer speaks
# (the sync plan then syncs anyway), and how often it looks meanwhile.
IDENTIFY_WAIT = 2.0
IDENTIFY_POLL = 0.01
# Fetched batches whose checks may run at once (two keep both verifying workers busy).
CHECKS_AHEAD = 2


@dataclass
class Report:
    """What one sync with one peer did."""

    peer: str
    rounds: int = 0
    needed: int = 0
    fetched: int = 0
    stored: int = 0
    rejected: int = 0
    # Records past their authors' rations: not stored, fetched again once they have refilled.
    rationed: int = 0
    error: str | None = None


@dataclass
class _Checked:
    """A fetched batch on its way through the checks."""

    asked: set[bytes]
    blobs: tuple[bytes, ...]
    valid: list[Record] = field(default_factory=list)
    errors: list[ProtocolError] = field(default_factory=list)
    # Dropped before their signatures were checked: their authors' rations were spent.
    rationed: int = 0
    done: trio.Event = field(default_factory=trio.Event)


class Sync:
    """Serves sync to peers, and runs the sessions the sync plan asks for."""

    def __init__(
        self,
        stack: Stack,
        gateway: Gateway,
        topics: Callable[[], Iterable[str]],
        peers: Peers,
        intake: Intake,
        *,
        clock: Callable[[], float] = time.time,
        interval: float = 30.0,
    ) -> None:
        self._stack = stack
        self._intake = intake
        self._gateway = gateway
        self._store = gateway.store
        self._topics = topics
        self._peers = peers
        self._clock = clock
        self._rr = RequestResponse(stack.host)
        self.server = Server(gateway, peers)
        # The syncs under way, by peer: what catch-up progress shows.
        self._running: dict[ID, Report] = {}
        self._ended: dict[ID, trio.Event] = {}
        self._verify = verify.limiter()
        self._nursery: trio.Nursery | None = None
        self.plan = SyncPlan(interval=interval)
        self._ticker = Ticker(self.plan.due, self.plan.next_wakeup, self._start, trio.current_time)
        self.reports: list[Report] = []

    def active(self) -> list[Report]:
        """Returns the syncs under way, as they stand (records needed, fetched, stored)."""
        return list(self._running.values())

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._rr.set_handler(PROTOCOL, self.server.handle, CODEC, CONFIG)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._peers.on_connected.append(self._connected)
            self._peers.on_disconnected.append(self._disconnected)
            for peer in self._peers.connected():
                self._connected(peer)
            nursery.start_soon(self._ticker.run)
            task_status.started()

    def refresh(self) -> None:
        """The followed topics changed: syncs every connected peer again, soon."""
        self.plan.refresh(trio.current_time())
        self._ticker.poke()

    # The plan's inputs and actions.

    def _connected(self, peer: ID) -> None:
        log.debug("sync: %s connected", peer)
        self.plan.connected(str(peer), trio.current_time())
        if self._nursery is not None:
            self._nursery.start_soon(self._identify, peer)
        self._ticker.poke()

    def _disconnected(self, peer: ID) -> None:
        log.debug("sync: %s disconnected", peer)
        self.plan.disconnected(str(peer))
        self.server.forget(peer)

    async def _identify(self, peer: ID) -> None:
        """Tells the plan what identify says the peer speaks, once it has said (if in time)."""
        with trio.move_on_after(IDENTIFY_WAIT):
            while (speaks := self.speaks_sync(peer)) is None:
                await trio.sleep(IDENTIFY_POLL)
            if not speaks:
                # Not a WorkWork node (gossip may still reach it): nothing to sync, and its
                # addresses are not handed on to others by peer exchange.
                log.debug("%s does not speak %s: gossip only", peer, PROTOCOL)
            log.debug("sync: identify says %s %s sync", peer, "speaks" if speaks else "lacks")
            self.plan.identified(str(peer), speaks, trio.current_time())
            self._ticker.poke()

    def _start(self, peers: Sequence[str]) -> None:
        assert self._nursery is not None
        for peer in peers:
            self._nursery.start_soon(self._session, ID.from_base58(peer))

    async def _session(self, peer: ID) -> None:
        """One sync session with `peer`, as the plan asked: whatever happens ends here."""
        outcome = Outcome.PEER_FAILED
        log.debug("sync: session with %s starts", peer)
        try:
            await self.exchange_peers(peer)
            # Identify may have answered after IDENTIFY_WAIT, when this session started.
            self._peers.learn_addrs(peer)
            await self.sync_with(peer)
            outcome = Outcome.DONE
        except SyncError as exc:
            log.info("sync with %s failed: %s", peer, exc)
        except StorageError as exc:
            outcome = Outcome.STORE_FAILED
            log.debug("sync with %s stopped: the store failed: %s", peer, exc)
        except Exception:
            # A bug, met with this peer's data: this session ends, the node goes on.
            log.exception("sync with %s failed unexpectedly (a bug in the node)", peer)
        finally:
            log.debug("sync: session with %s ends: %s", peer, outcome.value)
            self.plan.finished(str(peer), outcome, trio.current_time())
            self._ticker.poke()

    # Initiating.

    def is_foreign(self, peer: ID) -> bool:
        """Whether `peer` turned out not to speak our sync protocol (not a WorkWork node)."""
        return self.plan.is_foreign(str(peer))

    def speaks_sync(self, peer: ID) -> bool | None:
        """Whether identify says the peer speaks our sync protocol; None before it has said."""
        try:
            known = self._stack.host.get_peerstore().get_protocols(peer)
        except Exception:  # py-libp2p raises PeerStoreError, or KeyError, for an unknown peer
            return None
        return (PROTOCOL in known) if known else None

    async def _request(self, peer: ID, request: Request) -> Response:
        if self.speaks_sync(peer) is False:
            # Identify already said so: asking would only make py-libp2p log an ERROR.
            self.plan.identified(str(peer), False, trio.current_time())
            raise SyncError(f"{peer} does not speak {PROTOCOL}")
        try:
            data = await self._rr.send_request(
                peer, [PROTOCOL], encode_request(request), CODEC, CONFIG
            )
        except ProtocolNotSupportedError as exc:
            # A libp2p peer that is not a WorkWork node (or an older one): gossip only.
            self.plan.identified(str(peer), False, trio.current_time())
            raise SyncError(f"{peer} does not speak {PROTOCOL}") from exc
        except RequestResponseError as exc:
            raise SyncError(f"{type(exc).__name__}: {exc}") from exc
        try:
            response = decode_response(data)
        except ProtocolError as exc:
            self._peers.penalize(peer, f"bad sync response: {exc}")
            raise SyncError(f"bad response from {peer}: {exc}") from exc
        if isinstance(response, Refused):
            raise SyncError(f"{peer} refused: {response.reason}")
        return response

    async def exchange_peers(self, peer: ID) -> None:
        """Asks `peer` for the peers it knows and remembers them."""
        try:
            response = await self._request(peer, PeersRequest())
        except SyncError as exc:
            log.debug("peer exchange with %s failed: %s", peer, exc)
            return
        if isinstance(response, PeerList):
            self._peers.learned(response.peers)

    async def sync_with(self, peer: ID) -> Report:
        """Reconciles every followed topic with `peer` and fetches what we lack.

        If a sync with `peer` is under way already, waits for it to end first: what this
        returns is a sync that started after the call.

        Raises:
            SyncError: the peer could not be reached, hung up, timed out or answered out of
                protocol: whatever the peer caused, as one error (never an exception group).
            StorageError: our store failed (a full disk); the peer is not to blame.
        """
        while (running := self._ended.get(peer)) is not None:
            await running.wait()
        report = Report(str(peer))
        self._running[peer] = report
        self._ended[peer] = ended = trio.Event()
        try:
            with _boundary(peer):
                await self._sync_topics(peer, report)
        except (SyncError, StorageError) as exc:
            report.error = str(exc)
            raise
        finally:
            del self._running[peer], self._ended[peer]
            ended.set()
            self.reports.append(report)
            del self.reports[:-100]
        return report

    async def _sync_topics(self, peer: ID, report: Report) -> None:
        # Sorted, so "meta" (projects) comes before the work shards that depend on it.
        for topic in sorted(self._topics()):
            need: list[bytes] = []
            try:
                await self._reconcile(peer, topic, report, need)
            except SyncError:
                # What the rounds before the failure found is still fetched: a long catch-up
                # cut short (a dropped connection, MAX_ROUNDS) goes on from there next time
                # instead of starting over.
                if need:
                    try:
                        with _boundary(peer):
                            await self._fetch(peer, topic, need, report)
                    except SyncError:
                        pass
                raise
            await self._fetch(peer, topic, need, report)

    async def _reconcile(self, peer: ID, topic: str, report: Report, need: list[bytes]) -> None:
        """Reconciles one topic with `peer`, adding the ids it holds and we lack to `need`."""
        reconciler = Reconciler(StoreItems(self._store, topic))
        message: bytes | None = await self._gateway.read(reconciler.initiate)
        rounds = 0
        while message is not None:
            rounds += 1
            if rounds > MAX_ROUNDS:
                raise SyncError(f"reconciling {topic} with {peer} took over {MAX_ROUNDS} rounds")
            report.rounds += 1
            response = await self._request(peer, Reconcile(message, topic))
            if not isinstance(response, Reconcile):
                raise SyncError(f"{peer} answered a reconcile with {type(response).__name__}")
            try:
                step = await self._gateway.read(reconciler.reconcile, response.payload)
            except ProtocolError as exc:
                self._peers.penalize(peer, f"bad reconcile answer: {exc}")
                raise SyncError(f"bad reconcile answer from {peer}: {exc}") from exc
            need.extend(step.need)
            report.needed += len(step.need)
            message = step.next

    async def _fetch(self, peer: ID, topic: str, need: list[bytes], report: Report) -> None:
        """Fetches `need` from `peer` and stores it, in a pipeline of three stages.

        Downloading runs ahead of checking, and the checks of two batches overlap each other
        and the store's write of the batch before: so the worker processes that verify
        signatures always have work queued, and nothing waits for a round trip.
        """
        # What was just left out for its authors' rations is not fetched again yet.
        pending = await self._gateway.read(
            _missing, self._store, need, self._intake.rationed, self._clock()
        )
        downloaded_send, downloaded = trio.open_memory_channel[
            tuple[set[bytes], tuple[bytes, ...]]
        ](1)
        # In order of download; each is being checked while it waits here.
        checking_send, checking = trio.open_memory_channel[_Checked](CHECKS_AHEAD - 1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._download, peer, pending, downloaded_send)
            nursery.start_soon(self._check_all, downloaded, checking_send, nursery)
            async for batch in checking:
                await batch.done.wait()
                await self._apply(peer, topic, batch, report)

    async def _check_all(
        self,
        downloaded: trio.MemoryReceiveChannel[tuple[set[bytes], tuple[bytes, ...]]],
        checking: trio.MemorySendChannel[_Checked],
        nursery: trio.Nursery,
    ) -> None:
        async with checking:
            async for asked, blobs in downloaded:
                batch = _Checked(asked, blobs)
                # Blocks while CHECKS_AHEAD batches are checked and not yet stored.
                await checking.send(batch)
                nursery.start_soon(self._check, batch)

    async def _check(self, batch: _Checked) -> None:
        # Records whose authors' rations are spent are dropped before any signature check.
        blobs = self._intake.ration(batch.blobs)
        batch.rationed = len(batch.blobs) - len(blobs)
        # The clock is the intake's to judge: a record from the near future is held.
        batch.valid, batch.errors = await decode_all(blobs, self._verify, now=None)
        batch.done.set()

    async def _download(
        self,
        peer: ID,
        pending: list[bytes],
        send: trio.MemorySendChannel[tuple[set[bytes], tuple[bytes, ...]]],
    ) -> None:
        async with send:
            while pending:
                chunk, pending = pending[:MAX_FETCH_IDS], pending[MAX_FETCH_IDS:]
                response = await self._request(peer, Fetch(tuple(chunk)))
                if not isinstance(response, Records):
                    raise SyncError(f"{peer} answered a fetch with {type(response).__name__}")
                got = {hashlib.sha256(blob).digest() for blob in response.records}
                missing = [rid for rid in chunk if rid not in got]
                if len(missing) == len(chunk):
                    return  # nothing usable came back: stop rather than ask again
                # What the response size cap left out is asked for again.
                pending = missing + pending
                await send.send((set(chunk), response.records))

    async def _apply(self, peer: ID, topic: str, batch: _Checked, report: Report) -> None:
        valid, blobs, bad = batch.valid, batch.blobs, len(batch.errors)
        unasked = [r for r in valid if r.id not in batch.asked]
        if bad or unasked:
            self._peers.penalize(peer, f"{bad} invalid or {len(unasked)} unasked records")
        wanted = [r for r in valid if r.id in batch.asked]
        # The intake checks the topic (we asked for ids of this topic), the clock and orphans.
        taken = await self._intake.take(str(peer), topic, wanted)
        if taken.offence is not None:
            self._peers.penalize(peer, taken.offence)
        result = taken.result
        report.fetched += len(blobs)
        report.stored += len(result.added) + len(result.released)
        report.rejected += bad + len(result.rejected) + taken.refused
        report.rationed += taken.rationed + batch.rationed


def _missing(store: Store, need: Sequence[bytes], rationed: Rationed, now: float) -> list[bytes]:
    """The ids of `need` that the store does not hold and that were not left out for their
    authors' rations lately, each once, in order (a reader thread: a flood's million ids cost
    seconds)."""
    return [
        rid for rid in dict.fromkeys(need) if not store.has(rid) and not rationed.recent(rid, now)
    ]


# What a peer can make a sync exchange fail with, besides our own SyncError.
_PEER_FAULTS = (SyncError, RequestResponseError, ProtocolError)


@contextlib.contextmanager
def _boundary(peer: ID) -> Iterator[None]:
    """Turns what escapes a sync exchange with `peer` into one plain error.

    Nurseries wrap even a lone failure in an exception group, and a pipeline of several tasks
    may fail in several of them at once. Out of the block comes: a `StorageError` if our store
    failed (in any task), else one `SyncError` if every failure is one a peer can cause;
    cancellation and anything else (a bug) pass through as they are.
    """
    try:
        yield
    except (SyncError, StorageError):
        raise
    except BaseException as exc:
        leaves = list(_leaves(exc))
        if any(not isinstance(e, Exception) for e in leaves):
            raise  # cancelled, or the process is stopping
        stored = next((e for e in leaves if isinstance(e, StorageError)), None)
        if stored is not None:
            raise stored from exc
        if leaves and all(isinstance(e, _PEER_FAULTS) for e in leaves):
            first = leaves[0]
            message = (
                str(first) if isinstance(first, SyncError) else f"{type(first).__name__}: {first}"
            )
            raise SyncError(message) from exc
        raise


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc
