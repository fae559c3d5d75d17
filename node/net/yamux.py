"""yamux receive windows credited as go-yamux credits them: once half the window was read.

py-libp2p 0.8.1's `YamuxStream` sends a WINDOW_UPDATE frame after nearly every read, however
small: a read that leaves the window short of its target by less than the batching threshold
goes out as a "partial slack" update, and so does every read with `PY_YAMUX_RELEASE_ON_READ`
on (its default). A pubsub message is read in three or more reads (its varint length a byte at
a time, then its body), so each message a node received cost it several frames back, each
encrypted by Noise and written by a system call, and cost the sender as many to decrypt: 1,460
WINDOW_UPDATE frames of 1,999 frames in all for 100 single-record gossip messages between two
nodes, and 38% of the busy samples of the best-connected node of the 10-node latency benchmark
(py-spy; docs/BENCHMARKS.md, issue 17).

go-yamux (`sendWindowUpdate`) sends an update only once the credit owed reaches half the
window. That is what `credit` does; the rest (the target's auto-tuning, the lock, the frame)
is py-libp2p's own code. It cannot stall a sender: a sender out of window has sent a whole
window, so either the reader has read half of it (and sends an update) or more than half is
buffered, and the reader is not waiting for data.

`install` puts it in place for the process (py-libp2p creates its streams itself, so there is
no constructor to pass it to); node/net/host.py calls it when it builds a host.
"""

from __future__ import annotations

from libp2p.stream_muxer.yamux.yamux import YamuxStream


async def credit(self: YamuxStream, *, bytes_read: int = 0) -> None:
    """Sends a WINDOW_UPDATE once the credit owed is half the window or more."""
    total = 0
    async with self.window_lock:
        self._pending_recv_release += bytes_read
        buffered = len(self.conn.stream_buffers.get(self.stream_id, b""))
        owed = self.target_recv_window - (self.recv_window + buffered)
        if owed > 0 and owed >= self._grow_threshold():
            total = self._grow_to_delta(buffered)
            total += self._apply_autotune_epoch(buffered)
            self._pending_recv_release = 0
    if total > 0:
        await self.send_window_update(total, skip_lock=True)


def install() -> None:
    """Makes every yamux stream of this process credit its window with `credit`."""
    YamuxStream._auto_tune_and_send_window_update = credit  # type: ignore[method-assign]
