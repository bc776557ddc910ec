"""Adaptive batching: concurrent requests for one replica become one ``predict_batch`` call.

A predictor whose config.json declares ``"batching": {"max_batch_size": N,
"max_latency_ms": T}`` gets a ``Batcher``: requests that took a slot on the replica
(admission.py) wait here, are sent to the worker together as one ``predict_batch`` frame
(``modelport/worker/protocol.py``), and each caller gets its own item's answer back.

The policy, adaptive to the worker's load:

- **idle worker** (no batch of this replica in flight): the requests waiting are sent at
  the next turn of the event loop, so a lone request does not wait at all, and requests
  that arrived in the same instant still go together. One exception, for callers that
  come straight back: when the last batch ended less than its own run time ago, its
  callers are probably sending their next requests right now (a client pool, a gateway
  answering them one by one), so the batcher holds for up to as many requests as that
  batch had, at most ``min(max_latency_ms, that batch's run time)``. Without this hold a
  model with a fixed cost per call is fed the first returning request alone, and the
  rest queue behind that call: batches stay small and every caller waits longer;
- **busy worker**: requests accumulate while the running batch runs and go as one batch
  the moment it finishes, which is when the worker could start them anyway;
- at **max_batch_size** waiting, a batch goes at once, whatever the worker is doing;
- **max_latency_ms** is the hard bound: no request waits longer than that for its batch
  to form; when it runs out the waiting requests go even to a busy worker, which queues
  them behind the running batch and merges the batches queued there into one call when
  it frees up (``modelport/worker/shim.py``), so a model whose fixed cost per call is
  above max_latency_ms is not flooded with small calls.

Each caller keeps its own timeout and cancellation: one that gives up while waiting
leaves the group; one that gives up after its batch left cancels only its own item in
the worker. An item the model fails (an Exception in ``predict_batch``'s list) fails
only its caller.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelport.errors import Kind, ModelportError
from modelport.worker.values import BatchItem, Result, Value
from services.runtime.dataplane.deadlines import Deadlines
from services.runtime.worker.errors import timeout_error

log = logging.getLogger(__name__)

#: the link's own bound on a batch, past the longest caller timeout (callers time out first)
LINK_GRACE_S = 1.0


@dataclass(frozen=True)
class BatchPolicy:
    """config.json ``batching``, as the batcher uses it."""

    max_batch_size: int
    max_latency_s: float

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> BatchPolicy | None:
        """The policy when ``config`` declares batching (validated at upload), else None."""
        raw = (config or {}).get("batching")
        if not isinstance(raw, dict):
            return None
        size = raw.get("max_batch_size")
        latency = raw.get("max_latency_ms", 10.0)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            return None
        if not isinstance(latency, (int, float)) or not math.isfinite(latency) or latency <= 0:
            latency = 10.0
        return cls(size, float(latency) / 1000.0)


def admission_slots(config: dict[str, Any] | None, max_concurrency: int) -> int:
    """Slots a replica takes in admission (admission.py): a batching replica needs room for a
    batch running and the next one forming, or batches could never fill up."""
    policy = BatchPolicy.from_config(config)
    if policy is None:
        return max_concurrency
    return max(max_concurrency, 2 * policy.max_batch_size)


@dataclass(slots=True, eq=False)
class _Item:
    """One caller's request, answered by calling ``on_end`` once (``Batcher.call``)."""

    batcher: Batcher
    id: str
    inputs: dict[str, Value]
    timeout_s: float | None
    tensor_outputs: bool
    arrived: float
    on_end: Callable[[Result | ModelportError], None]
    deadline: float | None = field(init=False)
    state: str = "waiting"  # waiting | sent | ended
    link: Any = None
    settled: bool = False  # on_end was called (or cancel() made sure it never will be)

    def __post_init__(self) -> None:
        self.deadline = None if self.timeout_s is None else self.arrived + self.timeout_s

    @property
    def done(self) -> bool:
        return self.settled

    @property
    def pending(self) -> bool:
        """Not answered yet (``Deadlines`` skips it otherwise)."""
        return not self.settled

    def settle(self, outcome: Result | ModelportError) -> None:
        """Its answer or error, once."""
        if self.settled:
            return
        self.settled = True
        try:
            self.on_end(outcome)
        except Exception:  # the caller's bug: the batch goes on for the others
            log.exception("%s: handling the answer to %s failed", self.batcher.name, self.id)

    def expire(self) -> None:
        """Its timeout ran out (``Deadlines``)."""
        if not self.done:
            self.settle(timeout_error(self.id, self.timeout_s or 0.0))
            self.batcher._leave(self)

    def cancel(self) -> None:
        """The caller went away: no answer; it leaves its batch (or the worker drops it)."""
        if not self.done:
            self.settled = True
            self.batcher._leave(self)


class Batcher:
    """The requests of one replica, grouped into batches (see the module docstring).

    ``link_of()`` gives the replica's current WorkerLink (or raises when it is not ready),
    asked once per batch, so a restarted worker is picked up. ``on_batch(size)`` hears of
    each batch sent (metrics).
    """

    def __init__(self, policy: BatchPolicy, link_of: Callable[[], Any], name: str = "replica",
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.policy = policy
        self.name = name
        self._link_of = link_of
        self._on_batch = on_batch
        self._waiting: collections.deque[_Item] = collections.deque()
        self._running = 0  # batches sent whose items have not all ended
        self._soon: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed: ModelportError | None = None
        self._deadlines: Deadlines | None = None  # the items' timeouts, on one timer
        #: the last batch: its size and run time, and when the worker went idle after it
        #: (the idle-worker hold, see the module docstring)
        self._last_size = 0
        self._last_run_s = 0.0
        self._idle_since = 0.0
        #: how many batches of each size were sent (tests, debugging)
        self.sizes: collections.Counter[int] = collections.Counter()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return self._running

    # ------------------------------------------------------------------ callers

    def call(self, request_id: str, inputs: dict[str, Value], timeout_s: float | None,
             tensor_outputs: bool, on_end: Callable[[Result | ModelportError], None]
             ) -> _Item:
        """This request joins a batch: ``on_end(result or error)`` once, unless the
        returned handle's ``cancel()`` came first (``dataplane/calls.py``). No task,
        timeout context or future per request."""
        if self._closed is not None:
            raise self._closed
        loop = asyncio.get_running_loop()
        item = _Item(self, request_id, inputs, timeout_s, tensor_outputs, loop.time(), on_end)
        if timeout_s is not None:
            deadlines = self._deadlines
            if deadlines is None or deadlines.loop is not loop:
                deadlines = self._deadlines = Deadlines(loop)
            deadlines.add(item.arrived + timeout_s, item, len(self._waiting) + 1)
        self._waiting.append(item)
        self._poke()
        return item

    def cancel(self, request_id: str) -> bool:
        """Fail a request still waiting for its batch; False when it is not waiting here
        (it was sent: cancel it on the worker link)."""
        for item in self._waiting:
            if item.id == request_id:
                self._waiting.remove(item)
                item.state = "ended"
                item.settle(ModelportError(Kind.UNAVAILABLE, "request.cancelled",
                                           "the request was cancelled"))
                self._poke()
                return True
        return False

    def close(self, error: ModelportError) -> None:
        """No more batches: waiting requests fail with ``error``, as do later ones."""
        self._closed = error
        waiting, self._waiting = list(self._waiting), collections.deque()
        for item in waiting:
            item.state = "ended"
            item.settle(error)
        self._stop_timers()
        if self._deadlines is not None:
            self._deadlines.close()

    def _leave(self, item: _Item) -> None:
        """The caller is done with ``item`` (answered, timed out or cancelled)."""
        if item.state == "waiting":
            with contextlib.suppress(ValueError):
                self._waiting.remove(item)
            item.state = "ended"
            self._poke()
        elif item.state == "sent" and item.link is not None and not item.link.closed:
            item.state = "ended"
            self._background(item.link.cancel(item.id))

    # ------------------------------------------------------------------ forming batches

    def _poke(self) -> None:
        """Send what the policy says should go now; arm the timer for the rest."""
        while len(self._waiting) >= self.policy.max_batch_size:
            self._send_batch()
        if not self._waiting:
            self._stop_timers()
            return
        loop = asyncio.get_running_loop()
        if self._running == 0:
            hold = self._idle_hold_s(loop.time())
            if not hold:  # idle: go at the next turn (joining same-instant arrivals)
                if self._soon is None:
                    self._soon = loop.call_soon(self._send_when_idle)
                return
            due = self._waiting[0].arrived + hold
        else:
            due = self._waiting[0].arrived + self.policy.max_latency_s
        if self._timer is None or self._timer_at != due:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = due
            self._timer = loop.call_at(due, self._latency_ran_out)

    def _idle_hold_s(self, now: float) -> float:
        """How long an idle worker waits for the last batch's callers to come back
        (0: send now): only while fewer have come back than that batch held, and only
        when it ended less than its own run time ago."""
        if len(self._waiting) >= self._last_size or now - self._idle_since > self._last_run_s:
            return 0.0
        return min(self.policy.max_latency_s, self._last_run_s)

    def _send_when_idle(self) -> None:
        self._soon = None
        if self._waiting and self._running == 0:
            self._send_batch()
        self._poke()

    def _latency_ran_out(self) -> None:
        self._timer = None
        if self._waiting:
            self._send_batch()
        self._poke()

    def _stop_timers(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None

    def _send_batch(self) -> None:
        """The oldest waiting requests (at most max_batch_size) leave as one batch."""
        n = min(len(self._waiting), self.policy.max_batch_size)
        batch = [self._waiting.popleft() for _ in range(n)]
        for item in batch:
            item.state = "sent"
        self._running += 1
        self._background(self._run(batch))

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Item]) -> None:
        try:
            await self._exchange(batch)
        except Exception as exc:  # our bug: answer every caller, keep batching alive
            log.exception("%s: batch of %d failed", self.name, len(batch))
            error = ModelportError(Kind.INTERNAL, "batch.internal",
                                   f"batching failed: {type(exc).__name__}: {exc}")
            for item in batch:
                item.state = "ended"
                item.settle(error)
        finally:
            self._running -= 1
            if self._running == 0:
                self._idle_since = asyncio.get_running_loop().time()
            if self._closed is None:
                self._poke()

    async def _exchange(self, batch: list[_Item]) -> None:
        batch = [item for item in batch if not item.done]  # callers that left
        if not batch:
            return
        try:
            link = self._link_of()
        except ModelportError as err:  # the replica died or was stopped meanwhile
            for item in batch:
                item.state = "ended"
                item.settle(err)
            return
        for item in batch:
            item.link = link
        self.sizes[len(batch)] += 1
        if self._on_batch is not None:
            self._on_batch(len(batch))
        loop = asyncio.get_running_loop()
        now = loop.time()
        items = [BatchItem(item.id, item.inputs, None if item.deadline is None else
                           round(max(0.001, item.deadline - now), 3), item.tensor_outputs)
                 for item in batch]
        left = [it.timeout_s for it in items]
        timeout = None if None in left else max(left) + LINK_GRACE_S

        def answer(i: int, outcome: Result | ModelportError) -> None:
            item = batch[i]
            item.state = "ended"
            item.settle(outcome)

        await link.predict_batch(items, timeout, on_outcome=answer)
        self._last_size, self._last_run_s = len(batch), loop.time() - now
