"""Many timeouts on one event-loop timer: the queue's waiters and the worker link's requests.

Every request has a deadline in the admission queue and another at the worker, and
nearly all of them are met. With uvloop a ``call_later`` and its ``cancel`` cost a few
microseconds each (a libuv timer started, stopped and closed), so per request that is
a noticeable share of the runtime's CPU. Here a deadline is a push onto a heap and one
timer is armed for the earliest; an entry that settled before its deadline is skipped
when it surfaces (or dropped when settled entries pile up), never cancelled one by one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from typing import Protocol


class Expiring(Protocol):
    """What a deadline is kept for: still ``pending`` (not settled), and ``expire()``."""

    @property
    def pending(self) -> bool: ...

    def expire(self) -> None: ...


class Deadlines:
    """Deadlines in one event loop (loop.time() seconds), each expiring its entry once."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._heap: list[tuple[float, int, Expiring]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = math.inf

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, when: float, entry: Expiring, live: int) -> None:
        """``entry.expire()`` at ``when`` unless it settled by then. ``live``: how many
        entries are pending now, so that settled ones do not pile up past a few times it."""
        heap = self._heap
        heapq.heappush(heap, (when, next(self._seq), entry))
        if when < self._armed_at:
            self._arm(when)
        elif len(heap) > 4 * live + 64:
            self._prune()

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_at = when
        self._timer = self.loop.call_at(when, self._fire)

    def _prune(self) -> None:
        heap = [item for item in self._heap if item[2].pending]
        heapq.heapify(heap)
        self._heap = heap

    def _fire(self) -> None:
        self._timer = None
        self._armed_at = math.inf
        now = self.loop.time()
        while self._heap and (self._heap[0][0] <= now or not self._heap[0][2].pending):
            entry = heapq.heappop(self._heap)[2]
            if entry.pending:
                entry.expire()  # may add deadlines: the heap is read afresh each turn
        if self._heap and self._heap[0][0] < self._armed_at:
            self._arm(self._heap[0][0])

    def close(self) -> None:
        """Forget every deadline (their owner is gone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_at = math.inf
        self._heap.clear()
