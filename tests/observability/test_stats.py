"""The gateway's recent windows (stats API, `top`) and the events retention."""

from __future__ import annotations

import random
import time
from pathlib import Path

from services.gateway.stats import GatewayStats, ServiceWindow
from services.registry.retention import prune_events
from services.registry.store import SqliteStore
from services.registry.store.base import EventRecord
from services.telemetry.series import code_class


def test_percentiles_are_within_five_percent() -> None:
    w = ServiceWindow()
    rng = random.Random(7)
    values = [rng.lognormvariate(2.0, 1.0) for _ in range(5000)]
    for ms in values:
        w.add(1000.0, ms, ok=True)
    got = w.summary(1000.0, 60)["latency_ms"]
    ordered = sorted(values)
    for q in (50, 90, 99):
        exact = ordered[int(q / 100 * len(ordered)) - 1]
        assert abs(got[f"p{q}"] - exact) / exact < 0.06, (q, got, exact)


def test_windows_count_only_their_own_seconds() -> None:
    w = ServiceWindow()
    w.add(1001.0, 5.0, ok=True)     # ~15 minutes before "now": only in the 15m window
    w.add(1700.0, 5.0, ok=False)    # 5 minutes before
    for _ in range(6):
        w.add(1899.5, 10.0, ok=True)  # the last minute
    now = 1900.0
    one, five, fifteen = (w.summary(now, s) for s in (60, 300, 900))
    assert (one["calls"], one["failed"], one["rps"]) == (6, 0, 0.1)
    assert (five["calls"], five["failed"]) == (7, 1)
    assert (fifteen["calls"], fifteen["success"]) == (8, 7)
    assert round(five["error_rate"], 3) == round(1 / 7, 3)
    empty = ServiceWindow().summary(now, 60)
    assert empty["calls"] == 0 and empty["latency_ms"]["p50"] is None
    # seconds older than the longest window are dropped as new ones arrive
    w.add(3000.0, 1.0, ok=True)
    assert all(s.t > 3000 - 900 for s in w.seconds)
    assert w.total_calls == 9


def test_stats_and_prometheus_agree() -> None:
    stats = GatewayStats()
    stats.begin("svc")
    assert stats.in_flight_of("svc") == 1
    stats.end("svc")
    stats.observe("svc", "1", 200, 0.01)
    stats.observe("svc", "1", 503, 0.02)
    view = stats.service_stats("svc")
    assert view["total"] == {"calls": 2, "success": 1, "failed": 1, "since": stats.started_at}
    assert view["in_flight"] == 0
    counts = {s.labels["code_class"]: s.value for m in stats.requests.collect()
              for s in m.samples if s.name.endswith("_total")}
    assert counts == {"2xx": 1.0, "5xx": 1.0}
    assert code_class(404) == "4xx" and code_class(299) == "2xx"


def test_events_are_kept_for_the_retention_then_pruned(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "registry.db")
    now = time.time()
    for age, version, reason in ((10 * 86400, 1, "Ancient"), (3600, 1, "BuildSucceeded"),
                                 (60, 2, "BuildStarted"), (10, 2, "TrafficSwitched")):
        store.add_event(EventRecord(now - age, "svc", "svc", version, "Normal", reason, "m"))
    store.add_event(EventRecord(now, "other", "svc", 2, "Normal", "FromOtherService", "m"))
    assert [e.reason for e in store.list_events("svc", version=2)] == [
        "BuildStarted", "TrafficSwitched"]
    assert [e.reason for e in store.list_model_events("svc", 2)] == [
        "BuildStarted", "TrafficSwitched", "FromOtherService"]
    assert prune_events(store, 7 * 86400, now=now) == 1
    assert [e.reason for e in store.list_events("svc")] == [
        "BuildSucceeded", "BuildStarted", "TrafficSwitched"]
    assert prune_events(store, 0, now=now) == 0  # 0 keeps events forever
    assert prune_events(store, 120, now=now) == 1
    assert [e.reason for e in store.list_events("svc")] == ["BuildStarted", "TrafficSwitched"]
    store.close()
