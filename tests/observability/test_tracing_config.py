"""Tracing is configured from the standard OTEL_* variables and costs nothing when off."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from services.telemetry import logs, tracing
from tests.conftest import ROOT

PROBE = ("from services.telemetry import tracing; on = tracing.configure('probe'); "
         "print(on, len(tracing.server_interceptors()), len(tracing.client_interceptors()), "
         "tracing.span(tracing.tracer('x'), 'probe') is tracing._NULL)")


def probe(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                         text=True, env={**clean, **env}, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "False 0 0 True"),  # the default: nothing exported, no interceptor, no spans
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, "True 1 4 False"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, "True 1 4 False"),
    ({"OTEL_TRACES_EXPORTER": "console"}, "True 1 4 False"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_SDK_DISABLED": "true"},
     "False 0 0 True"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_TRACES_EXPORTER": "none"},
     "False 0 0 True"),
])
def test_tracing_follows_the_standard_variables(env: dict[str, str], expected: str) -> None:
    assert probe(env) == expected


def test_when_off_no_span_object_is_created() -> None:
    # this test process never configured tracing, like a component without OTEL_* set
    assert not tracing.enabled()
    t = tracing.tracer("modelport.test")
    with tracing.span(t, "anything", {"k": "v"}) as s:
        assert s is None  # the shared no-op: no Span, not even a non-recording one
        assert tracing.current_trace_id() == ""
    assert tracing.span(t, "a") is tracing.span(t, "b")
    assert tracing.server_interceptors(public=True) == [] and tracing.client_interceptors() == []
    tracing.record_worker_timings({"t0": 1.0, "phases": [["predict", 0, 1]]}, {})  # no-op


def test_a_client_traceparent_is_parsed_strictly() -> None:
    good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert tracing.parse_traceparent(good) == ("4bf92f3577b34da6a3ce929d0e0e4736",
                                               "00f067aa0ba902b7")
    for bad in ("", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-zzzzzzzzzzzzzzzz-01"):
        assert tracing.parse_traceparent(bad) == ("", "")


def test_json_log_lines_carry_the_request_id_and_the_trace_id() -> None:
    fmt = logs.JsonFormatter("runtime")
    record = logging.LogRecord("services.runtime.x", logging.WARNING, __file__, 1,
                               "predict failed: %s", ("model.error",), None)
    record.replica_id = "svc-v1-abc"  # an `extra` field
    token = logs.bind_request_id("req-42")
    provider = TracerProvider()  # local: the process-wide provider stays untouched
    try:
        with trace.use_span(provider.get_tracer("t").start_span("s"), end_on_exit=True) as sp:
            doc = json.loads(fmt.format(record))
            ctx = sp.get_span_context()
    finally:
        logs.REQUEST_ID.reset(token)
    assert doc["message"] == "predict failed: model.error"
    assert doc["level"] == "warning" and doc["component"] == "runtime"
    assert doc["request_id"] == "req-42" and doc["replica_id"] == "svc-v1-abc"
    assert doc["trace_id"] == format(ctx.trace_id, "032x")
    assert doc["span_id"] == format(ctx.span_id, "016x")
    assert doc["ts"].endswith("Z")
    outside = json.loads(fmt.format(record))
    assert "request_id" not in outside and "trace_id" not in outside
