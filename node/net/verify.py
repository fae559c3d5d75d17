"""Decoding, signature and clock checks of record batches, with signatures checked in parallel.

Gossip and sync both use this. A signature check costs about 45 us of libsodium, several times
the Python work of decoding a record, so it is what runs in parallel:

- A small batch is split over a few threads. libsodium releases the GIL while it verifies, but
  a thread must take the GIL back after every signature, and while the event loop or the
  store's writer runs Python it waits up to the interpreter's switch interval (5 ms) for it.
- A large batch (POOL_FROM records or more) has its signatures checked in worker processes
  (`protocol.envelope.signature_valid`), which share no GIL, while a thread here decodes the
  same bytes without verifying. A blob whose signature a worker rejected is decoded again
  here with verification, which raises the very error `protocol.decode` raises for it; so
  the result, errors included, is what decoding every blob with verification gives.
  Measured with `scripts/bench/network.py throughput` (docs/BENCHMARKS.md).

The worker processes are started on first use and shared by every node of the process (like
trio's thread cache). Each ends when that process ends, however it ends: one killed by a signal
runs no exit handlers, and its workers would otherwise wait for work forever. If a worker dies,
the pool is replaced; the batch at hand is decoded on threads.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait

import trio

from protocol import ProtocolError, Record
from protocol import decode as decode_record
from protocol.envelope import signature_valid
from protocol.validate import check

THREADS = max(1, min(4, os.cpu_count() or 1))
# Below this many records per thread, splitting costs more than it saves.
SPLIT_FROM = 32
# From this many records, a batch's signatures are checked in worker processes: below it, the
# cost of sending the blobs there (about 2 ms a round trip) outweighs the GIL contention saved.
POOL_FROM = 128

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


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
    if len(blobs) >= POOL_FROM and THREADS > 1:
        try:
            return await _decode_pooled(blobs, limit, now)
        except BrokenProcessPool:
            _forget_pool()
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
    pool = _worker_pool()
    step = -(-len(blobs) // THREADS)
    futures = [
        pool.submit(_signatures, list(blobs[i : i + step])) for i in range(0, len(blobs), step)
    ]
    decoded = await trio.to_thread.run_sync(_decode_unverified, blobs, limiter=limit)
    verdicts = [ok for future in futures for ok in await _result(future)]
    records: list[Record] = []
    errors: list[ProtocolError] = []
    for blob, outcome, ok in zip(blobs, decoded, verdicts, strict=True):
        try:
            if isinstance(outcome, ProtocolError):
                raise outcome
            record = outcome if ok else decode_record(blob)
            if now is not None:
                check(record, now=now)
            records.append(record)
        except ProtocolError as exc:
            errors.append(exc)
    return records, errors


def _decode_unverified(blobs: Sequence[bytes]) -> list[Record | ProtocolError]:
    out: list[Record | ProtocolError] = []
    for blob in blobs:
        try:
            # The signature of these very bytes is checked by a worker process meanwhile.
            out.append(decode_record(blob, verify=False))
        except ProtocolError as exc:
            out.append(exc)
    return out


def _signatures(blobs: list[bytes]) -> list[bool]:
    """Runs in a worker process: whether each blob's signature verifies."""
    return [signature_valid(blob) for blob in blobs]


async def _result(future: Future[list[bool]]) -> list[bool]:
    """Waits for a worker process's answer without holding a thread."""
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()

    def wake(_: object) -> None:
        # If the event loop ended meanwhile, nobody waits for this answer any more.
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(done.set)

    future.add_done_callback(wake)
    await done.wait()
    return future.result()


def _worker_pool() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # Spawned, not forked: a fork of a process running trio and libp2p's threads may
            # inherit a lock some other thread held.
            _pool = ProcessPoolExecutor(
                THREADS,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_end_with_parent,
            )
        return _pool


def _forget_pool() -> None:
    global _pool
    with _pool_lock:
        broken, _pool = _pool, None
    if broken is not None:
        broken.shutdown(wait=False, cancel_futures=True)


def _end_with_parent() -> None:
    """Runs first in each worker process: ends it as soon as the process that started it ends."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        wait([sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()
