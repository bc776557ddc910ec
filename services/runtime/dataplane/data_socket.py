"""The runtime's data socket: unary predictions from gateways as frames (``predict_frames.py``).

Each gateway keeps one connection open and sends many requests on it at once, answered
by id in whatever order they finish. A request is relayed, not decoded: its header's
``inputs`` and its binary parts go to the worker as they came, and the worker's result
and parts come back into the answer (``calls.start``). It is driven by callbacks
(``_Relay``), with no task: a free slot (``admission.py``) sends it to the worker
at once, a queued one is sent from the callback that frees a slot, and the worker's
answer is written back from the callback that reads it. With tracing on, each request
runs as a task through ``RuntimeServicer.relay`` instead, whose spans need a context of
their own; both record the same metrics, logs and errors as the gRPC ``Predict``. A
``cancel`` frame (the gateway's caller went away or timed out) or a dropped connection
cancels the requests still running, which cancels them in the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from modelport.errors import Kind, ModelportError
from modelport.worker.frames import Frame, FrameTooLarge, ProtocolError
from services.runtime.dataplane import calls
from services.runtime.dataplane.admission import PIPELINE_MAX_BYTES, Ticket
from services.runtime.dataplane.observation import Observation
from services.runtime.servicer import time_left
from services.runtime.worker.errors import whole_timeout
from services.runtime.worker.requests import Reply
from services.telemetry import tracing
from services.wire import predict_frames as pf
from services.wire.transport import FrameProtocol

log = logging.getLogger(__name__)
_tracer = tracing.tracer("modelport.runtime")

#: span name of a request that arrived inside a trace (the gRPC instrumentation's name)
SPAN_NAME = "modelport.v1.Runtime/Predict"


class DataSocket:
    def __init__(self, servicer: Any, path: Path) -> None:
        self.servicer = servicer
        self.path = Path(path)
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(self._connection, path=str(self.path))
        os.chmod(self.path, 0o600)  # the gateway runs as the platform's user

    def _connection(self) -> FrameProtocol:
        conn = _Connection(self)
        self._connections.add(conn)
        return conn.frames

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self._connections):
            conn.frames.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class _Connection:
    """One gateway's connection: its requests are relayed (or run as tasks), answered by
    id."""

    def __init__(self, socket: DataSocket) -> None:
        self.socket = socket
        self.frames = FrameProtocol(self._received, self._lost)
        self.running: dict[str, asyncio.Task[None] | _Relay] = {}
        self.loop = asyncio.get_running_loop()  # asked once: each call costs a getpid()

    def _received(self, frame: Frame) -> None:
        rid = frame.id or ""
        if frame.kind == pf.PREDICT and rid and rid not in self.running:
            if not tracing.enabled():  # spans need a context per request: a task's
                self._relay(frame)
                return
            task = self.loop.create_task(self._predict(frame))
            self.running[rid] = task
            task.add_done_callback(lambda _t: self.running.pop(rid, None))
        elif frame.kind == pf.CANCEL:
            task = self.running.get(rid)
            if task is not None:
                task.cancel()
        elif frame.kind == pf.PREDICT:
            self.frames.write(pf.failed(rid, ModelportError(
                Kind.CONFLICT, "request.duplicate_id",
                f"request {rid!r} is already in flight on this runtime",
                fix="use a fresh request id per request")))

    def _relay(self, frame: Frame) -> None:
        relay = _Relay(self, frame)
        try:
            relay.start()
        except Exception:  # our bug: answer it, and keep the connection (this runs in
            # its data_received, where an exception would close it)
            log.exception("data socket: relaying %s failed", relay.id)
            if not relay.done:
                relay._answer(pf.failed(relay.id, ModelportError(
                    Kind.INTERNAL, "runtime.internal", "the runtime failed to relay the "
                    "request (see the runtime log)")))

    def _lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.warning("data socket: a gateway connection dropped: %s", exc)
        for task in list(self.running.values()):
            task.cancel()
        self.socket._connections.discard(self)

    async def _predict(self, frame: Frame) -> None:
        """Relay one request: its ``inputs`` and parts go to the worker as they came, the
        worker's result and parts come back into the answer; nothing is decoded into
        Values or encoded again on the way (``RuntimeServicer.relay``)."""
        header = frame.header
        rid = header["id"]
        start = time.perf_counter()
        try:
            inputs = header.get("inputs")
            pf.check_inputs(inputs, frame.parts)
            service, version = str(header.get("service") or ""), int(header.get("version") or 0)
            timeout = float(header.get("timeout_s") or 0.0)
            tensors = header.get("tensor_outputs") is True
            carrier = header.get("trace")
            if carrier and tracing.enabled():
                with _traced(carrier):
                    replica, reply = await self.socket.servicer.relay(
                        service, version, rid, inputs, frame.parts, timeout, tensors)
            else:
                replica, reply = await self.socket.servicer.relay(
                    service, version, rid, inputs, frame.parts, timeout, tensors)
        except ModelportError as err:
            self.frames.write(pf.failed(rid, err))
            return
        except ProtocolError as exc:
            self.frames.write(pf.failed(rid, ModelportError(
                Kind.INVALID, "request.invalid_input", f"malformed request frame: {exc}")))
            return
        duration = reply.duration_ms if reply.duration_ms is not None else (
            time.perf_counter() - start) * 1000
        try:
            buffers = pf.relayed(rid, reply.result, reply.parts, version, replica, duration)
        except FrameTooLarge as exc:
            self.frames.write(pf.failed(rid, ModelportError(
                Kind.MODEL, "model.output_too_large", str(exc), fix="return a smaller result")))
            return
        self.frames.write(buffers)
        if self.frames.paused:
            await self.frames.drain()


class _Relay(Ticket):
    """One request relayed by callbacks, with no task: the slot (``Admission``), the
    worker round trip (``calls.start``) and the answer each call the next step.
    When the worker answers, the slot goes to the next queued request, whose frame is
    written to the worker in that same callback. The same steps, metrics, logs and
    errors as ``RuntimeServicer._serve`` (which the task path, with spans, runs).
    """

    __slots__ = ("conn", "id", "header", "parts", "timeout", "obs", "replica", "call",
                 "took", "done", "arrived", "resent", "pipelined", "waited")

    def __init__(self, conn: _Connection, frame: Frame) -> None:
        header = frame.header
        servicer = conn.socket.servicer
        super().__init__(servicer.admission, str(header.get("service") or ""),
                         0)
        self.conn = conn
        self.id: str = header["id"]
        self.header = header
        self.parts = frame.parts
        self.timeout = 0.0
        self.obs: Observation | None = None
        self.replica = ""
        self.call: Any = None  # the worker round trip in flight (cancel() stops it)
        self.took = 0.0
        self.done = False
        self.arrived = 0.0  # perf_counter() when it came: its timeout counts from here
        self.pipelined = sum(map(len, frame.parts)) < PIPELINE_MAX_BYTES
        self.resent = False  # sent again after its worker died before starting it
        self.waited = 0.0  # seconds from arrival to the worker (its timeout's first part)

    def start(self) -> None:
        header, conn = self.header, self.conn
        self.conn.running[self.id] = self
        try:
            pf.check_inputs(header.get("inputs"), self.parts)
            self.version = int(header.get("version") or 0)
            self.timeout = float(header.get("timeout_s") or 0.0)
        except (ProtocolError, TypeError, ValueError) as exc:
            self._answer(pf.failed(self.id, ModelportError(
                Kind.INVALID, "request.invalid_input", f"malformed request frame: {exc}")))
            return
        servicer = conn.socket.servicer
        obs = self.obs = Observation(servicer.metrics, self.service, self.version, self.id)
        obs.begin()
        self.arrived = time.perf_counter()
        self._admit()

    def _admit(self) -> None:
        """A slot at once (then to the worker), or a place in the queue."""
        obs = self.obs
        assert obs is not None
        began = time.perf_counter()
        try:
            replica = self.admission.try_acquire(self.service, self.version, self.pipelined)
            if replica is None:
                if obs.metrics is not None:
                    obs.metrics.waiting[(self.service, self.version)] += 1
                self.began = began
                try:
                    self.admission.enqueue(self, time_left(self.timeout, None,
                                                           began - self.arrived))
                except ModelportError:
                    self._unwait()
                    raise
                return
        except ModelportError as err:
            self._failed(err)
            return
        self.settled = True  # a slot at once: never queued
        if obs.bound is not None:
            obs.bound.wait.observe(time.perf_counter() - began)
        self._send(replica)

    # ------------------------------------------------------------------ the queue

    def granted(self, replica_id: str) -> None:
        self._unwait()
        assert self.obs is not None
        if self.obs.bound is not None:
            self.obs.bound.wait.observe(time.perf_counter() - self.began)
        self._send(replica_id)

    def refused(self, error: ModelportError) -> None:
        self._unwait()
        self._failed(error)

    def _unwait(self) -> None:
        obs = self.obs
        if obs is not None and obs.metrics is not None:
            waiting, key = obs.metrics.waiting, (self.service, self.version)
            waiting[key] -= 1
            if waiting[key] <= 0:
                del waiting[key]

    # ------------------------------------------------------------------ the worker

    def _send(self, replica_id: str) -> None:
        obs = self.obs
        assert obs is not None
        obs.replica_id = self.replica = replica_id
        self.took = time.monotonic()
        servicer = self.conn.socket.servicer
        header = self.header
        self.waited = time.perf_counter() - self.arrived
        try:
            self.call = calls.start(
                servicer.supervisor, replica_id, self.id, header.get("inputs"), self.parts,
                time_left(self.timeout, None, self.waited),
                header.get("tensor_outputs") is True,
                self._answered)
        except ModelportError as err:
            self._release()
            self._failed(err)

    def _release(self) -> None:
        self.call = None
        admission = self.admission
        admission.observe_hold(self.service, time.monotonic() - self.took)
        self.conn.socket.servicer.admission.release(self.replica, self.service)

    def _answered(self, outcome: Reply | ModelportError) -> None:
        """The worker's answer (or failure): written to the gateway first (the caller's
        latency), then the slot goes to the next request and the metrics are recorded
        (a pipelined worker already has its next requests)."""
        obs = self.obs
        assert obs is not None
        if isinstance(outcome, ModelportError):
            self._release()
            if (outcome.code == "worker.crashed" and outcome.details.get("started") is False
                    and not self.resent):
                self._resend()
            else:
                self._failed(whole_timeout(outcome, self.timeout, self.waited))
            return
        duration = outcome.duration_ms if outcome.duration_ms is not None else (
            time.perf_counter() - obs._start) * 1000
        try:
            buffers = pf.relayed(self.id, outcome.result, outcome.parts, self.version,
                                 self.replica, duration)
        except FrameTooLarge as exc:
            buffers = pf.failed(self.id, ModelportError(
                Kind.MODEL, "model.output_too_large", str(exc), fix="return a smaller result"))
        self._answer(buffers)
        if outcome.duration_ms is not None:
            self.admission.observe_run(self.replica, outcome.duration_ms / 1000)
        obs.worker(outcome.timings, self.replica)
        self._release()
        obs.end()

    def _resend(self) -> None:
        """Its worker died with it still queued there, unstarted (pipelining, or a
        concurrency above 1): it goes through admission again, once, within its own
        timeout, to the restarted replica or another one."""
        log.warning("%s: %s died before starting request %s; sending it again",
                    self.service, self.replica, self.id)
        self.resent = True
        self.settled = False
        self.conn.socket.servicer.supervisor.mark_lost(self.replica)
        self._admit()

    # ------------------------------------------------------------------ endings

    def _failed(self, error: ModelportError) -> None:
        assert self.obs is not None
        self.obs.failed(error)
        self.obs.end(error)
        self._answer(pf.failed(self.id, error))

    def _answer(self, buffers: list[Any] | None) -> None:
        self.done = True
        # its deadline may stay in the admission queue's heap until due: keep no payload
        self.parts, self.call = [], None
        if self.conn.running.get(self.id) is self:
            del self.conn.running[self.id]
        if buffers is not None:
            self.conn.frames.write(buffers)

    def cancel(self) -> None:  # type: ignore[override]
        """The gateway's caller went away (or the connection dropped): stop, no answer.
        Recorded as the task path records a cancelled request (a 500, logged)."""
        if self.done:
            return
        if not self.settled:  # waiting in the queue
            super().cancel()
            self._unwait()
        elif self.call is not None:
            self.call.cancel()
            self._release()
        if self.obs is not None:
            self.obs.end(asyncio.CancelledError())
        self._answer(None)


@contextlib.contextmanager
def _traced(carrier: Any) -> Any:
    """A server span in the caller's trace (when the request carries one, tracing on)."""
    from opentelemetry import context as otel_context
    from opentelemetry.trace import SpanKind

    token = otel_context.attach(tracing.extract(carrier))
    try:
        with _tracer.start_as_current_span(SPAN_NAME, kind=SpanKind.SERVER):
            yield
    finally:
        otel_context.detach(token)
