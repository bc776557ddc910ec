"""The runtime's Prometheus metrics, served on ``GET /metrics`` of a loopback HTTP port.

Per service and version: requests the runtime served (by status class), their latency,
time spent waiting for a replica, the worker's phases (queue, preprocess, predict,
postprocess), requests in flight and queued, replicas by state, cold starts and their
duration, restarts. Per replica: CPU, memory, disk I/O of the worker's process tree
(psutil) and, where NVIDIA GPUs exist, GPU memory by process (NVML). Per GPU:
utilisation and memory. Gauges are read at scrape time from the supervisor, so a scrape
always sees the current replicas.

The port is ``MODELPORT_RUNTIME_METRICS_PORT`` (0 = a free one; -1 = off); its URL is
written to ``<home run dir>/runtime-metrics.json`` for tools and tests.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.telemetry.cheap_histogram import CheapHistogram
from services.telemetry.series import LabelCache, code_class

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
COLD_START_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
STATES = ("starting", "ready", "restarting", "failed", "stopped")
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class RuntimeMetrics:
    """What the runtime records as requests pass and replicas come and go."""

    def __init__(self, supervisor: Any, admission: Any) -> None:
        self.supervisor = supervisor
        self.admission = admission
        self.registry = CollectorRegistry()
        ProcessCollector(namespace="modelport_runtime", registry=self.registry)
        r = self.registry
        self.requests = Counter(
            "modelport_runtime_requests", "Predict calls the runtime answered, by service, "
            "version and the HTTP status class of their outcome",
            ["service", "version", "code_class"], registry=r)
        self.latency = CheapHistogram(
            "modelport_runtime_request_duration_seconds", "Predict latency inside the runtime "
            "(replica choice + worker round trip)", ["service", "version"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.queue_wait = CheapHistogram(
            "modelport_queue_wait_seconds", "Time a request waited for a ready replica",
            ["service", "version"], buckets=LATENCY_BUCKETS, registry=r)
        self.phases = CheapHistogram(
            "modelport_worker_phase_seconds", "Time in each phase inside the worker (queue, "
            "preprocess, predict, postprocess, stream)", ["service", "version", "phase"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.cold_starts = Counter(
            "modelport_cold_starts", "Replica starts that reached ready (first starts and "
            "restarts)", ["service", "version"], registry=r)
        self.cold_start_seconds = Histogram(
            "modelport_cold_start_duration_seconds", "From spawning the worker to ready "
            "(setup done)", ["service", "version"], buckets=COLD_START_BUCKETS, registry=r)
        self.restarts = Counter(
            "modelport_replica_restarts", "Replicas that died and are restarted",
            ["service", "version"], registry=r)
        self.batch_size = Histogram(
            "modelport_batch_size", "Requests per predict_batch call (adaptive batching)",
            ["service", "version"], buckets=BATCH_SIZE_BUCKETS, registry=r)
        self._labels = LabelCache()
        self._bound: dict[tuple[str, int], Bound] = {}
        #: requests waiting for a replica, by (service, version) (counted by observation.py)
        self.waiting: Tally[tuple[str, int]] = Tally()
        r.register(_LiveCollector(self))

    # ---------------------------------------------------------------- recording

    def bound(self, service: str, version: int) -> Bound:
        """The request metrics of one service version, their label children bound once."""
        key = (service, version)
        bound = self._bound.get(key)
        if bound is None:
            bound = self._bound[key] = Bound(self, service, str(version))
        return bound

    def observe_request(self, service: str, version: int, http_status: int,
                        seconds: float) -> None:
        self.bound(service, version).request(http_status, seconds)

    def observe_batch(self, service: str, version: int, size: int) -> None:
        self._labels.child(self.batch_size, service, str(version)).observe(size)

    def observe_wait(self, service: str, version: int, seconds: float) -> None:
        self.bound(service, version).wait.observe(seconds)

    def observe_timings(self, service: str, version: int, timings: Any) -> None:
        self.bound(service, version).timings(timings)

    def replica_ready(self, spec: Any, seconds: float) -> None:
        v = str(spec.version)
        self.cold_starts.labels(spec.service, v).inc()
        self.cold_start_seconds.labels(spec.service, v).observe(seconds)

    def replica_died(self, spec: Any) -> None:
        self.restarts.labels(spec.service, str(spec.version)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class Bound:
    """One service version's request metrics with their label children looked up once:
    ``labels()`` validates and hashes its arguments on every call, and each request
    records up to seven observations."""

    __slots__ = ("metrics", "service", "version", "latency", "wait", "_codes", "_phases")

    def __init__(self, metrics: RuntimeMetrics, service: str, version: str) -> None:
        self.metrics = metrics
        self.service = service
        self.version = version
        self.latency = metrics.latency.labels(service, version)
        self.wait = metrics.queue_wait.labels(service, version)
        self._codes: dict[int, Any] = {}
        self._phases: dict[str, Any] = {}

    def request(self, http_status: int, seconds: float) -> None:
        counter = self._codes.get(http_status // 100)
        if counter is None:
            counter = self._codes[http_status // 100] = self.metrics.requests.labels(
                self.service, self.version, code_class(http_status))
        counter.inc()
        self.latency.observe(seconds)

    def timings(self, timings: Any) -> None:
        """The worker's phases (``[[name, offset ms, duration ms], ...]``)."""
        phases = timings.get("phases") if isinstance(timings, dict) else None
        for item in phases or ():
            try:
                name, _, dur = item
                child = self._phases.get(name)
                if child is None:
                    child = self._phases[name] = self.metrics.phases.labels(
                        self.service, self.version, str(name))
                child.observe(float(dur) / 1e3)
            except (TypeError, ValueError):
                continue


class _LiveCollector(Collector):
    """Gauges read at scrape time: replicas, in-flight and queued requests, resources."""

    def __init__(self, metrics: RuntimeMetrics) -> None:
        self.m = metrics
        self._procs: dict[int, Any] = {}
        self._gpu = _Gpu()

    def collect(self) -> Iterator[Any]:
        replicas = self.m.supervisor.list()
        in_flight = dict(self.m.admission.in_flight)
        states = GaugeMetricFamily("modelport_replicas", "Replicas on this runtime by state",
                                   labels=["service", "version", "state"])
        ready = GaugeMetricFamily("modelport_replicas_ready", "Ready replicas on this runtime",
                                  labels=["service", "version"])
        flying = GaugeMetricFamily("modelport_runtime_in_flight", "Requests being served "
                                   "by this runtime's replicas", labels=["service", "version"])
        queued = GaugeMetricFamily("modelport_queue_depth", "Requests waiting: for a ready "
                                   "replica, or behind another request in a worker",
                                   labels=["service", "version"])
        counts: Tally[tuple[str, int, str]] = Tally()
        load: Tally[tuple[str, int]] = Tally()
        backlog: Tally[tuple[str, int]] = Tally(self.m.waiting)
        for r in replicas:
            counts[(r.service, r.version, r.state)] += 1
            n = in_flight.get(r.id, 0)
            load[(r.service, r.version)] += n
            backlog[(r.service, r.version)] += max(0, n - 1)
        versions = {(s, v) for s, v, _ in counts} | set(backlog)
        for service, version in sorted(versions):
            v = str(version)
            for state in STATES:
                states.add_metric([service, v, state], counts[(service, version, state)])
            ready.add_metric([service, v], counts[(service, version, "ready")])
            flying.add_metric([service, v], load[(service, version)])
            queued.add_metric([service, v], backlog[(service, version)])
        yield from (states, ready, flying, queued)
        yield from self._resources([r for r in replicas if r.pid and r.state != "stopped"])
        yield from self._gpu.collect(replicas)

    def _process(self, pid: int) -> Any:
        import psutil

        proc = self._procs.get(pid)
        if proc is None:
            proc = self._procs[pid] = psutil.Process(pid)
            proc.cpu_percent(None)  # primes the "since the last call" measurement
        return proc

    def _resources(self, replicas: list[Any]) -> Iterator[Any]:
        import psutil

        labels = ["service", "version", "replica"]
        cpu = GaugeMetricFamily("modelport_replica_cpu_percent", "CPU use of the replica's "
                                "worker process since the last scrape (100 = one core)",
                                labels=labels)
        cpu_s = CounterMetricFamily("modelport_replica_cpu_seconds", "CPU time of the "
                                    "replica's processes (user + system)", labels=labels)
        rss = GaugeMetricFamily("modelport_replica_memory_bytes", "Resident memory of the "
                                "replica's processes", labels=labels)
        mem_pct = GaugeMetricFamily("modelport_replica_memory_percent", "Resident memory of "
                                    "the replica's processes, % of the host", labels=labels)
        disk_r = CounterMetricFamily("modelport_replica_disk_read_bytes", "Bytes the "
                                     "replica's processes read from storage", labels=labels)
        disk_w = CounterMetricFamily("modelport_replica_disk_write_bytes", "Bytes the "
                                     "replica's processes wrote to storage", labels=labels)
        alive = set()
        total_mem = psutil.virtual_memory().total
        for r in replicas:
            try:
                root = self._process(r.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            alive.add(r.pid)
            values = [0.0, 0.0, 0, 0, 0]
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    with p.oneshot():
                        values[0] += p.cpu_percent(None) if p is root else 0.0
                        t = p.cpu_times()
                        values[1] += t.user + t.system
                        values[2] += p.memory_info().rss
                        with contextlib.suppress(psutil.Error, AttributeError):
                            io = p.io_counters()
                            values[3] += io.read_bytes
                            values[4] += io.write_bytes
            key = [r.service, str(r.version), r.id]
            cpu.add_metric(key, values[0])
            cpu_s.add_metric(key, values[1])
            rss.add_metric(key, values[2])
            mem_pct.add_metric(key, 100.0 * values[2] / total_mem if total_mem else 0.0)
            disk_r.add_metric(key, values[3])
            disk_w.add_metric(key, values[4])
        for pid in set(self._procs) - alive:
            del self._procs[pid]
        yield from (cpu, cpu_s, rss, mem_pct, disk_r, disk_w)


class _Gpu:
    """NVIDIA GPUs through NVML, when a driver is there; otherwise nothing."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._tried = False

    def _init(self) -> Any:
        if not self._tried:
            self._tried = True
            try:
                import pynvml

                pynvml.nvmlInit()
                self._nvml = pynvml
            except Exception as exc:  # noqa: BLE001 - no driver, no library: no GPU metrics
                log.debug("no GPU metrics: %s", exc)
        return self._nvml

    def collect(self, replicas: list[Any]) -> Iterator[Any]:
        nv = self._init()
        if nv is None:
            return
        util = GaugeMetricFamily("modelport_gpu_utilization_percent", "GPU utilisation",
                                 labels=["gpu", "name"])
        used = GaugeMetricFamily("modelport_gpu_memory_used_bytes", "GPU memory in use",
                                 labels=["gpu", "name"])
        total = GaugeMetricFamily("modelport_gpu_memory_total_bytes", "GPU memory",
                                  labels=["gpu", "name"])
        per_replica = GaugeMetricFamily("modelport_replica_gpu_memory_bytes", "GPU memory "
                                        "held by the replica's processes",
                                        labels=["service", "version", "replica", "gpu"])
        by_pid = {r.pid: r for r in replicas if r.pid and r.state != "stopped"}
        try:
            count = nv.nvmlDeviceGetCount()
            for i in range(count):
                h = nv.nvmlDeviceGetHandleByIndex(i)
                name = nv.nvmlDeviceGetName(h)
                name = name.decode() if isinstance(name, bytes) else str(name)
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                util.add_metric([str(i), name], nv.nvmlDeviceGetUtilizationRates(h).gpu)
                used.add_metric([str(i), name], mem.used)
                total.add_metric([str(i), name], mem.total)
                held: Tally[str] = Tally()
                with contextlib.suppress(nv.NVMLError):
                    for proc in nv.nvmlDeviceGetComputeRunningProcesses(h):
                        owner = _owner(proc.pid, by_pid)
                        if owner is not None and proc.usedGpuMemory:
                            held[owner.id] += proc.usedGpuMemory
                for r in by_pid.values():
                    if held[r.id]:
                        per_replica.add_metric([r.service, str(r.version), r.id, str(i)],
                                               held[r.id])
        except nv.NVMLError as exc:
            log.warning("GPU metrics failed: %s", exc)
            return
        yield from (util, used, total, per_replica)


def _owner(pid: int, by_pid: dict[int, Any]) -> Any:
    """The replica whose worker is ``pid`` or one of its ancestors."""
    import psutil

    with contextlib.suppress(psutil.Error):
        proc: Any = psutil.Process(pid)
        while proc is not None:
            if proc.pid in by_pid:
                return by_pid[proc.pid]
            proc = proc.parent()
    return None


async def serve_metrics(metrics: RuntimeMetrics, host: str, port: int) -> tuple[Any, str]:
    """``GET /metrics`` on ``host:port`` in this event loop; returns (server task, URL)."""
    import asyncio

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(routes=[Route("/metrics", endpoint, methods=["GET"])])
    config = uvicorn.Config(app, host=host, port=port, loop="none", lifespan="off",
                            access_log=False, log_config=None, log_level="warning")

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the runtime owns its signals
            yield

    server = _Server(config)
    task = asyncio.create_task(server.serve(), name="metrics-http")
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("runtime metrics server exited during start")
        if time.monotonic() > deadline:
            raise RuntimeError("runtime metrics server did not start in 10s")
        await asyncio.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    server_task = task
    server_task.server = server  # type: ignore[attr-defined]
    return server_task, f"http://{host}:{bound}/metrics"
