"""Admission to replicas: a concurrency limit per replica and a bounded FIFO queue per service.

A request takes a slot on the least-loaded ready replica of its version. When every ready
replica is at its limit (``max_concurrency``, default 1: most models are not thread-safe),
it waits in its service's queue, first come first served. A full queue is an immediate
429 (``queue.full``) with a Retry-After estimated from how fast slots free up; a request
still queued when its timeout runs out is a 504 (``queue.timeout``). Every request gets
one of: a replica, 429, 503 or 504 - none waits forever, none is dropped.

A replica whose model answers in under ``PIPELINE_BELOW_S`` (a moving average of the
worker's own time, seen on unary relayed requests) takes more unary requests than its
limit: the extra ones wait in the worker's socket, so the worker starts each the moment
the one before ends instead of after a round trip through this process (for a fast model
that round trip, not the model, bounds a replica's throughput). How many: as many as
fit ``PIPELINE_BUDGET_S`` of its calls, at least one, at most ``PIPELINE_MAX``; so a
request waits there at most about that budget (or one short call) longer than it would
have here. Streams, batching replicas, slower models and requests of
``PIPELINE_MAX_BYTES`` or more get none (large inputs would only wait in buffers). If
the worker dies, the ones that had not started yet are sent again
(``data_socket._Relay``), so pipelining never loses a request.

A replica can be drained: it takes no new requests and the ones it has finish (rolling
updates and scale-down stop replicas this way). A request whose version has no replica
left here fails with ``replica.none``, which the gateway answers by routing it again.

The load seen here (in flight, queued, the last request's time) is what the controller's
autoscaler reads through ``ListReplicas``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from modelport.errors import Kind, ModelportError
from services.runtime.dataplane.deadlines import Deadlines

log = logging.getLogger(__name__)

#: requests of one service that may wait for a replica on this runtime (spec.queue_size)
DEFAULT_QUEUE_SIZE = 64
#: replica states in which a waiting request keeps waiting for it
_COMING_STATES = ("starting", "restarting", "pending", "unready")
#: how often waiters are re-checked against replica state changes (start, death)
POLL_S = 0.05
#: a replica whose model answers faster than this on average takes requests queued in
#: its worker behind the running one (pipelining) ...
PIPELINE_BELOW_S = 0.005
#: ... until its average passes this (the gap keeps it from flapping)
PIPELINE_ABOVE_S = 0.010
#: queued there: as many as this much of its calls' time, at least 1, at most PIPELINE_MAX
PIPELINE_BUDGET_S = 0.002
PIPELINE_MAX = 8
#: a request with this many bytes of inputs or more is never pipelined
PIPELINE_MAX_BYTES = 64 * 1024
#: weight of the newest call in that average
_RUN_WEIGHT = 0.2


class Ticket:
    """A request in a service's queue that is called back, not awaited (the data socket's
    relay, which has no task to await with): exactly one of ``granted(replica_id)`` (the
    slot is taken for it) or ``refused(error)`` (the queue timed out, or no replica will
    ever take it), called synchronously. ``cancel()`` takes it out of the queue."""

    __slots__ = ("admission", "service", "version", "queued", "settled", "began")

    #: may take a fast replica's pipelined slots (a unary request, see the module's doc)
    pipelined = True

    def __init__(self, admission: Admission, service: str, version: int) -> None:
        self.admission = admission
        self.service = service
        self.version = version
        self.queued = False  # in its service's waiters (``Admission._leave`` takes it out)
        self.settled = False
        self.began = 0.0

    def granted(self, replica_id: str) -> None:
        raise NotImplementedError

    def refused(self, error: ModelportError) -> None:
        raise NotImplementedError

    @property
    def pending(self) -> bool:
        return not self.settled

    def grant(self, replica_id: str) -> None:
        self.settled = True
        self.granted(replica_id)

    def fail(self, error: ModelportError) -> None:
        self.settled = True
        self.refused(error)

    def expire(self) -> None:
        """Its time in the queue ran out (``Deadlines``)."""
        if self.settled:
            return
        self.settled = True
        adm = self.admission
        adm._leave(adm._service(self.service), self)
        self.refused(adm._timed_out(self.service, self.version, time.monotonic() - self.began))

    def cancel(self) -> None:
        """The caller went away while it waited."""
        if not self.settled:
            self.settled = True
            self.admission._leave(self.admission._service(self.service), self)


class _Waiter:
    """A request awaiting a slot (``Admission.queue``); its future gets a replica id, or
    None when its time ran out (``expire``, from the service's ``Deadlines``)."""

    __slots__ = ("version", "future", "queued", "began")

    pipelined = False

    def __init__(self, version: int, future: asyncio.Future[str | None]) -> None:
        self.version = version
        self.future = future
        self.queued = False
        self.began = 0.0

    @property
    def pending(self) -> bool:
        return not self.future.done()

    def grant(self, replica_id: str) -> None:
        self.future.set_result(replica_id)

    def fail(self, error: ModelportError) -> None:
        self.future.set_exception(error)

    def expire(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


@dataclass
class _Service:
    queue_size: int = DEFAULT_QUEUE_SIZE
    waiters: deque[_Waiter | Ticket] = field(default_factory=deque)
    #: waiters per version (a release stops looking once every waiting version is served)
    versions: Counter[int] = field(default_factory=Counter)
    #: the waiters' timeouts, on one timer
    deadlines: Deadlines | None = None
    last_request_at: float = 0.0
    rejected: int = 0
    #: moving average of how long a request holds a slot (for Retry-After)
    hold_s: float = 0.5


@dataclass(frozen=True)
class Load:
    service: str
    in_flight: int
    queued: int
    last_request_at: float
    rejected: int


class Admission:
    """Slots on replicas, and the queues of requests waiting for one."""

    def __init__(self, supervisor: Any, ready_wait_s: float = 60.0) -> None:
        self.supervisor = supervisor
        self.ready_wait_s = ready_wait_s
        #: requests each replica is working on (the metrics read it too)
        self.in_flight: Counter[str] = Counter()
        self._limits: dict[str, int] = {}
        self._draining: set[str] = set()
        self._services: dict[str, _Service] = {}
        self._taken_at: dict[tuple[str, int], float] = {}
        self._tick: asyncio.Task[None] | None = None
        self._stopping: dict[str, asyncio.Task[None]] = {}
        self._templates: dict[str, str] = {}
        self._seq = 0
        #: requests each fast replica takes beyond its limit (see the module's doc)
        self._pipelined: dict[str, int] = {}
        #: moving average of each replica's own call time (``observe_run``); a replica
        #: configured without pipelining (batching) has none
        self._run_s: dict[str, float] = {}

    # ------------------------------------------------------------------ configuration

    def configure(self, replica_id: str, service: str, max_concurrency: int = 0,
                  queue_size: int = 0, template: str = "", pipelining: bool = True) -> None:
        """A replica's slot count and its service's queue bound (the latest start wins).
        ``pipelining``: whether it may take a request queued in its worker once its calls
        prove short (not for batching replicas, whose slots already form batches)."""
        self._limits[replica_id] = max(1, max_concurrency or 1)
        self._pipelined.pop(replica_id, None)
        if pipelining:
            self._run_s[replica_id] = PIPELINE_ABOVE_S  # unknown: not until calls are seen
        else:
            self._run_s.pop(replica_id, None)
        self._templates[replica_id] = template
        self._service(service).queue_size = max(1, queue_size or DEFAULT_QUEUE_SIZE)

    def template(self, replica_id: str) -> str:
        return self._templates.get(replica_id, "")

    def limit(self, replica_id: str) -> int:
        return self._limits.get(replica_id, 1)

    def observe_run(self, replica_id: str, seconds: float) -> None:
        """How long the worker took for one unary call (its own ``duration_ms``):
        pipelining starts and stops on this average."""
        average = self._run_s.get(replica_id)
        if average is None:
            return
        average += _RUN_WEIGHT * (seconds - average)
        self._run_s[replica_id] = average
        if average > PIPELINE_ABOVE_S:
            self._pipelined.pop(replica_id, None)
        elif average < PIPELINE_BELOW_S or replica_id in self._pipelined:
            self._pipelined[replica_id] = max(1, min(PIPELINE_MAX, int(
                PIPELINE_BUDGET_S / max(average, 1e-6))))

    def hold_exclusive(self, replica_id: str) -> None:
        """A request that may run long (a stream) took a slot on this replica: nothing
        may queue behind it in the worker; its unary calls must prove short again."""
        if replica_id in self._run_s:
            self._run_s[replica_id] = max(self._run_s[replica_id], 2 * PIPELINE_ABOVE_S)
        self._pipelined.pop(replica_id, None)

    def pipelining(self, replica_id: str) -> int:
        """How many requests the replica takes beyond its limit now (0: none)."""
        return self._pipelined.get(replica_id, 0)

    def _service(self, name: str) -> _Service:
        state = self._services.get(name)
        if state is None:
            state = self._services[name] = _Service()
        return state

    # ------------------------------------------------------------------ draining

    def drain(self, replica_id: str) -> None:
        """No new requests for this replica; the queue moves on to the others."""
        self._draining.add(replica_id)
        self._dispatch_all()

    def is_draining(self, replica_id: str) -> bool:
        return replica_id in self._draining

    async def wait_idle(self, replica_id: str, timeout_s: float) -> bool:
        """Until the replica has no request in flight (True), or ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        while self.in_flight[replica_id] > 0:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True

    async def drain_and_stop(self, replica_id: str, drain_s: float) -> None:
        """Drain, wait for the requests in flight (at most ``drain_s``), then stop it."""
        self.drain(replica_id)
        try:
            await self.wait_idle(replica_id, drain_s)
            await self.supervisor.stop(replica_id)
        finally:
            self.forget(replica_id)

    def stop_later(self, replica_id: str, drain_s: float) -> None:
        """``drain_and_stop`` in the background (StopReplica answers at once)."""
        if replica_id in self._stopping:
            return
        task = asyncio.create_task(self.drain_and_stop(replica_id, drain_s),
                                   name=f"drain-{replica_id}")
        self._stopping[replica_id] = task
        task.add_done_callback(lambda _t: self._stopping.pop(replica_id, None))

    def forget(self, replica_id: str) -> None:
        """The replica is stopped: drop what is kept about it."""
        self._draining.discard(replica_id)
        self._limits.pop(replica_id, None)
        self._templates.pop(replica_id, None)
        self._pipelined.pop(replica_id, None)
        self._run_s.pop(replica_id, None)
        if not self.in_flight.get(replica_id):
            self.in_flight.pop(replica_id, None)

    # ------------------------------------------------------------------ acquire / release

    def _replicas(self, service: str, version: int) -> list[Any]:
        return [r for r in self.supervisor.live()
                if r.service == service and r.version == version and r.state != "stopped"
                and r.id not in self._draining]

    def _free(self, service: str, version: int, pipelined: bool = False) -> str | None:
        """The least-loaded ready replica with a slot free (the first such, on a tie);
        ``pipelined``: a fast replica's extra slots count (a unary relayed request)."""
        best: str | None = None
        best_load = 0
        in_flight, limits, draining = self.in_flight, self._limits, self._draining
        extra = self._pipelined if pipelined else {}
        for r in self.supervisor.live():  # one pass: this runs for every request
            if r.state != "ready" or r.version != version or r.service != service:
                continue
            rid = r.id
            if rid in draining:
                continue
            load = in_flight.get(rid, 0)
            limit = limits.get(rid, 1) + extra.get(rid, 0)
            if load < limit and (best is None or load < best_load):
                best, best_load = rid, load
        return best

    def _take(self, replica_id: str) -> str:
        self.in_flight[replica_id] += 1
        self._seq += 1
        return replica_id

    def try_acquire(self, service: str, version: int, pipelined: bool = False) -> str | None:
        """A slot taken now, or None when the request must queue (``acquire`` waits).
        ``pipelined``: a unary relayed request, which may take a fast replica's extra slots."""
        state = self._service(service)
        state.last_request_at = time.time()
        if state.versions.get(version):  # the ones queued for this version go first
            return None
        rid = self._free(service, version, pipelined)
        return self._take(rid) if rid is not None else None

    async def acquire(self, service: str, version: int, timeout_s: float | None) -> str:
        """A slot on a replica of ``service`` ``version``; release it with ``release``."""
        rid = self.try_acquire(service, version)
        if rid is not None:
            return rid
        return await self.queue(service, version, timeout_s)

    async def queue(self, service: str, version: int, timeout_s: float | None) -> str:
        """``acquire`` for a request that ``try_acquire`` could not place: it waits in its
        service's queue (or is refused: full, or no replica will ever take it)."""
        state = self._service(service)
        loop = self._deadlines(state).loop
        waiter = _Waiter(version, loop.create_future())
        self._join(state, service, version, timeout_s, waiter)
        # a deadline instead of asyncio.timeout + shield: queueing is the common path
        # under load, and a slot granted as the time runs out wins (the waiter is done)
        try:
            rid = await waiter.future
        except asyncio.CancelledError:
            if _granted(waiter.future):  # the caller went away holding a slot
                self.release(waiter.future.result(), service)  # type: ignore[arg-type]
            raise
        finally:
            if not waiter.future.done():
                waiter.future.cancel()
            self._leave(state, waiter)
        if rid is None:
            raise self._timed_out(service, version, time.monotonic() - waiter.began)
        return rid

    def enqueue(self, ticket: Ticket, timeout_s: float | None) -> None:
        """``queue`` for a caller that is called back (``Ticket``) instead of awaiting;
        raises what ``queue`` raises when the request cannot wait."""
        self._join(self._service(ticket.service), ticket.service, ticket.version, timeout_s,
                   ticket)

    def _join(self, state: _Service, service: str, version: int, timeout_s: float | None,
              waiter: _Waiter | Ticket) -> None:
        self._check_can_wait(service, version)
        if len(state.waiters) >= state.queue_size:
            state.rejected += 1
            retry = self._retry_after(service, version)
            raise ModelportError(
                Kind.EXHAUSTED, "queue.full",
                f"service {service!r} has {len(state.waiters)} requests waiting for a free "
                f"replica, its queue limit", "retry after the Retry-After seconds, or raise "
                "spec.queue_size, spec.concurrency or the replicas",
                details={"retry_after_s": retry, "queue_size": state.queue_size})
        budget = min(self.ready_wait_s, timeout_s) if timeout_s and timeout_s > 0 \
            else self.ready_wait_s
        deadlines = self._deadlines(state)
        state.waiters.append(waiter)
        state.versions[version] += 1
        waiter.queued = True
        waiter.began = time.monotonic()
        self._ensure_ticker()
        deadlines.add(deadlines.loop.time() + budget, waiter, len(state.waiters))

    @staticmethod
    def _deadlines(state: _Service) -> Deadlines:
        deadlines = state.deadlines
        if deadlines is None or deadlines.loop.is_closed():  # (tests run one loop each)
            deadlines = state.deadlines = Deadlines(asyncio.get_running_loop())
        return deadlines

    @staticmethod
    def _leave(state: _Service, waiter: _Waiter | Ticket) -> None:
        """Take a waiter out of its service's queue (once)."""
        if not waiter.queued:
            return
        waiter.queued = False
        with contextlib.suppress(ValueError):
            state.waiters.remove(waiter)
        left = state.versions[waiter.version] - 1
        if left > 0:
            state.versions[waiter.version] = left
        else:
            del state.versions[waiter.version]

    def release(self, replica_id: str, service: str = "") -> None:
        """The request on ``replica_id`` finished: its slot goes to the next waiter."""
        held = self.in_flight.get(replica_id, 0)
        if held > 0:
            self.in_flight[replica_id] = held - 1
        if not service:
            info = self.supervisor.get(replica_id)
            service = info.service if info is not None else ""
        if service:
            self._dispatch(service)

    def observe_hold(self, service: str, seconds: float) -> None:
        """How long a request held its slot (a moving average feeds Retry-After)."""
        state = self._service(service)
        state.hold_s = 0.8 * state.hold_s + 0.2 * max(0.0, seconds)

    # ------------------------------------------------------------------ waiting

    def _check_can_wait(self, service: str, version: int) -> None:
        """Raise when no replica of the version here will ever take the request."""
        mine = self._replicas(service, version)
        for r in mine:  # the usual answer, found at the first replica
            if r.state == "ready" or r.state in _COMING_STATES:
                return
        if not mine:
            raise ModelportError(Kind.UNAVAILABLE, "replica.none",
                                 f"no replica of {service!r} version {version} on this runtime",
                                 "the platform is moving it; retry shortly")
        why = "; ".join(f"{r.id}: {r.state} {r.message}".strip() for r in mine)
        raise ModelportError(Kind.UNAVAILABLE, "replica.not_ready",
                             f"no ready replica of {service!r} version {version} ({why})",
                             f"see `modelport events {service}` and the replica log")

    def _timed_out(self, service: str, version: int, waited: float) -> ModelportError:
        mine = self._replicas(service, version)
        if any(r.state == "ready" for r in mine):
            return ModelportError(
                Kind.DEADLINE, "queue.timeout",
                f"the request waited {waited:.1f}s in the queue of {service!r} and its timeout "
                "ran out before a replica was free", "raise timeout_s, add replicas (or "
                "autoscaling.max), or send fewer requests at once")
        why = "; ".join(f"{r.id}: {r.state} {r.message}".strip() for r in mine) or "none left"
        return ModelportError(Kind.UNAVAILABLE, "replica.not_ready",
                              f"no replica of {service!r} version {version} became ready within "
                              f"{waited:.1f}s ({why})",
                              f"see `modelport events {service}` and the replica log")

    def _retry_after(self, service: str, version: int) -> float:
        state = self._service(service)
        slots = sum(self.limit(r.id) for r in self._replicas(service, version)
                    if r.state == "ready") or 1
        return float(max(1, math.ceil(state.hold_s * (len(state.waiters) + 1) / slots)))

    def _dispatch(self, service: str) -> None:
        """Hand free slots to waiters in arrival order; fail those that cannot be served."""
        state = self._services.get(service)
        if state is None or not state.waiters:
            return
        blocked: set[int] = set()
        waiting = len(state.versions)
        settled: list[tuple[_Waiter | Ticket, str | ModelportError]] = []
        granted: set[int] = set()
        for waiter in state.waiters:
            if not waiter.pending or waiter.version in blocked:
                continue
            rid = self._free(service, waiter.version, waiter.pipelined)
            if rid is not None:
                settled.append((waiter, self._take(rid)))
                granted.add(waiter.version)
                continue
            blocked.add(waiter.version)  # later waiters of this version stay behind it
            if waiter.version not in granted:  # (else a replica of it just took one)
                try:
                    self._check_can_wait(service, waiter.version)
                except ModelportError as err:
                    settled.append((waiter, err))
            if len(blocked) >= waiting:
                break  # every version waiting is blocked: the rest stay behind
        # out of the loop: a Ticket's callback runs now and may release (and so come back
        # here), which must not happen while the queue is being walked
        for waiter, _ in settled:  # all out first: a nested pass must not see them again
            self._leave(state, waiter)
        for waiter, outcome in settled:
            try:
                if isinstance(outcome, str):
                    waiter.grant(outcome)
                else:
                    waiter.fail(outcome)
            except Exception:  # a caller's bug must not stop the queue
                log.exception("admission: a queued request's callback failed")

    def _dispatch_all(self) -> None:
        for name in list(self._services):
            self._dispatch(name)

    def _ensure_ticker(self) -> None:
        if self._tick is None or self._tick.done():
            self._tick = asyncio.create_task(self._ticker(), name="admission-ticker")

    async def _ticker(self) -> None:
        """While anyone waits: re-check, so replicas that became ready (or died) count."""
        while any(s.waiters for s in self._services.values()):
            await asyncio.sleep(POLL_S)
            self._dispatch_all()

    # ------------------------------------------------------------------ load

    def loads(self) -> list[Load]:
        by_service: Counter[str] = Counter()
        for r in self.supervisor.list():
            by_service[r.service] += self.in_flight.get(r.id, 0)
        return [Load(name, by_service.get(name, 0), len(s.waiters), s.last_request_at,
                     s.rejected) for name, s in self._services.items()]

    def queued(self, service: str) -> int:
        state = self._services.get(service)
        return len(state.waiters) if state else 0


def _granted(future: asyncio.Future[str | None]) -> bool:
    return (future.done() and not future.cancelled() and future.exception() is None
            and future.result() is not None)

