"""The clock of the network's cores: calls a core's `tick` at the times the core asks for.

A core says when it next has work (`next_wakeup(now)`, on the same clock as `now`); the ticker
sleeps until then, or until poked because an input changed what is due (a sync finished, a
peer connected), ticks the core and hands the actions to `apply`. It is the only place where
the network's decisions meet time, so a test runs it under `trio.testing.MockClock` with a
clock of `T0 + trio.current_time()` and sees hours of bans and backoff pass in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import trio

A = TypeVar("A")

# However soon a core asks to be ticked again, the ticker waits at least this long, so that a
# core that keeps asking for "now" (a bug) cannot spin the event loop.
MIN_STEP = 0.001


class Ticker(Generic[A]):
    """Ticks a core whenever it asks to be, or is poked.

    Args:
        tick: the core's `tick(now)`, which returns actions.
        wakeup: the core's `next_wakeup(now)`: when to tick next (inf: only when poked).
        apply: performs a tick's actions.
        clock: the time, on the scale of `now` (wall time for the peer book, whose bans outlive
            the process; trio's clock for the sync plan).
    """

    def __init__(
        self,
        tick: Callable[[float], Sequence[A]],
        wakeup: Callable[[float], float],
        apply: Callable[[Sequence[A]], None],
        clock: Callable[[], float],
    ) -> None:
        self._tick = tick
        self._wakeup = wakeup
        self._apply = apply
        self._clock = clock
        self._poked = trio.Event()

    def poke(self) -> None:
        """Asks for a tick now: an input may have changed what is due."""
        self._poked.set()

    async def run(self) -> None:
        """Ticks forever (until cancelled)."""
        while True:
            self._poked = trio.Event()
            self._apply(self._tick(self._clock()))
            delay = self._wakeup(self._clock()) - self._clock()
            with trio.move_on_after(max(MIN_STEP, delay)):
                await self._poked.wait()
