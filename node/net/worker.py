"""A verifying worker process: `python -m node.net.worker`, started by node/net/verify.py.

It reads batches of record envelopes on stdin and answers, for each batch, one byte per
envelope on stdout: 1 if `protocol.decode` accepts it whole (canonical form, fields, signature),
0 if not. The process that sent the batch rebuilds the accepted records without checking them
again (`protocol.envelope.rebuild`) and decodes the others itself, which raises their errors.

Frames, both ways: a 4-byte little-endian length, then that many bytes; a batch is a msgpack
array of the envelopes. The module imports `protocol` and nothing of the node (no trio, no
libp2p, no web3), so a worker starts in a fraction of a second; and it ends when its parent
does, however the parent ends, because the parent's end closes its stdin. It runs at a lower
scheduling priority than the node (NICE), so that the node's event loop gets a core first.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from typing import IO

import msgpack

from protocol.envelope import accepted

HEADER = struct.Struct("<I")
# How much lower than its parent's a worker's scheduling priority is (its nice value added). A
# worker is bulk work: a batch takes milliseconds to seconds, and no one waits on one record of
# it; the node's event loop answers peers and the API, and each of its steps is a few ms. On a
# busy machine, the event loop's thread had the GIL and work to do but waited on the kernel's
# run queue behind the verifying workers (of this node and of its peers) for 100-200 ms at a
# time: this gives the loop's wake-ups the core first. On an idle machine nothing changes: the
# workers still have every core the loop leaves. Measured with `scripts/bench/network.py lag`.
NICE = 5


def read_frame(stream: IO[bytes]) -> bytes | None:
    """Returns the next frame's payload, or None at the end of the stream (or a cut frame)."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    payload = stream.read(size)
    return payload if len(payload) == size else None


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(HEADER.pack(len(payload)) + payload)
    stream.flush()


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """Answers batches until `requests` ends."""
    while (payload := read_frame(requests)) is not None:
        # The batch comes from the parent process, which packed it: no limits needed here;
        # each envelope in it is what a peer sent, and `accepted` bounds it.
        blobs = msgpack.unpackb(payload, use_list=False)
        write_frame(answers, bytes(accepted(blob) for blob in blobs))


def lower_priority() -> None:
    """Lowers this process's scheduling priority by NICE (where the system allows it)."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: no os.nice (Windows)
        os.nice(NICE)


if __name__ == "__main__":
    lower_priority()
    # The parent ended or was interrupted: so does the worker, quietly.
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        serve(sys.stdin.buffer, sys.stdout.buffer)
