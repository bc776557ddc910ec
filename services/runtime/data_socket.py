"""The runtime's data socket: unary predictions from gateways as frames (``predict_frames.py``).

Each gateway keeps one connection open and sends many requests on it at once; each
request runs as its own task through ``RuntimeServicer.predict`` (the same admission,
batching, metrics and spans as the gRPC ``Predict``) and is answered by id, in whatever
order they finish. A ``cancel`` frame (the gateway's caller went away or timed out) or a
dropped connection cancels the requests still running, which cancels them in the worker.
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
from modelport.worker import protocol as p
from services import predict_frames as pf
from services.frame_transport import FrameProtocol
from services.telemetry import tracing

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
    """One gateway's connection: its requests run as tasks, answered by id."""

    def __init__(self, socket: DataSocket) -> None:
        self.socket = socket
        self.frames = FrameProtocol(self._received, self._lost)
        self.running: dict[str, asyncio.Task[None]] = {}

    def _received(self, frame: p.Frame) -> None:
        rid = frame.id or ""
        if frame.kind == pf.PREDICT and rid and rid not in self.running:
            task = asyncio.get_running_loop().create_task(self._predict(frame))
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

    def _lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.warning("data socket: a gateway connection dropped: %s", exc)
        for task in self.running.values():
            task.cancel()
        self.socket._connections.discard(self)

    async def _predict(self, frame: p.Frame) -> None:
        header = frame.header
        rid = header["id"]
        start = time.perf_counter()
        try:
            inputs = p.decode_inputs(header.get("inputs"), frame.parts)
            service, version = str(header.get("service") or ""), int(header.get("version") or 0)
            timeout = float(header.get("timeout_s") or 0.0)
            tensors = header.get("tensor_outputs") is True
            with _traced(header.get("trace")):
                replica, result = await self.socket.servicer.predict(
                    service, version, rid, inputs, timeout, tensors)
        except ModelportError as err:
            self.frames.write(pf.failed(rid, err))
            return
        except p.ProtocolError as exc:
            self.frames.write(pf.failed(rid, ModelportError(
                Kind.INVALID, "request.invalid_input", f"malformed request frame: {exc}")))
            return
        duration = result.duration_ms if result.duration_ms is not None else (
            time.perf_counter() - start) * 1000
        try:
            buffers = pf.answer(rid, result, version, replica, duration)
        except p.FrameTooLarge as exc:
            self.frames.write(pf.failed(rid, ModelportError(
                Kind.MODEL, "model.output_too_large", str(exc), fix="return a smaller result")))
            return
        self.frames.write(buffers)
        await self.frames.drain()


@contextlib.contextmanager
def _traced(carrier: Any) -> Any:
    """A server span in the caller's trace when the request carries one (and tracing is on)."""
    if not carrier or not tracing.enabled():
        yield
        return
    from opentelemetry import context as otel_context
    from opentelemetry.trace import SpanKind

    token = otel_context.attach(tracing.extract(carrier))
    try:
        with _tracer.start_as_current_span(SPAN_NAME, kind=SpanKind.SERVER):
            yield
    finally:
        otel_context.detach(token)
