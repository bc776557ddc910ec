"""The registry's Prometheus metrics: what the control plane knows.

Desired and ready replicas and the phase of each service (read from the store at scrape
time), async task queue sizes, build durations (observed when the controller folds a
finished build into its version) and reconcile passes. The gateway's ``/metrics`` fetches
this exposition over the ``Registry.Metrics`` RPC and serves it after its own, so one
scrape of the gateway sees the platform.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

BUILD_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0,
                 1800.0)
PHASES = ("pending", "deploying", "running", "concerning", "failed", "stopped")
TASK_STATES = ("queued", "running", "succeeded", "failed", "cancelled")


class RegistryMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.build_seconds = Histogram(
            "modelport_build_duration_seconds", "Environment builds, from start to finish "
            "(a cached build takes ~0)", ["outcome", "cached"], buckets=BUILD_BUCKETS,
            registry=self.registry)
        self.reconcile_seconds = Histogram(
            "modelport_reconcile_duration_seconds", "Controller passes over every service",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry)
        self.actions = Counter(
            "modelport_controller_actions", "Actions the controller carried out",
            ["action", "outcome"], registry=self.registry)
        self._store: Any = None

    def attach_store(self, store: Any) -> None:
        """Read services and tasks from ``store`` at scrape time."""
        if self._store is None:
            self.registry.register(_StoreCollector(store))
        self._store = store

    def observe_build(self, state: str, cached: bool, started_at: float,
                      finished_at: float) -> None:
        if started_at and finished_at >= started_at:
            self.build_seconds.labels(state, "true" if cached else "false").observe(
                finished_at - started_at)

    def exposition(self) -> str:
        return generate_latest(self.registry).decode()


class _StoreCollector(Collector):
    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        desired = GaugeMetricFamily("modelport_service_replicas_desired", "Replicas a "
                                    "service's spec asks for", labels=["service"])
        ready = GaugeMetricFamily("modelport_service_replicas_ready", "Ready replicas of the "
                                  "version a service serves", labels=["service"])
        phase = GaugeMetricFamily("modelport_service_phase", "1 for the phase a service is in",
                                  labels=["service", "phase"])
        serving = GaugeMetricFamily("modelport_service_serving_version", "The model version "
                                    "a service serves (0: none yet)", labels=["service"])
        for svc in self.store.list_services():
            st = svc.status
            desired.add_metric([svc.name], svc.spec.replicas)
            ready.add_metric([svc.name], st.get("ready_replicas", 0))
            serving.add_metric([svc.name], st.get("serving_version", 0))
            current = st.get("phase", "pending")
            for p in PHASES:
                phase.add_metric([svc.name, p], 1 if p == current else 0)
        yield from (desired, ready, phase, serving)
        yield from self._tasks()

    def _tasks(self) -> Iterator[Any]:
        db = getattr(self.store, "db", None)
        if db is None:
            return
        try:
            rows = db.execute("SELECT service, state, COUNT(*) FROM tasks "
                              "GROUP BY service, state").fetchall()
        except sqlite3.Error:  # no async tasks table (yet): nothing to report
            return
        tasks = GaugeMetricFamily("modelport_tasks", "Async inference tasks by state "
                                  "(queued = the task queue size)", labels=["service", "state"])
        counts = {(r[0], r[1]): r[2] for r in rows}
        for service in sorted({s for s, _ in counts}):
            for state in TASK_STATES:
                tasks.add_metric([service, state], counts.get((service, state), 0))
        yield tasks
        yield from self._batches(db)

    def _batches(self, db: sqlite3.Connection) -> Iterator[Any]:
        try:
            rows = db.execute(
                "SELECT j.id, j.service, i.state, COUNT(*) FROM batch_jobs j JOIN batch_items "
                "i ON i.batch = j.id WHERE j.state IN ('queued','running') "
                "OR j.finished_at > strftime('%s','now') - 3600 "
                "GROUP BY j.id, i.state").fetchall()
        except sqlite3.Error:  # no batch tables (yet)
            return
        items = GaugeMetricFamily("modelport_batch_items", "Items of batch jobs running or "
                                  "finished in the last hour, by state",
                                  labels=["batch", "service", "state"])
        for batch, service, state, n in rows:
            items.add_metric([batch, service, state], n)
        yield items


#: the registry process's metrics (one store, one controller per process)
METRICS = RegistryMetrics()
