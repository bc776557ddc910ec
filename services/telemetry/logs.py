"""Structured logs: one JSON object per line, with the request id and trace id in scope.

Every component logs through the root logger to stderr (which ``modelport up`` sends
to ``<home>/logs/<component>.log``). ``MODELPORT_LOG_FORMAT=text`` switches to the
plain format for reading in a terminal; ``MODELPORT_LOG_LEVEL`` sets the level.

The request id is a context variable: the gateway binds it per request, the runtime per
Predict, so any log line written while serving a request carries it, and the trace id
and span id come from the current OpenTelemetry span when there is one.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from typing import Any

import orjson
from opentelemetry import trace

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("modelport_request_id",
                                                                 default="")

#: LogRecord attributes that are not user-supplied ``extra`` fields
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime",
                                                                          "taskName"}


def bind_request_id(request_id: str) -> contextvars.Token[str]:
    return REQUEST_ID.set(request_id)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "component", "logger", "message", "request_id"?, "trace_id"?, ...}``"""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if rid := REQUEST_ID.get():
            doc["request_id"] = rid
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            doc["trace_id"] = format(ctx.trace_id, "032x")
            doc["span_id"] = format(ctx.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        return orjson.dumps(doc, default=str).decode()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def configure(component: str) -> None:
    """Root logger -> stderr, JSON unless MODELPORT_LOG_FORMAT=text."""
    level = os.environ.get("MODELPORT_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler()
    if os.environ.get("MODELPORT_LOG_FORMAT", "json").lower() == "text":
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s {component} %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter(component))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
