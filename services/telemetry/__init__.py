"""Telemetry shared by every component: tracing (OpenTelemetry), JSON logs, request scope.

A component calls :func:`setup` once, before it builds gRPC servers or channels, so the
interceptors that carry trace context between components are in place. Metrics live
with the component that owns them (``services/gateway/stats.py``,
``services/runtime/metrics.py``, ``services/registry/metrics.py``).
"""

from __future__ import annotations

from services.telemetry import logs, tracing


def setup(component: str) -> None:
    """Structured logs for ``component`` and, when OTEL_* asks for it, trace export."""
    logs.configure(component)
    tracing.configure(component)


__all__ = ["logs", "setup", "tracing"]
