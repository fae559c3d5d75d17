"""Decoding, signature and clock checks of record batches, spread over worker threads.

libsodium releases the GIL while it verifies a signature, so a batch split over a few threads
uses every core while the event loop goes on with the network. Gossip and sync both use this.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import trio

from protocol import ProtocolError, Record
from protocol import decode as decode_record
from protocol.validate import check

THREADS = max(1, min(4, os.cpu_count() or 1))
# Below this many records per thread, splitting costs more than it saves.
SPLIT_FROM = 32


def limiter() -> trio.CapacityLimiter:
    """Returns a limiter that lets a node use THREADS verifying threads at once."""
    return trio.CapacityLimiter(THREADS)


async def decode_all(
    blobs: Sequence[bytes], limit: trio.CapacityLimiter, *, now: float
) -> tuple[list[Record], list[ProtocolError]]:
    """Decodes, verifies and clock-checks `blobs` (`validate.check` against `now`).

    Returns:
        The records that passed, in order, and the errors of those that did not.
    """
    step = max(SPLIT_FROM, -(-len(blobs) // THREADS))
    chunks = [blobs[i : i + step] for i in range(0, len(blobs), step)]
    results: list[tuple[list[Record], list[ProtocolError]]] = [([], [])] * len(chunks)

    async def work(index: int) -> None:
        results[index] = await trio.to_thread.run_sync(_decode, chunks[index], now, limiter=limit)

    async with trio.open_nursery() as nursery:
        for index in range(len(chunks)):
            nursery.start_soon(work, index)
    return [r for ok, _ in results for r in ok], [e for _, bad in results for e in bad]


def _decode(blobs: Sequence[bytes], now: float) -> tuple[list[Record], list[ProtocolError]]:
    records: list[Record] = []
    errors: list[ProtocolError] = []
    for blob in blobs:
        try:
            record = decode_record(blob)
            check(record, now=now)
            records.append(record)
        except ProtocolError as exc:
            errors.append(exc)
    return records, errors
