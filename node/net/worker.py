"""A verifying worker process: `python -m node.net.worker`, started by node/net/verify.py.

It reads batches of record envelopes on stdin and answers, for each batch, one byte per
envelope on stdout: 1 if `protocol.decode` accepts it whole (canonical form, fields, signature),
0 if not. The process that sent the batch rebuilds the accepted records without checking them
again (`protocol.envelope.rebuild`) and decodes the others itself, which raises their errors.

Frames, both ways: a 4-byte little-endian length, then that many bytes; a batch is a msgpack
array of the envelopes. The module imports `protocol` and nothing of the node (no trio, no
libp2p, no web3), so a worker starts in a fraction of a second; and it ends when its parent
does, however the parent ends, because the parent's end closes its stdin.
"""

from __future__ import annotations

import contextlib
import struct
import sys
from typing import IO

import msgpack

from protocol.envelope import accepted

HEADER = struct.Struct("<I")


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


if __name__ == "__main__":
    # The parent ended or was interrupted: so does the worker, quietly.
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        serve(sys.stdin.buffer, sys.stdout.buffer)
