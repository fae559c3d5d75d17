"""A trio instrument that times every task step on the event loop, for the lag benchmark.

A task step is the run of one task between two of its waits: nothing else runs on the loop
meanwhile, so the longest steps are the event loop's stalls. For each step it takes the wall
time and the loop thread's CPU time (their difference is time the thread waited: for the GIL,
or for a core; `network.py lag` tells the two apart per tick, from the kernel's run-queue
figure); it keeps the longest steps with the task's name and where the task resumed, and
a histogram of step lengths. `network.py lag --steps FILE` installs it in the serving node.
"""

from __future__ import annotations

import heapq
import time
from typing import Any

import trio

# Steps at least this long are kept with their task and place (the longest KEEP of them).
KEEP = 40
BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100)


def _where(task: trio.lowlevel.Task) -> str:
    """Returns the innermost frame a task is suspended in (file:line function)."""
    coro: Any = task.coro
    frame = None
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    if frame is None:
        return "?"
    code = frame.f_code
    return f"{code.co_filename.rsplit('/', 3)[-1]}:{frame.f_lineno} {code.co_name}"


class Steps(trio.abc.Instrument):
    """Times task steps; `summary()` returns the longest ones and a histogram."""

    def __init__(self) -> None:
        self._wall = 0.0
        self._cpu = 0.0
        self._from = ""
        self.longest: list[tuple[float, float, str, str, str]] = []
        self.histogram = [0] * (len(BUCKETS_MS) + 1)
        self.count = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._from = _where(task)
        self._cpu = time.thread_time()
        self._wall = time.perf_counter()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        wall = time.perf_counter() - self._wall
        cpu = time.thread_time() - self._cpu
        if not self._wall:
            return  # the step that added the instrument: it was not timed
        self.count += 1
        ms = wall * 1000
        bucket = 0
        while bucket < len(BUCKETS_MS) and ms >= BUCKETS_MS[bucket]:
            bucket += 1
        self.histogram[bucket] += 1
        if ms >= 5:
            entry = (wall, cpu, task.name, self._from, _where(task))
            if len(self.longest) < KEEP:
                heapq.heappush(self.longest, entry)
            elif entry > self.longest[0]:
                heapq.heapreplace(self.longest, entry)

    def summary(self) -> dict[str, Any]:
        labels = [f"<{b}ms" for b in BUCKETS_MS] + [f">={BUCKETS_MS[-1]}ms"]
        return {
            "steps": self.count,
            "histogram": dict(zip(labels, self.histogram, strict=True)),
            "longest": [
                {
                    "wall_ms": round(wall * 1000, 1),
                    "cpu_ms": round(cpu * 1000, 1),
                    "task": name,
                    "from": began,
                    "to": ended,
                }
                for wall, cpu, name, began, ended in sorted(self.longest, reverse=True)
            ],
        }
