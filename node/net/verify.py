"""Decoding, signature and clock checks of record batches, with signatures checked in parallel.

Gossip and sync both use this. A signature check costs about 45 us of libsodium, several times
the Python work of decoding a record, so it is what runs in parallel:

- One or two records (gossip's single records) are checked on the event loop: a thread's round
  trip would cost more than the check (INLINE_UP_TO).
- A small batch is split over a few threads. libsodium releases the GIL while it verifies, but
  a thread must take the GIL back after every signature, and while the event loop or the
  store's writer runs Python it waits up to the interpreter's switch interval (5 ms) for it.
- A large batch (POOL_FROM records or more) is decoded and verified whole in worker processes
  (node/net/worker.py: `protocol.envelope.accepted`), which share no GIL: both cores verify.
  They answer one byte per record, and a thread here rebuilds the records they accepted from
  the same bytes without checking them again (`protocol.envelope.rebuild`, about half the
  cost of decoding without the signature), so this process only moves bytes and builds
  objects. A blob a worker refused is decoded here with every check, which raises the very
  error `protocol.decode` raises for it; so the result, errors included, is what decoding
  every blob with verification gives. Measured with `scripts/bench/network.py catchup` and
  `throughput` (docs/BENCHMARKS.md).

The worker processes are plain subprocesses (`python -m node.net.worker`, which imports only
`protocol`), not multiprocessing's spawned ones: a spawned child imports the parent's main
module first, and a node's (the CLI, or a benchmark) imports all of the node, web3 and
eth-tester, which took each worker 1.5-3.5 s of CPU at the start of every catch-up. They are
started on first use and shared by every node of the process (like trio's thread cache). Each
ends when that process ends, however it ends, because the end of its stdin tells it so. If a
worker dies, the chunk it had is decoded here and another worker is started at the next use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence

import msgpack
import trio

from node.net.worker import read_frame, write_frame
from protocol import ProtocolError, Record
from protocol import decode as decode_record
from protocol.envelope import rebuild
from protocol.validate import check

log = logging.getLogger(__name__)

THREADS = max(1, min(4, os.cpu_count() or 1))
# Below this many records per thread, splitting costs more than it saves.
SPLIT_FROM = 32
# From this many records, a batch's signatures are checked in worker processes: below it, the
# cost of sending the blobs there (about 2 ms a round trip) outweighs the GIL contention saved.
POOL_FROM = 128
# Up to this many records are checked on the event loop itself (about 70 us each): a thread's
# round trip costs a single record more than its check, in latency and CPU (the loop hands
# the GIL to the thread and waits to get it back).
INLINE_UP_TO = 2


def limiter() -> trio.CapacityLimiter:
    """Returns a limiter that lets a node use THREADS decoding threads at once."""
    return trio.CapacityLimiter(THREADS)


async def decode_all(
    blobs: Sequence[bytes], limit: trio.CapacityLimiter, *, now: float | None
) -> tuple[list[Record], list[ProtocolError]]:
    """Decodes, verifies and clock-checks `blobs` (`validate.check` against `now`; None leaves
    the clock to the caller: node/net/intake.py holds records from the near future).

    Returns:
        The records that passed, in order, and the errors of those that did not.
    """
    if len(blobs) <= INLINE_UP_TO:
        return _decode(blobs, now)
    if len(blobs) >= POOL_FROM and THREADS > 1:
        return await _decode_pooled(blobs, limit, now)
    step = max(SPLIT_FROM, -(-len(blobs) // THREADS))
    chunks = [blobs[i : i + step] for i in range(0, len(blobs), step)]
    results: list[tuple[list[Record], list[ProtocolError]]] = [([], [])] * len(chunks)

    async def work(index: int) -> None:
        results[index] = await trio.to_thread.run_sync(_decode, chunks[index], now, limiter=limit)

    async with trio.open_nursery() as nursery:
        for index in range(len(chunks)):
            nursery.start_soon(work, index)
    return [r for ok, _ in results for r in ok], [e for _, bad in results for e in bad]


def _decode(blobs: Sequence[bytes], now: float | None) -> tuple[list[Record], list[ProtocolError]]:
    records: list[Record] = []
    errors: list[ProtocolError] = []
    for blob in blobs:
        try:
            record = decode_record(blob)
            if now is not None:
                check(record, now=now)
            records.append(record)
        except ProtocolError as exc:
            errors.append(exc)
    return records, errors


async def _decode_pooled(
    blobs: Sequence[bytes], limit: trio.CapacityLimiter, now: float | None
) -> tuple[list[Record], list[ProtocolError]]:
    step = -(-len(blobs) // THREADS)
    chunks = [blobs[i : i + step] for i in range(0, len(blobs), step)]
    results: list[tuple[list[Record], list[ProtocolError]]] = [([], [])] * len(chunks)

    async def work(index: int) -> None:
        results[index] = await trio.to_thread.run_sync(
            _decode_in_worker, chunks[index], now, limiter=limit
        )

    async with trio.open_nursery() as nursery:
        for index in range(len(chunks)):
            nursery.start_soon(work, index)
    return [r for ok, _ in results for r in ok], [e for _, bad in results for e in bad]


def _decode_in_worker(
    blobs: Sequence[bytes], now: float | None
) -> tuple[list[Record], list[ProtocolError]]:
    """Runs in a thread: has a worker process check `blobs`, then rebuilds what it accepted.

    A blob the worker refused is decoded here with every check, which raises the very error
    `protocol.decode` raises for it; if the worker died, every blob of the chunk is.
    """
    verdicts = _POOL.check(blobs)
    records: list[Record] = []
    errors: list[ProtocolError] = []
    for blob, ok in zip(blobs, verdicts, strict=True):
        try:
            record = rebuild(blob) if ok else decode_record(blob)
            if now is not None:
                check(record, now=now)
            records.append(record)
        except ProtocolError as exc:
            errors.append(exc)
    return records, errors


def worker_pids() -> list[int]:
    """Returns the process ids of the idle verifying workers (for tests and benchmarks)."""
    return _POOL.pids()


class _Worker:
    """One worker process (node/net/worker.py) and the pipes to it; used by one thread at a time."""

    def __init__(self) -> None:
        # -P: the worker finds `node` on the parent's path, never in its working directory.
        path = os.pathsep.join(p for p in sys.path if p)
        env = {**os.environ, "PYTHONPATH": path}
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "node.net.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def check(self, blobs: Sequence[bytes]) -> bytes | None:
        """Returns one verdict byte per blob, or None if the worker died."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            write_frame(self.process.stdin, msgpack.packb(list(blobs)))
            verdicts = read_frame(self.process.stdout)
        except (BrokenPipeError, ValueError, OSError):
            return None
        return verdicts if verdicts is not None and len(verdicts) == len(blobs) else None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class _Pool:
    """Up to THREADS worker processes, started on first use and shared by every node of the
    process (like trio's thread cache); a thread borrows one for a chunk and gives it back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._started = 0

    def check(self, blobs: Sequence[bytes]) -> bytes:
        """Returns one verdict byte per blob: 1 if `protocol.decode` accepts it, else 0 (all 0
        if no worker could be started, or it died: it is replaced at the next use)."""
        try:
            worker = self._borrow()
        except OSError as exc:
            log.warning("cannot start a verifying worker process: %s", exc)
            return bytes(len(blobs))
        try:
            verdicts = worker.check(blobs)
        except BaseException:
            # Interrupted between a batch and its answer: the worker's next answer would be
            # this batch's, so it must never be used again.
            self._discard(worker)
            raise
        if verdicts is None:
            log.warning("a verifying worker process died; starting another")
            self._discard(worker)
            return bytes(len(blobs))
        self._idle.put(worker)
        return verdicts

    def _discard(self, worker: _Worker) -> None:
        worker.close()
        with self._lock:
            self._started -= 1

    def pids(self) -> list[int]:
        idle: list[_Worker] = []
        with contextlib.suppress(queue.Empty):
            while True:
                idle.append(self._idle.get_nowait())
        for worker in idle:
            self._idle.put(worker)
        return [worker.process.pid for worker in idle]

    def _borrow(self) -> _Worker:
        wait = 0.0
        while True:
            try:
                return self._idle.get(timeout=wait) if wait else self._idle.get_nowait()
            except queue.Empty:
                pass
            with self._lock:
                start = self._started < THREADS
                if start:
                    self._started += 1
            if start:
                try:
                    return _Worker()
                except BaseException:
                    with self._lock:
                        self._started -= 1
                    raise
            # Every worker is busy: wait for one, and look again in a while in case the one
            # awaited died (its place is then free for a new one).
            wait = 1.0


_POOL = _Pool()
