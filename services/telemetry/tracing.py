"""OpenTelemetry tracing, configured from the standard ``OTEL_*`` variables.

Nothing is exported by default. Tracing turns on when ``OTEL_EXPORTER_OTLP_ENDPOINT``
(or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, or ``OTEL_TRACES_EXPORTER`` names an
exporter (``otlp``, ``console``); ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``
keeps it off. The exporter, sampler and batch processor read their own variables
(``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_SCHEDULE_DELAY`` ...).

When tracing is off no tracer provider is installed and no gRPC interceptor is added:
:func:`span` hands back one shared no-op context manager, so the hot path creates no
span objects at all.

Spans that describe work inside a replica (the worker's queue, pre-process, predict,
post-process timings, reported over the worker protocol) are recorded by the runtime
through a second provider whose resource is ``service.name=modelport-replica``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

log = logging.getLogger(__name__)

_NULL = contextlib.nullcontext()
_state: dict[str, Any] = {"enabled": False, "component": "", "provider": None,
                          "replica_provider": None}

#: gRPC services never traced (probes and tooling, not work)
_UNTRACED_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def enabled() -> bool:
    return bool(_state["enabled"])


def _exporter_names() -> list[str]:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    raw = os.environ.get("OTEL_TRACES_EXPORTER")
    if raw is None:
        endpoint = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                    or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
        return ["otlp"] if endpoint else []
    return [n.strip().lower() for n in raw.split(",") if n.strip() and n.strip() != "none"]


def _make_exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        log.error("OTEL_TRACES_EXPORTER names %r; modelport knows otlp and console", name)
        return None
    protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip().lower()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )
    except ImportError:
        log.error("OTEL_EXPORTER_OTLP_PROTOCOL=%s needs opentelemetry-exporter-otlp-proto-http;"
                  " install it or use grpc (port 4317)", protocol)
        return None
    return HttpExporter()


def _provider(service_name: str, exporters: Iterable[Any]) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": service_name, "service.namespace": "modelport"})
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure(component: str) -> bool:
    """Install a tracer provider for ``component`` when OTEL_* asks for export.

    Returns whether tracing is on. Safe to call once per process.
    """
    if _state["enabled"]:
        return True
    exporters = [e for e in (_make_exporter(n) for n in _exporter_names()) if e is not None]
    if not exporters:
        return False
    provider = _provider(f"modelport-{component}", exporters)
    trace.set_tracer_provider(provider)
    _state.update(enabled=True, component=component, provider=provider)
    log.info("tracing on: exporting spans of modelport-%s (%s)", component,
             ", ".join(type(e).__name__ for e in exporters))
    return True


def shutdown() -> None:
    """Flush and stop the providers (also done at interpreter exit)."""
    for key in ("provider", "replica_provider"):
        provider = _state.get(key)
        if provider is not None:
            provider.shutdown()


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def replica_tracer() -> trace.Tracer:
    """Tracer for spans that happened inside a replica (resource ``modelport-replica``)."""
    provider = _state["replica_provider"]
    if provider is None:
        if not _state["enabled"]:
            return trace.get_tracer("modelport.replica")
        # exporters of its own: shutting one provider down must not stop the other's
        exporters = [e for e in (_make_exporter(n) for n in _exporter_names()) if e]
        provider = _state["replica_provider"] = _provider("modelport-replica", exporters)
    return provider.get_tracer("modelport.replica")


def span(t: trace.Tracer, name: str, attributes: dict[str, Any] | None = None,
         kind: SpanKind = SpanKind.INTERNAL, context: Any = None,
         links: list[Link] | None = None) -> Any:
    """``with span(t, "route"):`` a current span when tracing is on, else a shared no-op."""
    if not _state["enabled"]:
        return _NULL
    return t.start_as_current_span(name, context=context, kind=kind, attributes=attributes,
                                   links=links)


def record_error(s: Any, exc: BaseException, message: str = "") -> None:
    if s is not None and s.is_recording():
        s.record_exception(exc)
        s.set_status(Status(StatusCode.ERROR, message or f"{type(exc).__name__}: {exc}"))


def current_trace_id() -> str:
    """The current trace id as 32 hex digits, or "" outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


def current_span_id() -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.span_id, "016x") if ctx.is_valid else ""


def parse_traceparent(value: str) -> tuple[str, str]:
    """``(trace id, parent span id)`` of a W3C traceparent, ("", "") when it is not one."""
    parts = value.strip().split("-")
    if (len(parts) < 4 or len(parts[0]) != 2 or len(parts[1]) != 32 or len(parts[2]) != 16
            or parts[0] == "ff"):
        return "", ""
    try:
        if int(parts[1], 16) == 0 or int(parts[2], 16) == 0:
            return "", ""
    except ValueError:
        return "", ""
    return parts[1].lower(), parts[2].lower()


def extract(carrier: dict[str, str]) -> otel_context.Context:
    return propagate.extract(carrier)


def carrier() -> dict[str, str] | None:
    """The current trace context as headers (``traceparent``) for a hop that is not gRPC;
    None when tracing is off or no trace is active (the common, free case)."""
    if not _state["enabled"] or not trace.get_current_span().get_span_context().is_valid:
        return None
    out: dict[str, str] = {}
    propagate.inject(out)
    return out


@contextlib.contextmanager
def detached() -> Iterator[None]:
    """Run a block outside any trace (background work that must not join a request's)."""
    token = otel_context.attach(otel_context.Context())
    try:
        yield
    finally:
        otel_context.detach(token)


# ---------------------------------------------------------------------- gRPC interceptors


def _method(details: Any) -> str:
    method = getattr(details, "method", "") or ""
    return method.decode() if isinstance(method, bytes) else method


def _has_traceparent(details: Any) -> bool:
    return any(k == "traceparent" for k, _ in (details.invocation_metadata or ()))


def server_interceptors(public: bool = False) -> list[Any]:
    """Interceptors for a grpc.aio server; [] when tracing is off.

    An internal server (registry, builder, runtime) traces only calls that arrive inside
    a trace (they carry ``traceparent``), so controller polling makes no traces of its
    own; a public one (the gateway's) traces every call. Health and reflection never.
    """
    if not _state["enabled"]:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    def wanted(details: Any) -> bool:
        if _method(details).startswith(_UNTRACED_SERVICES):
            return False
        return public or _has_traceparent(details)

    return [aio_server_interceptor(filter_=wanted)]


def client_interceptors() -> list[Any]:
    """Interceptors for a grpc.aio channel; [] when tracing is off.

    A call is traced (and carries ``traceparent``) only when made inside a trace.
    """
    if not _state["enabled"]:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    def wanted(details: Any) -> bool:
        return (trace.get_current_span().get_span_context().is_valid
                and not _method(details).startswith(_UNTRACED_SERVICES))

    return list(aio_client_interceptors(filter_=wanted))


# ---------------------------------------------------------------------- replica timings


def record_worker_timings(timings: dict[str, Any] | None, attributes: dict[str, Any],
                          parent: Any = None) -> None:
    """The worker's phase timings as replica spans under ``parent`` (default: current).

    ``timings`` is the ``done`` frame's ``{"t0": unix seconds, "phases": [[name,
    offset ms, duration ms], ...]}``: one ``replica.request`` span from t0 to the end of
    the last phase, with a child per phase.
    """
    if not _state["enabled"] or not timings:
        return
    try:
        t0 = float(timings["t0"])
        phases = [(str(n), float(off), float(dur)) for n, off, dur in timings.get("phases", [])]
    except (KeyError, TypeError, ValueError):
        return
    if not phases:
        return
    ctx = trace.set_span_in_context(parent) if parent is not None else None
    t = replica_tracer()
    start_ns = int(t0 * 1e9)
    end_ns = start_ns + int(max(off + dur for _, off, dur in phases) * 1e6)
    root = t.start_span("replica.request", context=ctx, kind=SpanKind.SERVER,
                        attributes=attributes, start_time=start_ns)
    child_ctx = trace.set_span_in_context(root)
    for name, off, dur in phases:
        s = t.start_span(f"worker.{name}", context=child_ctx, attributes=attributes,
                         start_time=start_ns + int(off * 1e6))
        s.end(end_time=start_ns + int((off + dur) * 1e6))
    root.end(end_time=end_ns)


def link_to_current() -> list[Link]:
    ctx = trace.get_current_span().get_span_context()
    return [Link(ctx)] if ctx.is_valid else []


__all__ = ["SpanKind", "configure", "current_span_id", "current_trace_id", "enabled",
           "extract", "parse_traceparent", "record_worker_timings", "replica_tracer", "span",
           "tracer"]
