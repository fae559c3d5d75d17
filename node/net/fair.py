"""Fair validation: each peer's gossip waits its own turn, not behind a flooder's.

Theory of operation. py-libp2p reads every peer's pubsub stream as fast as the bytes come, and
starts a task per message that waits on one semaphore (10 validations at once), first come first
served, with no bound on how many wait. A peer that sends messages faster than the node can
judge them therefore puts its whole backlog ahead of everyone else's: in the 1,000,000-record
flood benchmark, an honest record published 190 s into the flood waited 49 s behind the flood's
messages. And the waiting messages (up to 1 MiB each) are held in memory with no limit.

`FairGate` stands in front of that semaphore (node/net/host.py wraps `push_msg` with it):
- At most `limit` messages are judged at once (py-libp2p's semaphore then never queues).
- The others wait in one queue per forwarding peer, and a freed slot goes to the peers in
  turn (round robin, one message each): a peer with one message waits at most one message of
  each other peer's, whatever their backlogs.
- A peer may have at most `per_peer` messages waiting; and all peers together `total`. A
  message past either bound is dropped before it is judged (gossip may lose messages; sync
  brings what was lost): past `per_peer` the newcomer; past `total` the oldest waiting message
  of the peer with the most waiting, so that a flooder's backlog gives way, not others'.
- The node's own messages (published locally) pass straight through.

No time is involved: the gate orders and bounds, it does not pace.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

# py-libp2p's MAX_CONCURRENT_VALIDATORS.
LIMIT = 10
# A message waiting is a task and its bytes (a batch of up to 1 MiB, ~128 KiB from our nodes).
PER_PEER = 256
TOTAL = 1024


class Dropped(Exception):
    """The message was dropped before it was judged: its peer, or all, had too many waiting."""


@dataclass(eq=False)
class _Waiter:
    peer: str
    event: trio.Event = field(default_factory=trio.Event)
    granted: bool = False


@dataclass
class FairGate:
    """See the module's theory of operation."""

    limit: int = LIMIT
    per_peer: int = PER_PEER
    total: int = TOTAL
    running: int = 0
    waiting: int = 0
    dropped: int = 0
    _queues: dict[str, deque[_Waiter]] = field(default_factory=dict)

    @asynccontextmanager
    async def turn(self, peer: str) -> AsyncIterator[None]:
        """Waits for `peer`'s turn to have a message judged, and holds the slot meanwhile.

        Raises:
            Dropped: the message is not to be judged (too many waiting).
        """
        if self.running < self.limit and not self._queues:
            self.running += 1
        else:
            await self._wait(peer)
        try:
            yield
        finally:
            self._release()

    async def _wait(self, peer: str) -> None:
        queue = self._queues.get(peer)
        if queue is not None and len(queue) >= self.per_peer:
            self.dropped += 1
            raise Dropped(f"{peer} has {len(queue)} messages waiting")
        if self.waiting >= self.total:
            self._push_out()
        waiter = _Waiter(peer)
        self._queues.setdefault(peer, deque()).append(waiter)
        self.waiting += 1
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self._release()  # the slot came with the cancellation: pass it on
            else:
                self._forget(waiter)
            raise
        if not waiter.granted:
            raise Dropped(f"{peer}'s message gave way to others")

    def _push_out(self) -> None:
        """Drops the oldest waiting message of the peer with the most waiting."""
        peer = max(self._queues, key=lambda p: len(self._queues[p]))
        waiter = self._queues[peer][0]
        self._forget(waiter)
        self.dropped += 1
        waiter.event.set()

    def _forget(self, waiter: _Waiter) -> None:
        queue = self._queues.get(waiter.peer)
        if queue is None or waiter not in queue:
            return
        queue.remove(waiter)
        self.waiting -= 1
        if not queue:
            del self._queues[waiter.peer]

    def _release(self) -> None:
        """A slot is free: it goes to the next peer in turn, or back to the pool."""
        if not self._queues:
            self.running -= 1
            return
        peer = next(iter(self._queues))
        queue = self._queues.pop(peer)
        waiter = queue.popleft()
        if queue:
            self._queues[peer] = queue  # to the back of the line
        self.waiting -= 1
        waiter.granted = True
        waiter.event.set()
