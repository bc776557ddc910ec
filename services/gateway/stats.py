"""What the gateway counts about inference requests: Prometheus metrics and recent windows.

Every inference request that reached the data plane is recorded once, when its response
is finished, with its service, the version that answered (or was routed to), and the
HTTP status class (gRPC codes are mapped to the status the same error has over REST).
The Prometheus side is cumulative (`/metrics`); the windowed side keeps per-second
buckets of the last 15 minutes for `/api/v1/services/{name}/stats` and `modelport top`
(calls, failures, RPS and latency percentiles over 1, 5 and 15 minutes).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from services.telemetry.cheap_histogram import CheapHistogram
from services.telemetry.series import LabelCache, code_class

#: seconds; spans sub-millisecond predictors to minute-long batch models
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0, 120.0)
#: the windows `stats` reports, in seconds
WINDOWS = {"1m": 60, "5m": 300, "15m": 900}
HORIZON_S = max(WINDOWS.values())
#: latency buckets of the windowed view grow by 5 %: percentiles are within 5 % of the truth
_GROWTH = 1.05
_LOG_GROWTH = math.log(_GROWTH)
_FLOOR_MS = 0.01


def _bucket(ms: float) -> int:
    return 0 if ms <= _FLOOR_MS else int(math.ceil(math.log(ms / _FLOOR_MS) / _LOG_GROWTH))


def _bucket_ms(index: int) -> float:
    return _FLOOR_MS * _GROWTH ** index


@dataclass
class _Second:
    t: int
    calls: int = 0
    failed: int = 0
    sum_ms: float = 0.0
    hist: dict[int, int] = field(default_factory=dict)


class ServiceWindow:
    """Per-second buckets of one service's requests, for the last HORIZON_S seconds."""

    def __init__(self) -> None:
        self.seconds: deque[_Second] = deque()
        self.total_calls = 0
        self.total_failed = 0

    def add(self, now: float, ms: float, ok: bool) -> None:
        sec = int(now)
        if not self.seconds or self.seconds[-1].t != sec:
            self.seconds.append(_Second(sec))
            while self.seconds and self.seconds[0].t <= sec - HORIZON_S:
                self.seconds.popleft()
        s = self.seconds[-1]
        s.calls += 1
        s.failed += 0 if ok else 1
        s.sum_ms += ms
        b = _bucket(ms)
        s.hist[b] = s.hist.get(b, 0) + 1
        self.total_calls += 1
        self.total_failed += 0 if ok else 1

    def summary(self, now: float, window_s: int) -> dict[str, Any]:
        since = int(now) - window_s
        calls = failed = 0
        sum_ms = 0.0
        hist: dict[int, int] = {}
        for s in self.seconds:
            if s.t <= since:
                continue
            calls += s.calls
            failed += s.failed
            sum_ms += s.sum_ms
            for b, n in s.hist.items():
                hist[b] = hist.get(b, 0) + n
        return {
            "calls": calls, "success": calls - failed, "failed": failed,
            "rps": round(calls / window_s, 3),
            "error_rate": round(failed / calls, 4) if calls else 0.0,
            "latency_ms": {"avg": round(sum_ms / calls, 3) if calls else None,
                           **{f"p{q}": _percentile(hist, calls, q / 100) for q in (50, 90, 99)}},
        }

    def series(self, now: float, step_s: int, span_s: int = HORIZON_S) -> list[dict[str, Any]]:
        """The last ``span_s`` seconds in ``step_s`` buckets, oldest first, empty buckets
        included: what the console's charts draw (calls/s, errors/s, p50/p99)."""
        end = int(now) + 1
        start = end - span_s
        n = max(1, span_s // step_s)
        buckets = [_Second(start + i * step_s) for i in range(n)]
        for s in self.seconds:
            i = (s.t - start) // step_s
            if 0 <= i < n:
                b = buckets[i]
                b.calls += s.calls
                b.failed += s.failed
                for k, c in s.hist.items():
                    b.hist[k] = b.hist.get(k, 0) + c
        return [{"t": b.t, "rps": round(b.calls / step_s, 3),
                 "errors": round(b.failed / step_s, 3),
                 "p50": _percentile(b.hist, b.calls, 0.5),
                 "p99": _percentile(b.hist, b.calls, 0.99)} for b in buckets]


def _percentile(hist: dict[int, int], total: int, q: float) -> float | None:
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= rank:
            return round(_bucket_ms(b), 3)
    return None


class GatewayStats:
    """The gateway's request metrics (Prometheus) and recent windows (stats API)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(namespace="modelport_gateway", registry=self.registry)
        self.requests = Counter(
            "modelport_requests", "Inference requests answered by the gateway, by service, "
            "version and HTTP status class (2xx/4xx/5xx)", ["service", "version", "code_class"],
            registry=self.registry)
        self.latency = CheapHistogram(
            "modelport_request_duration_seconds", "Inference request latency at the gateway, "
            "from the request's arrival to the end of its response", ["service", "version"],
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge(
            "modelport_requests_in_flight", "Inference requests the gateway is serving now",
            ["service"], registry=self.registry)
        self.windows: dict[str, ServiceWindow] = {}
        self.started_at = time.time()
        self._labels = LabelCache()
        self._series: dict[tuple[str, str], tuple[dict[int, Any], Any,
                                                  ServiceWindow | None]] = {}

    def begin(self, service: str) -> None:
        self._labels.child(self.in_flight, service).inc()

    def end(self, service: str) -> None:
        self._labels.child(self.in_flight, service).dec()

    def observe(self, service: str, version: str, status: int, seconds: float) -> None:
        series = self._series.get((service, version))
        if series is None:
            series = self._series[(service, version)] = self._new_series(service, version)
        counter = series[0].get(status // 100)
        if counter is None:
            counter = series[0][status // 100] = self._labels.child(
                self.requests, service, version, code_class(status))
        counter.inc()
        series[1].observe(seconds)
        if series[2] is not None:
            series[2].add(time.time(), seconds * 1000.0, status < 400)

    def _new_series(self, service: str, version: str) -> tuple[dict[int, Any], Any,
                                                                 ServiceWindow | None]:
        """What one (service, version) records into: its counters by status class, its
        latency histogram, its service's window (none for the unknown-service "")."""
        window = None
        if service:
            window = self.windows.get(service)
            if window is None:
                window = self.windows[service] = ServiceWindow()
        return {}, self._labels.child(self.latency, service, version), window

    def in_flight_of(self, service: str) -> int:
        for metric in self.in_flight.collect():
            for sample in metric.samples:
                if sample.labels.get("service") == service:
                    return int(sample.value)
        return 0

    def service_stats(self, service: str, series_step_s: int = 0) -> dict[str, Any]:
        """The windows of one service; with ``series_step_s``, also its last 15 minutes as
        a time series in buckets of that many seconds."""
        now = time.time()
        window = self.windows.get(service) or ServiceWindow()
        extra = {"series": window.series(now, series_step_s)} if series_step_s else {}
        return {
            **extra,
            "service": service,
            "windows": {name: window.summary(now, secs) for name, secs in WINDOWS.items()},
            "total": {"calls": window.total_calls,
                      "success": window.total_calls - window.total_failed,
                      "failed": window.total_failed, "since": self.started_at},
            "in_flight": self.in_flight_of(service),
        }

    def all_stats(self, services: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {name: self.service_stats(name) for name in services}
