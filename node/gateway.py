"""The one way from async code to the store: blocking calls run in worker threads, under limits.

Every call into LevelDB blocks: a read takes microseconds to milliseconds, an ingest, a range
scan or the tree of a 100,000-leaf epoch takes up to seconds, and ingest holds the store's lock
meanwhile. So no trio task calls the store (or builds a tree from it) itself: it asks the node's
gateway, which runs the call in a worker thread. Reads run up to READERS at a time, writes one
at a time (the store serializes them anyway, and a second writer would only wait on the lock in
a thread of its own). A call is never abandoned: if its task is cancelled, the thread finishes
first, so nothing is left half done.

With `strict` (the tests run so), the store refuses to be used from the event loop's thread by
any task of the node (`Store.guard`): a task under `root`, the task that runs the node, or the
daemon around it. That is how the tests hold the code to this rule, while the tests' own code,
which runs the node and is not part of it, may still read the store directly.

Failures. A `StorageError` from a write (a full disk, an I/O error) marks the store as failing
until a write succeeds again: `fault` holds the error, `status` shows it, and the change is
logged once each way. Callers decide what a failure means for them: gossip refuses a batch it
could not store without blaming the peer that sent it, sync stops and tries again later, and
the API answers 503. Nothing is half written meanwhile (an ingest is one atomic write batch),
and what was refused comes back through sync once the store takes writes again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import trio

from storage import StorageError, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

READERS = 4


class OnEventLoop(RuntimeError):
    """Raised when code calls the store from the event loop's thread instead of the gateway."""


class Gateway:
    """Runs blocking store calls in worker threads: reads up to READERS at once, writes one.

    Args:
        store: the store every call is about.
        strict: make the store refuse calls from the event loop's thread (for the tests).
    """

    def __init__(
        self,
        store: Store,
        *,
        strict: bool = False,
        root: trio.lowlevel.Task | None = None,
        readers: int = READERS,
    ) -> None:
        self.store = store
        self._reads = trio.CapacityLimiter(readers)
        self._writes = trio.CapacityLimiter(1)
        self.fault: StorageError | None = None
        if strict:
            store.guard = partial(_off_the_loop, root)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Returns `fn(*args, **kwargs)`, run in a reader thread."""
        return await trio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=self._reads)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Returns `fn(*args, **kwargs)`, run in the writer thread; tracks the store's health.

        Raises:
            StorageError: the write failed (the store stays as it was); `fault` says so until a
                later write succeeds.
        """
        try:
            result = await trio.to_thread.run_sync(
                partial(fn, *args, **kwargs), limiter=self._writes
            )
        except StorageError as exc:
            if self.fault is None:
                log.error("the store cannot be written: %s; records are refused until it can", exc)
            self.fault = exc
            raise
        if self.fault is not None:
            log.info("the store takes writes again")
            self.fault = None
        return result

    def status(self) -> dict[str, Any]:
        """Returns the store's health as the API's status shows it."""
        if self.fault is None:
            return {"writable": True, "error": None}
        return {"writable": False, "error": str(self.fault)}


def _off_the_loop(root: trio.lowlevel.Task | None) -> None:
    """Refuses a store call from a task of the node (under `root`; any task if None)."""
    # trio-typing's stubs (a py-libp2p dependency) lack in_trio_task.
    if not trio.lowlevel.in_trio_task():  # type: ignore[attr-defined]
        return  # a worker thread: where store calls belong
    task: trio.lowlevel.Task | None = trio.lowlevel.current_task()
    while task is not None:
        if root is None or task is root:
            raise OnEventLoop("a blocking store call on the event loop: go through node.gateway")
        nursery = task.parent_nursery
        task = None if nursery is None else nursery.parent_task
