"""Per-request telemetry at the edge: request id, trace, metrics and the access log.

``TelemetryMiddleware`` wraps the whole ASGI app (outside Starlette's error handling, so
even a 500 carries the headers): it gives every HTTP request a request id (the client's
``X-Request-ID`` when sane, else a new one, visible to handlers as that header), continues
the client's W3C ``traceparent`` in a SERVER span when tracing is on, answers with
``X-Request-ID``, ``X-Trace-ID`` and ``traceresponse``, and records the request once its
response is finished. ``GrpcTelemetryInterceptor`` does the same for the public gRPC
inference services.

A request counts as an inference request when it reached the data plane (``DataPlane``
notes the service, and the version it routed to, on the current ``RequestScope``) and is
a POST (gRPC: a ``*Predict*``/``*Infer*`` method), so any protocol adapter built on the
data plane is counted without code of its own, and metadata/readiness calls are not.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace

from services.gateway.stats import GatewayStats
from services.telemetry import logfiles, logs, tracing

log = logging.getLogger(__name__)

_tracer = tracing.tracer("modelport.gateway")

#: gRPC status -> the HTTP status the same error has over REST (modelport/errors.py table)
GRPC_TO_HTTP = {
    grpc.StatusCode.OK: 200, grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.OUT_OF_RANGE: 413, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}


#: probes and scrapes: no span (they would bury the traces that matter)
UNTRACED_PATHS = frozenset({"/health", "/metrics"})


@dataclass
class RequestScope:
    """What one request touched; filled in by the data plane and the error encoder."""

    request_id: str
    stats: GatewayStats | None = None
    service: str | None = None  # None: not an inference request
    version: int = 0
    error_code: str = ""
    error_message: str = ""

    def enter_service(self, service: str) -> None:
        if self.service is None and self.stats is not None:
            self.stats.begin(service)
        self.service = service

    def unknown_service(self) -> None:
        """The name matched no service: count it under "" rather than a caller-chosen name."""
        if self.service is not None and self.stats is not None:
            self.stats.end(self.service)
        self.service = None
        self.enter_service("")


CURRENT: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
    "modelport_request_scope", default=None)


def current() -> RequestScope | None:
    return CURRENT.get()


def note_service(service: str) -> None:
    scope = CURRENT.get()
    if scope is not None:
        scope.enter_service(service)


def note_version(version: int) -> None:
    scope = CURRENT.get()
    if scope is not None and version:
        scope.version = version


def note_unknown_service() -> None:
    scope = CURRENT.get()
    if scope is not None:
        scope.unknown_service()


def note_request_id(request_id: str) -> None:
    scope = CURRENT.get()
    if scope is not None and not scope.request_id:
        scope.request_id = request_id


def note_error(code: str, message: str) -> None:
    scope = CURRENT.get()
    if scope is not None:
        scope.error_code, scope.error_message = code, message[:500]


def sane_request_id(value: str) -> bool:
    return 0 < len(value) <= 128 and value.isprintable() and " " not in value


class AccessLog:
    """``access.log`` (every inference request) and ``error-access.log`` (the failed ones),
    JSON lines with the request id and trace id, rotating by size.

    Lines are written in batches, as nginx's ``access_log ... buffer= flush=`` does: at
    most ``FLUSH_S`` after the request, or once ``BUFFER_BYTES`` wait, and before the logs
    are read through the gateway (``flush``) or it stops. A write and flush per request
    was about 8 % of the gateway's CPU for a no-op model (bench/RESULTS.md).
    """

    #: a line reaches its file at most this long after its request ended ...
    FLUSH_S = 0.2
    #: ... or as soon as this many bytes of lines wait
    BUFFER_BYTES = 64 * 1024

    def __init__(self, directory: Path, max_bytes: int, backups: int) -> None:
        self.access = logfiles.RotatingWriter(directory / "access.log", max_bytes, backups)
        self.errors = logfiles.RotatingWriter(directory / "error-access.log", max_bytes, backups)
        self._lines: list[bytes] = []
        self._error_lines: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        #: lines dropped since writing them last failed (a full disk); 0 while writes work
        self.dropped = 0

    def record(self, entry: dict[str, Any]) -> None:
        line = orjson.dumps(entry) + b"\n"
        self._lines.append(line)
        if entry["status"] >= 400:
            self._error_lines.append(line)
        self._size += len(line)
        if self._size >= self.BUFFER_BYTES:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop to flush later from: now
                self.flush()
                return
            self._timer = loop.call_later(self.FLUSH_S, self.flush)

    def flush(self) -> None:
        """Write the lines that wait."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines, errors = self._lines, self._error_lines
        self._lines, self._error_lines, self._size = [], [], 0
        try:
            if lines:
                self.access.write(b"".join(lines))
            if errors:
                self.errors.write(b"".join(errors))
        except OSError as exc:  # a full disk: requests go on, their lines are dropped
            if not self.dropped:
                log.error("access log lines dropped until %s can be written again: %s",
                          self.access.path.parent, exc)
            self.dropped += len(lines)
            return
        if self.dropped:
            log.warning("access log writable again; %d lines were dropped", self.dropped)
            self.dropped = 0

    def close(self) -> None:
        self.flush()
        self.access.close()
        self.errors.close()


def _entry(scope: RequestScope, status: int, seconds: float, trace_id: str,
           **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"ts": logfiles.stamp(), "request_id": scope.request_id}
    if trace_id:
        entry["trace_id"] = trace_id
    entry.update(service=scope.service, version=scope.version or None, status=status,
                 duration_ms=round(seconds * 1000, 3), **extra)
    if scope.error_code:
        entry.update(error_code=scope.error_code, error=scope.error_message)
    return entry


def record_http(req: RequestScope, stats: GatewayStats, access_log: AccessLog | None,
                method: str, path: str, status: int, elapsed: float, trace_id: str) -> None:
    """An HTTP request's response is finished: metrics, windows and the access log (an
    inference request only: it reached the data plane and is a POST, not metadata)."""
    if req.service is None:
        return
    stats.end(req.service)
    if method == "POST":
        stats.observe(req.service, str(req.version) if req.version else "", status, elapsed)
        if access_log is not None:
            access_log.record(_entry(req, status, elapsed, trace_id, method=method, path=path))


def response_headers(headers: list[tuple[bytes, bytes]], rid: str, trace_id: str,
                     trace_header: str) -> list[tuple[bytes, bytes]]:
    """A response's headers plus the request id (unless the handler set one) and, when the
    request is traced, ``X-Trace-ID`` and ``traceresponse``."""
    out = list(headers)
    if not any(k.lower() == b"x-request-id" for k, _ in out):
        out.append((b"x-request-id", rid.encode()))
    if trace_id:
        out.append((b"x-trace-id", trace_id.encode()))
        out.append((b"traceresponse", trace_header.encode()))
    return out


class TelemetryMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], stats: GatewayStats,
                 access_log: AccessLog | None = None) -> None:
        self.app = app
        self.stats = stats
        self.access_log = access_log

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        rid = ""
        traceparent = ""
        for key, value in headers:
            if key == b"x-request-id":
                rid = value.decode("latin-1")
            elif key == b"traceparent":
                traceparent = value.decode("latin-1")
        if not sane_request_id(rid):
            rid = os.urandom(16).hex()  # as random as uuid4().hex, a fraction of the cost
            scope["headers"] = [(k, v) for k, v in headers if k != b"x-request-id"] + [
                (b"x-request-id", rid.encode())]
        req = RequestScope(rid, self.stats)
        scope_token = CURRENT.set(req)
        rid_token = logs.bind_request_id(rid)
        span = None
        ctx_token = None
        if tracing.enabled() and scope["path"] not in UNTRACED_PATHS:
            parent = tracing.extract({"traceparent": traceparent} if traceparent else {})
            span = _tracer.start_span(f"{scope['method']} {scope['path']}", context=parent,
                                      kind=trace.SpanKind.SERVER, attributes={
                                          "http.request.method": scope["method"],
                                          "url.path": scope["path"],
                                          "modelport.request_id": rid})
            ctx_token = otel_context.attach(trace.set_span_in_context(span, parent))
            sc = span.get_span_context()
            trace_id = format(sc.trace_id, "032x")
            trace_header = f"00-{trace_id}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"
        else:
            trace_id, parent_id = tracing.parse_traceparent(traceparent)
            trace_header = traceparent.strip() if trace_id else ""
        status = 500

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = response_headers(message.get("headers", []), rid,
                                                      trace_id, trace_header)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except BaseException as exc:
            if span is not None:
                tracing.record_error(span, exc)
            raise
        finally:
            record_http(req, self.stats, self.access_log, scope["method"], scope["path"], status,
                        time.perf_counter() - started, trace_id)
            if span is not None:
                route = scope.get("route")
                template = getattr(route, "path", None)
                if template:
                    span.update_name(f"{scope['method']} {template}")
                    span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                if req.service is not None:
                    span.set_attribute("modelport.service", req.service)
                    span.set_attribute("modelport.version", req.version)
                if status >= 500:
                    span.set_status(trace.Status(trace.StatusCode.ERROR, req.error_code))
                span.end()
                if ctx_token is not None:
                    otel_context.detach(ctx_token)
            logs.REQUEST_ID.reset(rid_token)
            CURRENT.reset(scope_token)


class GrpcTelemetryInterceptor(grpc.aio.ServerInterceptor):
    """Counts public gRPC inference calls the way the middleware counts HTTP ones, and
    returns the trace id in the ``x-trace-id`` trailing metadata."""

    _SKIP = ("/grpc.health.v1.Health/", "/grpc.reflection.")

    def __init__(self, stats: GatewayStats, access_log: AccessLog | None = None) -> None:
        self.stats = stats
        self.access_log = access_log

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        if handler is None or method.startswith(self._SKIP) or handler.request_streaming:
            return handler
        if handler.response_streaming:
            inner = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                req, tokens, started = self._enter(request, context)
                code = grpc.StatusCode.OK
                try:
                    async for item in inner(request, context):
                        yield item
                except BaseException:
                    code = _code(context)
                    raise
                finally:
                    self._exit(req, tokens, started, code, method, context)

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        inner_unary = handler.unary_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            req, tokens, started = self._enter(request, context)
            code = grpc.StatusCode.OK
            try:
                return await inner_unary(request, context)
            except BaseException:
                code = _code(context)
                raise
            finally:
                self._exit(req, tokens, started, code, method, context)

        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)

    def _enter(self, request: Any, context: Any) -> tuple[RequestScope, tuple[Any, Any], float]:
        rid = getattr(request, "request_id", "") or ""
        req = RequestScope(rid if sane_request_id(rid) else "", self.stats)
        tokens = (CURRENT.set(req), logs.bind_request_id(req.request_id))
        return req, tokens, time.perf_counter()

    def _exit(self, req: RequestScope, tokens: tuple[Any, Any], started: float,
              code: grpc.StatusCode, method: str, context: Any) -> None:
        elapsed = time.perf_counter() - started
        trace_id = tracing.current_trace_id()
        if trace_id:
            try:
                context.set_trailing_metadata((("x-trace-id", trace_id),))
            except Exception:  # noqa: BLE001 - already sent; the header is best effort
                pass
        if req.service is not None:
            self.stats.end(req.service)
        if req.service is not None and _is_inference(method):
            status = GRPC_TO_HTTP.get(code, 500)
            self.stats.observe(req.service, str(req.version) if req.version else "", status,
                               elapsed)
            if self.access_log is not None:
                self.access_log.record(_entry(req, status, elapsed, trace_id, method="gRPC",
                                              path=method, grpc_code=code.name))
        logs.REQUEST_ID.reset(tokens[1])
        CURRENT.reset(tokens[0])


def _is_inference(method: str) -> bool:
    """Predict / PredictStream / ModelInfer ...: not ModelReady, ModelMetadata and such."""
    name = method.rsplit("/", 1)[-1]
    return "Infer" in name or "Predict" in name


def _code(context: Any) -> grpc.StatusCode:
    try:
        code = context.code()
    except Exception:  # noqa: BLE001
        return grpc.StatusCode.UNKNOWN
    if isinstance(code, grpc.StatusCode):
        return code
    for sc in grpc.StatusCode:
        if sc.value[0] == code:
            return sc
    return grpc.StatusCode.UNKNOWN
