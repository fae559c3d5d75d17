"""The node: one store, one libp2p host, gossip, sync and peer management, run together.

Run order (trio nesting gives the reverse for shutdown): open the store (in a thread: it may
rebuild its id filter) and its gateway; start the host listening; start pubsub and its router;
start gossip, sync, the peer manager and discovery (DHT walk, mDNS); follow topics; dial
bootstrap and known peers.
`Node.run` reports the node ready with `task_status.started`, and closes the store last.

Local writes take the same path as remote ones: a record signed here is checked and ingested
into the store (in the gateway's writer thread), and only then published. Every other store
call of the node goes through the gateway too (`node.gateway`); `strict_io` makes the store
refuse calls from the node's tasks on the event loop, which is how the tests hold it to that.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import multiaddr
import trio
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from node.config import EvidenceConfig, NetworkConfig
from node.errors import OrphanRecord
from node.evidence import DIRNAME as EVIDENCE_DIR
from node.evidence import Evidence
from node.gateway import Gateway
from node.net import hostkey
from node.net.core.authors import Limits
from node.net.discovery import Discovery
from node.net.evidence import EvidenceService
from node.net.gossip import Gossip
from node.net.host import Stack, build
from node.net.intake import Intake
from node.net.nat import Nat
from node.net.peers import Peers
from node.net.sync import Sync
from protocol import Contribution, Project, Record, project_id
from protocol.topics import ALL as ALL_TOPICS
from protocol.topics import META, shard, work
from protocol.validate import check, check_open, dependencies
from storage import IngestResult, Store

if TYPE_CHECKING:
    # trio-typing's stubs (a py-libp2p dependency) shadow trio's own annotations for mypy.
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)

# Set to 1, the store refuses calls from the event loop (`Node.strict_io`).
STRICT_IO_ENV = "WORKWORK_STRICT_IO"


class Node:
    """A WorkWork node over one data directory."""

    def __init__(
        self,
        data_dir: Path,
        config: NetworkConfig,
        *,
        clock: Callable[[], float] = time.time,
        strict_io: bool | None = None,
        evidence: EvidenceConfig | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.config = config
        self.evidence_config = evidence or EvidenceConfig()
        # Evidence files by sha256 (`node.evidence`); blocking file I/O, called in threads.
        self.evidence = Evidence(
            self.data_dir / EVIDENCE_DIR, max_bytes=self.evidence_config.max_bytes
        )
        self.clock = clock
        # Refuse store calls from the event loop (see node.gateway); on in the tests.
        self.strict_io = os.environ.get(STRICT_IO_ENV) == "1" if strict_io is None else strict_io
        self._stack: Stack | None = None
        self._store: Store | None = None
        self._gateway: Gateway | None = None
        # The task whose descendants are the node's own, for strict mode: Node.run's, unless a
        # daemon around it says its own.
        self.io_root: trio.lowlevel.Task | None = None
        self._gossip: Gossip | None = None
        self._sync: Sync | None = None
        self._peers: Peers | None = None
        self._intake: Intake | None = None
        self._discovery: Discovery | None = None
        self._evidence_net: EvidenceService | None = None
        self._nat: Nat | None = None

    # What a running node offers.

    @property
    def store(self) -> Store:
        assert self._store is not None, "the node is not running"
        return self._store

    @property
    def gateway(self) -> Gateway:
        """The one way from async code to the store (`node.gateway`)."""
        assert self._gateway is not None, "the node is not running"
        return self._gateway

    @property
    def gossip(self) -> Gossip:
        assert self._gossip is not None, "the node is not running"
        return self._gossip

    @property
    def sync(self) -> Sync:
        assert self._sync is not None, "the node is not running"
        return self._sync

    @property
    def intake(self) -> Intake:
        assert self._intake is not None, "the node is not running"
        return self._intake

    @property
    def peers(self) -> Peers:
        assert self._peers is not None, "the node is not running"
        return self._peers

    @property
    def discovery(self) -> Discovery:
        assert self._discovery is not None, "the node is not running"
        return self._discovery

    @property
    def evidence_net(self) -> EvidenceService:
        """Evidence files served to and fetched from peers (`node.net.evidence`)."""
        assert self._evidence_net is not None, "the node is not running"
        return self._evidence_net

    @property
    def nat(self) -> Nat:
        """Reachability, relay reservations and hole punching (node.net.nat)."""
        assert self._nat is not None, "the node is not running"
        return self._nat

    @property
    def peer_id(self) -> ID:
        assert self._stack is not None, "the node is not running"
        return self._stack.host.get_id()

    def addrs(self) -> list[str]:
        """Returns the node's dialable addresses, each with its /p2p/ peer id."""
        assert self._stack is not None, "the node is not running"
        return [str(a) for a in self._stack.host.get_addrs()]

    def limits(self) -> Limits | None:
        """The authors' rations of this node's configuration (None: off)."""
        config = self.config
        if config.author_rate <= 0:
            return None
        return Limits(
            rate=config.author_rate,
            burst=float(config.author_burst),
            total=config.author_total,
            newcomers_rate=config.newcomers_rate,
            newcomers_burst=float(config.newcomers_burst),
            difficulty=config.key_difficulty,
            unstamped_rate=config.unstamped_rate,
            unstamped_burst=float(config.unstamped_burst),
        )

    def topics(self) -> tuple[str, ...]:
        """Returns the topics this node follows by its role and configuration."""
        if self.config.role == "bootstrap":
            return ALL_TOPICS
        shards = sorted({shard(pid) for pid in self.config.follow})
        return (META, *(work(i) for i in shards))

    async def submit(self, records: Sequence[Record], *, orphans: bool = False) -> IngestResult:
        """Checks, stores and publishes records made locally; rejected ones are not published.

        A local record must be complete: one that refers to a project or contribution the
        store does not hold (and the batch does not bring) is refused, and nothing of the
        batch is stored, rather than left waiting in the orphan area unknown to its author.
        With `orphans`, such records are stored as orphans and published all the same (for
        records relayed from elsewhere: an import, a test or a benchmark that feeds the
        network).

        Raises:
            ProtocolError: a record is dated in the future, or is a contribution to a project
                that is closed (`validate.check_open`): refused here, for the user to see.
            OrphanRecord: a record refers to one this node has not seen.
            StorageError: the store could not be written.
        """
        # In the gateway's writer thread, as gossip's writes are: a large local batch must not
        # stall the network.
        result = await self.gateway.write(self._check_and_ingest, records, self.clock(), orphans)
        published = set(result.added) | set(result.orphaned)
        await self.gossip.publish([r for r in records if r.id in published])
        return result

    def _check_and_ingest(
        self, records: Sequence[Record], now: float, orphans: bool
    ) -> IngestResult:
        store = self.store
        projects: dict[bytes, Record | None] = {}  # each project read (and decoded) once
        brought = {r.id for r in records}
        for record in records:
            if isinstance(record.body, Project):
                projects[project_id(record.author, record.body.name)] = record
        for record in records:
            check(record, now=now)
            for ref in dependencies(record):
                if ref.kind == "project":
                    if ref.key not in projects:
                        projects[ref.key] = store.project(ref.key)
                    found = projects[ref.key] is not None
                else:
                    found = ref.key in brought or store.has(ref.key)
                if not found and not orphans:
                    raise OrphanRecord(
                        f"{record.kind} {record.id.hex()[:16]} refers to {ref.kind} "
                        f"{ref.key.hex()}, which this node has not seen: nothing was stored"
                    )
            if isinstance(record.body, Contribution):
                project = projects[record.body.project_id]
                if project is not None:
                    check_open(record, project)
        return store.ingest(records, now=now)

    async def follow_project(self, project_id: bytes) -> None:
        """Joins the work shard of a project (a bootstrap node follows all of them already),
        and syncs it from the connected peers if it is new."""
        topic = work(shard(project_id))
        if topic in self.gossip.followed:
            return
        await self.gossip.follow(topic)
        self.sync.refresh()

    async def connect(self, addr: str) -> None:
        """Dials a peer by multiaddr (with /p2p/) and remembers it."""
        await self.peers.dial(multiaddr.Multiaddr(addr))

    async def run(self, *, task_status: TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = hostkey.load_or_create(self.data_dir / hostkey.FILENAME)
        await trio.to_thread.run_sync(self.evidence.open)
        # Opening reads the store's id filter (or rebuilds it): seconds for a large store.
        store = await trio.to_thread.run_sync(Store.open, self.data_dir / "store")
        try:
            await self._run(store, key, task_status)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(store.close)

    async def _run(self, store: Store, key: KeyPair, task_status: TaskStatus[Node]) -> None:
        self._store = store
        root = self.io_root or trio.lowlevel.current_task()
        self._gateway = Gateway(store, strict=self.strict_io, root=root)
        stack = self._stack = build(key, self.config)
        listen = [multiaddr.Multiaddr(a) for a in self.config.listen]
        async with stack.running(listen), trio.open_nursery() as nursery:
            gateway = self._gateway
            self._peers = Peers(stack, gateway, self.config, clock=self.clock)
            self._intake = Intake(gateway, clock=self.clock, limits=self.limits())
            self._gossip = Gossip(
                stack,
                self._intake,
                self._peers.penalize,
                clock=self.clock,
                drop=self.config.gossip_drop,
            )
            self._gossip.on_useful.append(self._peers.useful)
            self._sync = Sync(
                stack,
                gateway,
                lambda: self.gossip.followed,
                self._peers,
                self._intake,
                clock=self.clock,
                interval=self.config.sync_interval,
            )
            self._evidence_net = EvidenceService(
                stack.host, gateway, self.evidence, self._peers, self.evidence_config
            )
            self._evidence_net.start()
            await nursery.start(self._intake.run)
            await nursery.start(self._gossip.run)
            for topic in self.topics():
                await self._gossip.follow(topic)
            await nursery.start(self._sync.run)
            await nursery.start(self._peers.run)
            self._discovery = Discovery(stack, self._peers, self.config)
            await nursery.start(self._discovery.run)
            self._nat = Nat(stack, self.config, self._peers, clock=self.clock)
            self._peers.circuit_dialer = self._nat.dial
            await nursery.start(self._nat.run)
            log.info("node %s listening on %s", self.peer_id, ", ".join(self.addrs()))
            task_status.started(self)
