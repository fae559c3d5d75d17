"""The daemon: one node and its local API in one trio nursery, until it is told to stop.

Start order: the node (store, host, gossip, sync, peers), the shards of the projects this
identity owns or contributed to, a fresh API token in api.cookie, the API server, then
api.json (where clients find it). Stop order is the reverse: `stop()` (SIGINT or SIGTERM in
`workwork node start`) lets the server finish the requests in flight, api.json goes, and the
node is cancelled last, closing the store cleanly. api.json exists exactly while the API
answers, so a client that finds none knows that no daemon runs.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from node.api import ROUTES
from node.api.app import Api
from node.api.routes import Limits
from node.chain.client import ChainClient, checksum, open_chain
from node.chain.settlement import Settlement
from node.files import write_secret
from node.home import Home, Settings
from node.keys import Identity
from node.net.node import Node
from protocol import Contribution, Project, project_id
from storage import Store

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)


class Daemon:
    """A running node with its API, over one data dir."""

    def __init__(
        self,
        home: Home,
        identity: Identity,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        limits: Limits | None = None,
    ) -> None:
        self.home = home
        self.identity = identity
        self.settings = settings
        self.clock = clock
        # The bounds of the API's request bodies (size, time).
        self.limits = limits or Limits()
        self.node: Node | None = None
        self.api: Api | None = None
        # Where the API listens once it runs: (host, port).
        self.address: tuple[str, str | int] | None = None
        # The settlement service (anchoring, funding, claims) on the configured chain, once
        # `run` has started it.
        self.settlement: Settlement | None = None
        self._stop = trio.Event()

    def stop(self) -> None:
        """Asks the daemon to shut down: the API drains, then the node stops."""
        self._stop.set()

    async def run(self, *, task_status: TaskStatus[Daemon] = trio.TASK_STATUS_IGNORED) -> None:
        node = Node(
            self.home.root,
            self.settings.network,
            clock=self.clock,
            evidence=self.settings.evidence,
        )
        # The API and the settlement service are the node's own code too (strict mode).
        node.io_root = trio.lowlevel.current_task()
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            self.node = node
            await self._follow_own(node)
            chain_cm = open_chain(self.settings.chain, self.identity.wallet, self.home.root)
            chain = await trio.to_thread.run_sync(chain_cm.__enter__)
            try:
                await self._serve(node, chain, nursery, task_status)
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(chain_cm.__exit__, None, None, None)
            nursery.cancel_scope.cancel()

    async def _serve(
        self,
        node: Node,
        chain: ChainClient,
        nursery: trio.Nursery,
        task_status: TaskStatus[Daemon],
    ) -> None:
        """Runs the settlement service and the API until `stop()`, then stops both."""
        log.info(
            "chain %d (%s), settlement contract %s, wallet %s",
            chain.chain_id,
            chain.config.backend,
            checksum(chain.address),
            checksum(chain.sender),
        )
        settlement = Settlement(node, self.identity, chain, self.home.root, clock=self.clock)
        token = secrets.token_hex(32)
        write_secret(self.home.cookie, token.encode())
        api = self.api = Api(
            node, self.identity, nursery, settlement=settlement, routes=ROUTES, limits=self.limits
        )
        async with trio.open_nursery() as services:
            await services.start(settlement.run)
            self.settlement = settlement
            try:
                # The server returns once `stop()` fires its shutdown trigger and the requests
                # in flight are answered.
                async with trio.open_nursery() as web:
                    binds = await web.start(
                        partial(
                            serve,
                            api.app(token),  # type: ignore[arg-type]
                            self._server_config(),
                            shutdown_trigger=self._stop.wait,
                        )
                    )
                    host, _, port = binds[0].removeprefix("http://").rpartition(":")
                    self.address = (host.strip("[]"), int(port))
                    self._write_api_file()
                    log.info("API listening on %s", binds[0])
                    task_status.started(self)
            finally:
                self.home.api_file.unlink(missing_ok=True)
                self.address = None
                services.cancel_scope.cancel()

    async def run_until_signal(self) -> None:
        """Runs until SIGINT or SIGTERM, then shuts down cleanly (what `node start` does)."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.run)
                tune_gc()

                async def watch() -> None:
                    async for signum in signals:
                        log.info("%s: shutting down", signal.Signals(signum).name)
                        self.stop()
                        return

                nursery.start_soon(watch)
                await self._stop.wait()

    def _server_config(self) -> HypercornConfig:
        config = HypercornConfig()
        api = self.settings.api
        host = f"[{api.host}]" if ":" in api.host else api.host
        config.bind = [f"{host}:{api.port}"]
        config.errorlog = logging.getLogger("node.api.server")
        config.accesslog = None
        config.graceful_timeout = 2.0
        # A connection that sends no complete request head within this time is closed: an
        # idle keep-alive connection, or headers trickled in (the clock runs until the head is
        # whole). Bodies are bounded by the app (`Limits`): Hypercorn's read_timeout would bound
        # each read, also while a long request (anchor, fund) waits for its answer, and a
        # client sending a byte now and then would never meet it.
        config.keep_alive_timeout = self.limits.head_seconds
        config.read_timeout = None
        # The request line and headers together.
        config.h11_max_incomplete_size = 16 * 1024
        # Connections the kernel holds until the server accepts them: past Hypercorn's 100, a
        # burst of clients (an agent's workers, a dashboard) is reset.
        config.backlog = 1024
        return config

    def _write_api_file(self) -> None:
        assert self.address is not None
        host, port = self.address
        document = {"host": host, "port": port, "pid": os.getpid()}
        path = self.home.api_file
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(document) + "\n")
        tmp.replace(path)

    async def _follow_own(self, node: Node) -> None:
        """Joins the shards of the projects this identity owns or contributed to.

        A personal node follows only the shards it is told to; without this, a restarted node
        would stop receiving the contributions to its own projects.
        """
        if node.config.role == "bootstrap":
            return  # it follows every shard already
        wanted = await node.gateway.read(_own_projects, node.store, self.identity.public_key)
        for pid in sorted(wanted):
            await node.follow_project(pid)


def _own_projects(store: Store, me: bytes) -> set[bytes]:
    """The projects `me` owns or contributed to (in a reader thread: it reads every project)."""
    wanted: set[bytes] = set()
    cursor = None
    while True:
        page = store.projects(cursor=cursor, limit=1000)
        for posting in page.items:
            if posting.author == me:
                wanted.add(project_id(me, posting.expect(Project).name))
        if page.cursor is None:
            break
        cursor = page.cursor
    cursor = None
    while True:
        page = store.contributions_by(me, cursor=cursor, limit=1000)
        wanted.update(c.expect(Contribution).project_id for c in page.items)
        if page.cursor is None:
            return wanted
        cursor = page.cursor


# Allocations between collections of the youngest generation (CPython's default is 700), and
# how many of those before the next generation is collected (10 and 10).
GC_THRESHOLDS = (20_000, 50, 1000)


def tune_gc() -> None:
    """Makes the collector's pauses rare and short in a node that has started (its process's).

    The objects made at start-up (modules, the host, the store's caches) live as long as the
    process: they are frozen out of every collection. And the youngest generation is collected
    after 20,000 allocations instead of 700: a node under load allocates fast, most of it dies
    young, and each collection holds the event loop. Measured with `scripts/bench/network.py
    lag` (docs/BENCHMARKS.md): the longest stall of the event loop while serving three catch-ups
    and storing gossip went from 170-390 ms (full collections of 70-140 ms among them) to
    about 75 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def setup_logging(home: Home, *, verbose: bool = False) -> None:
    """Sends the log to stderr and to logs/node.log in the data dir."""
    home.log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [
        logging.StreamHandler(sys.stderr),
        logging.FileHandler(home.log),
    ]
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # py-libp2p logs every stream at INFO; its warnings are what an operator needs.
    logging.getLogger("libp2p").setLevel(logging.WARNING)
