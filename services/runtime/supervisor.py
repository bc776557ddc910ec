"""Replicas on this host: start, health-check, restart with backoff, stop.

Each replica has one task running its life: start the worker (through the backend), run
``setup``, serve while it lives, and when it dies, back off and start again (1s, 2s,
4s ... capped at 30s; the count resets after 60s of health). A replica whose setup
raises is ``failed`` with the reason and is retried on the same backoff.

States: starting -> ready; ready -> restarting (it died) -> ready; starting/restarting ->
failed (could not start or set up; retried) -> ready; ready <-> unready (its readiness
probe fails, probes.py); any -> stopped. A replica asking for
GPUs is ``pending`` (with the reason) until the GPU inventory (``gpus.py``) can place it;
it keeps its GPUs across restarts and gives them back when it stops.

The backend is chosen per replica (``spec.runtime``): ``process`` or ``docker``.

A replica whose config.json declares ``batching`` has a ``Batcher``
(``dataplane/batching.py``); ``serving`` hands it, with the worker link, to the data plane
(``dataplane/calls.py``), so every caller is batched without knowing it. Calls themselves
are not made here: this module owns the replicas' lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context

from modelport.errors import Kind, ModelportError
from modelport.worker.exit_codes import EXIT_MEMORY_LIMIT
from services.runtime import replica_log
from services.runtime.backends import Backend, ReplicaHandle, ReplicaSpec
from services.runtime.dataplane.batching import Batcher, BatchPolicy
from services.runtime.gpus import GpuInventory
from services.runtime.probes import Probes, startup_failure
from services.runtime.shim_install import install_shim
from services.runtime.worker.errors import describe_exit
from services.telemetry import tracing

log = logging.getLogger(__name__)
_tracer = tracing.tracer("modelport.runtime")

_REPLICA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# ---------------------------------------------------------------------- replica state


@dataclass(frozen=True)
class ReplicaInfo:
    id: str
    service: str
    version: int
    state: str  # starting | ready | restarting | failed | stopped
    pid: int | None
    restarts: int
    message: str
    log_path: Path
    started_at: float | None  # unix time the current process started
    runtime: str = "process"
    gpus: tuple[str, ...] = ()  # the GPUs it holds
    last_exit: str = ""  # why it last died or failed (kept once it is ready again)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["log_path"] = str(self.log_path)
        return out


@dataclass(slots=True)
class Serving:
    """A replica as the data plane sees it: its worker link (None when it has none open),
    its batcher (None unless config.json asks for batching) and its default timeout."""

    link: Any  # services/runtime/worker/link.py WorkerLink | None
    batcher: Batcher | None
    timeout_s: float | None


class _Replica:
    def __init__(self, spec: ReplicaSpec, directory: Path) -> None:
        self.spec = spec
        self.dir = directory
        self.state = "starting"
        self.message = ""
        self.restarts = 0
        self.pid: int | None = None
        self.started_at: float | None = None
        self.handle: ReplicaHandle | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self.wake = asyncio.Event()
        self.kill_reason = ""
        self.last_exit = ""
        #: groups requests into predict_batch calls (config.json "batching"), else None
        self.batcher: Batcher | None = None

    @property
    def id(self) -> str:
        return self.spec.replica_id

    @property
    def service(self) -> str:
        return self.spec.service

    @property
    def version(self) -> int:
        return self.spec.version

    def info(self) -> ReplicaInfo:
        return ReplicaInfo(id=self.spec.replica_id, service=self.spec.service,
                           version=self.spec.version, state=self.state, pid=self.pid,
                           restarts=self.restarts, message=self.message,
                           log_path=self.dir / "replica.log", started_at=self.started_at,
                           runtime=self.spec.runtime, gpus=tuple(self.spec.gpus or ()),
                           last_exit=self.last_exit)

    def log_line(self, text: str) -> None:
        """A supervisor note in the replica log, between the model's own lines."""
        with contextlib.suppress(OSError):
            replica_log.note(self.dir, text)


class Supervisor:
    """The replicas of this host. ``start`` returns at once; ``list``/``get`` show progress."""

    def __init__(self, work_dir: Path, backend: Backend | None = None, *,
                 restart_initial_s: float = 1.0, restart_max_s: float = 30.0,
                 healthy_reset_s: float = 60.0, health_interval_s: float = 10.0,
                 health_timeout_s: float = 10.0, health_failures: int = 3,
                 stop_grace_s: float = 10.0, gpus: GpuInventory | None = None) -> None:
        self.work_dir = Path(work_dir)
        #: services/runtime/containment.py Containment for process workers (set by server.py;
        #: None: resource limits only, as this process's user)
        self.containment: Any = None
        self._backends: dict[str, Backend] = {backend.name: backend} if backend else {}
        #: this host's GPUs and who holds them (none unless the runtime found or was given some)
        self.gpus = gpus if gpus is not None else GpuInventory([], "none")
        self.restart_initial_s = restart_initial_s
        self.restart_max_s = restart_max_s
        self.healthy_reset_s = healthy_reset_s
        self.health_interval_s = health_interval_s
        self.health_timeout_s = health_timeout_s
        self.health_failures = health_failures
        self.stop_grace_s = stop_grace_s
        self._replicas: dict[str, _Replica] = {}
        #: services/runtime/metrics.py RuntimeMetrics, when the runtime keeps metrics
        self.metrics: Any = None

    async def _get_backend(self, name: str = "process") -> Backend:
        backend = self._backends.get(name)
        if backend is None:
            shim = await asyncio.to_thread(install_shim, self.work_dir / "shim")
            if name == "docker":
                from services.runtime.backends.docker import DockerBackend

                backend = DockerBackend(shim.parent, self.work_dir)
            else:
                from services.runtime.backends.process import ProcessBackend

                backend = ProcessBackend(shim.parent, self.containment)
            backend = self._backends.setdefault(name, backend)
        return backend

    # ------------------------------------------------------------------ lifecycle

    async def start(self, spec: ReplicaSpec) -> ReplicaInfo:
        """Begin running a replica; returns at once in state ``starting``."""
        if not _REPLICA_ID.match(spec.replica_id):
            raise ModelportError(Kind.INVALID, "replica.bad_id",
                                 f"replica id {spec.replica_id!r} is not usable",
                                 fix="use letters, digits, '.', '_' and '-' (at most 128)")
        current = self._replicas.get(spec.replica_id)
        if current is not None and current.state != "stopped":
            raise ModelportError(Kind.CONFLICT, "replica.exists",
                                 f"replica {spec.replica_id} is already {current.state}",
                                 fix="stop it first, or use another replica id")
        if spec.runtime not in ("process", "docker"):
            raise ModelportError(Kind.INVALID, "replica.runtime_unknown",
                                 f"unknown runtime {spec.runtime!r}",
                                 fix="use `process` or `docker`")
        await self._get_backend(spec.runtime)
        replica = _Replica(spec, self.work_dir / "replicas" / spec.replica_id)
        policy = BatchPolicy.from_config(spec.config)
        if policy is not None:
            replica.batcher = Batcher(policy, lambda: self._ready_link(replica),
                                      spec.replica_id, self._batch_observer(spec))
        replica.dir.mkdir(parents=True, exist_ok=True)
        replica_log.write_meta(replica.dir, {"replica_id": spec.replica_id,
                                             "service": spec.service, "version": spec.version})
        self._replicas[spec.replica_id] = replica
        replica.task = asyncio.create_task(self._run(replica), name=f"replica-{spec.replica_id}")
        return replica.info()

    async def stop(self, replica_id: str) -> ReplicaInfo:
        """Graceful shutdown, then SIGTERM, then SIGKILL of the replica's process group."""
        replica = self._require(replica_id)
        if replica.state == "stopped":
            return replica.info()
        replica.stopping = True
        replica.wake.set()
        if replica.batcher is not None:
            replica.batcher.close(ModelportError(
                Kind.UNAVAILABLE, "replica.stopped", f"replica {replica_id} was stopped",
                fix="retry; another replica will serve it"))
        if replica.task is not None:
            replica.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await replica.task
        if replica.handle is not None:
            await replica.handle.stop(self.stop_grace_s)
        await self.gpus.release(replica_id)
        replica.state = "stopped"
        replica.message = ""
        replica.log_line("stopped")
        replica_log.release(replica.dir)
        return replica.info()

    def list(self) -> list[ReplicaInfo]:
        return [r.info() for r in self._replicas.values()]

    def live(self) -> list[Any]:
        """The replicas themselves, not snapshots (``id``, ``service``, ``version``,
        ``state``, ``message``, read-only): admission looks them up on every request, and
        ``list()`` builds a ReplicaInfo (and a log path) per replica each time."""
        return list(self._replicas.values())

    def get(self, replica_id: str) -> ReplicaInfo | None:
        replica = self._replicas.get(replica_id)
        return replica.info() if replica is not None else None

    async def close(self) -> None:
        """Stop every replica."""
        await asyncio.gather(*(self.stop(rid) for rid, r in list(self._replicas.items())
                               if r.state != "stopped"), return_exceptions=True)

    # ------------------------------------------------------------------ data plane

    def serving(self, replica_id: str, ready: bool = True) -> Serving:
        """What a call onto this replica goes through (``dataplane/calls.py``). Raises
        ``replica.not_found``, and with ``ready`` ``replica.not_ready``, the reason
        included."""
        replica = self._require(replica_id)
        if ready:
            link: Any = self._ready_link(replica)
        else:
            handle = replica.handle
            link = handle.link if handle is not None and not handle.link.closed else None
        return Serving(link, replica.batcher, replica.spec.timeout_s)

    def _require(self, replica_id: str) -> _Replica:
        replica = self._replicas.get(replica_id)
        if replica is None:
            raise ModelportError(Kind.NOT_FOUND, "replica.not_found",
                                 f"no replica {replica_id!r} on this runtime")
        return replica

    def _batch_observer(self, spec: ReplicaSpec) -> Any:
        """Records each batch's size in the runtime metrics (when they are kept)."""
        def observe(size: int) -> None:
            observe_batch = getattr(self.metrics, "observe_batch", None)
            if observe_batch is not None:
                observe_batch(spec.service, spec.version, size)
        return observe

    def mark_lost(self, replica_id: str) -> None:
        """A request found the replica's worker gone before its ``_run`` saw the exit:
        admission sends nothing more to it while it restarts (``_run`` then says why)."""
        r = self._replicas.get(replica_id)
        if r is not None and r.state == "ready" and (r.handle is None or r.handle.link.closed):
            r.state = "restarting"

    def _ready_link(self, replica: _Replica) -> Any:
        handle = replica.handle
        if replica.state != "ready" or handle is None or handle.link.closed:
            why = f": {replica.message}" if replica.message else ""
            raise ModelportError(Kind.UNAVAILABLE, "replica.not_ready",
                                 f"replica {replica.spec.replica_id} is {replica.state}{why}",
                                 fix="retry shortly; see the replica log if it keeps failing")
        return handle.link

    # ------------------------------------------------------------------ the replica's life

    async def _run(self, r: _Replica) -> None:
        attempt = 0
        backend = await self._get_backend(r.spec.runtime)
        await self._place_on_gpus(r)
        # the first start joins the trace of whoever asked for it (StartReplica from the
        # controller); restarts are traces of their own
        first_context = otel_context.get_current()
        while not r.stopping:
            ready_since: float | None = None
            failed = False
            r.kill_reason = ""
            try:
                r.started_at = time.time()
                began = time.monotonic()
                with tracing.span(_tracer, "replica.start", {
                        "modelport.service": r.spec.service, "modelport.version":
                        r.spec.version, "modelport.replica_id": r.spec.replica_id,
                        "modelport.restarts": r.restarts},
                        context=first_context if r.restarts == 0 else otel_context.Context()):
                    r.handle = await backend.start(r.spec, r.dir)
                    r.pid = r.handle.pid
                    if r.spec.kind == "image":  # ready when its health check first passes
                        await r.handle.link.wait_ready(self.probes(r.spec).startup)
                    else:
                        await r.handle.link.setup(
                            r.spec.config or None,
                            timeout_s=self.probes(r.spec).startup_timeout_s)
                if self.metrics is not None:
                    self.metrics.replica_ready(r.spec, time.monotonic() - began)
            except ModelportError as err:
                failed = True
                reason = err.message
                if err.code == "worker.setup_timeout":  # the startup probe (probes.py)
                    reason = startup_failure(self.probes(r.spec).startup_timeout_s,
                                             _health_of(r.spec) is not None)
                r.state = "failed"
                r.message = r.last_exit = reason
                r.log_line(f"failed: {reason}")
                if r.handle is not None:
                    await r.handle.stop(grace_s=2.0)
            except Exception as err:  # our bug: keep the replica loop alive, say what happened
                log.exception("replica %s: start failed", r.spec.replica_id)
                failed = True
                reason = f"internal error while starting: {type(err).__name__}: {err}"
                r.state = "failed"
                r.message = reason
                if r.handle is not None:
                    r.handle.kill()
            else:
                r.state = "ready"
                r.message = ""
                ready_since = time.monotonic()
                health = asyncio.create_task(self._health_loop(r))
                try:
                    code = await r.handle.wait()
                finally:
                    health.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await health
                if r.stopping:
                    return
                reason = r.kill_reason or _exit_reason(code, str(
                    r.spec.resources.get("memory") or ""))
                r.state = "restarting"
                r.last_exit = reason
                if self.metrics is not None:
                    self.metrics.replica_died(r.spec)
                log.warning("replica %s %s", r.spec.replica_id, reason)
            if r.stopping:
                return
            if ready_since is not None and time.monotonic() - ready_since >= self.healthy_reset_s:
                attempt = 0
            delay = restart_delay(attempt, self.restart_initial_s, self.restart_max_s)
            attempt += 1
            if failed:
                r.message = f"{reason} (retrying in {delay:g}s)"
            else:
                r.message = f"{reason}, restarting in {delay:g}s"
                r.log_line(r.message)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await r.wake.wait()
            if r.stopping:
                return
            r.restarts += 1
            r.message = f"{reason} (retrying now)" if failed else f"{reason}; restarting"

    async def _place_on_gpus(self, r: _Replica) -> None:
        """Take the GPUs the replica asks for, ``pending`` (saying why) until they are free.

        A replica asking for none sees none when this host schedules GPUs."""
        count = int(r.spec.resources.get("gpu") or 0)
        if count <= 0:
            if self.gpus.gpus:
                r.spec = dataclasses.replace(r.spec, gpus=[])
            return

        def waiting(reason: str) -> None:
            if r.message != reason:
                r.log_line(f"pending: {reason}")
            r.state, r.message = "pending", reason

        gpus = await self.gpus.acquire(r.spec.replica_id, count, on_wait=waiting)
        r.spec = dataclasses.replace(r.spec, gpus=gpus)
        r.log_line(f"placed on GPU {', '.join(gpus)}")
        r.state, r.message = "starting", ""

    def probes(self, spec: ReplicaSpec) -> Probes:
        """The replica's startup/readiness/liveness probes: this supervisor's defaults with
        config.json ``health`` applied (probes.py)."""
        probes = Probes.defaults(self.health_interval_s, self.health_timeout_s,
                                 self.health_failures, spec.startup_timeout_s
                                 ).with_health(_health_of(spec))
        if spec.kind == "image":
            probes = image_probes(probes, _health_of(spec), spec.startup_timeout_s)
        return probes

    async def _health_loop(self, r: _Replica) -> None:
        """Ask the worker for health while it runs: ``readiness.failure_threshold`` misses
        in a row take it out of load balancing (``unready``) until it answers again;
        ``liveness.failure_threshold`` misses kill it (it is restarted)."""
        if self.health_interval_s <= 0 and _health_of(r.spec) is None:
            return
        probes = self.probes(r.spec)
        misses = 0
        assert r.handle is not None
        link = r.handle.link
        image = r.spec.kind == "image"  # its initial delay was spent before it was ready
        await asyncio.sleep(0 if image else probes.initial_delay_s)
        while not link.closed:
            await asyncio.sleep(probes.period_s)
            try:
                await link.health(probes.timeout_s)
                misses = 0
                if r.state == "unready":
                    r.state, r.message = "ready", ""
                    r.log_line("readiness probe passed: taking requests again")
            except ModelportError as err:
                if link.closed:
                    return
                misses += 1
                if image:
                    r.log_line(f"health check failed ({misses} in a row): {err.message}")
                if misses >= probes.liveness.failure_threshold and image:
                    r.kill_reason = (f"health check failed {misses} times in a row "
                                     f"({err.message}): liveness probe failed")
                    r.log_line(f"restarting the container: {r.kill_reason}")
                    r.handle.kill()
                    return
                if misses >= probes.liveness.failure_threshold:
                    r.kill_reason = (f"stopped answering health checks ({misses} missed, "
                                     f"{probes.timeout_s:g}s each: liveness probe failed)")
                    r.log_line(f"killing the worker: {r.kill_reason}")
                    r.handle.kill()
                    return
                if misses >= probes.readiness.failure_threshold and r.state == "ready":
                    r.state = "unready"
                    r.message = (f"readiness probe failed: {misses} health check(s) missed; "
                                 "no requests until it answers again")
                    r.log_line(r.message)


def image_probes(probes: Probes, health: dict[str, Any] | None, startup_s: float) -> Probes:
    """A custom image's probes: it is ready when its check first passes after the initial
    delay, checked every period, for at least ``startup_s`` (the flat ``failure_threshold``
    counts failures once it is running) unless ``health.startup`` says otherwise."""
    if isinstance(health, dict) and isinstance(health.get("startup"), dict):
        return probes
    period = probes.readiness.period_s if isinstance(health, dict) and health.get(
        "period_seconds") else 1.0
    tries = max(probes.startup.failure_threshold, math.ceil(startup_s / period))
    startup = dataclasses.replace(probes.startup, initial_delay_s=probes.initial_delay_s,
                                  period_s=period, failure_threshold=tries)
    return dataclasses.replace(probes, startup=startup)


def _health_of(spec: ReplicaSpec) -> dict[str, Any] | None:
    health = (spec.config or {}).get("health")
    return health if isinstance(health, dict) else None


def restart_delay(attempt: int, initial_s: float = 1.0, max_s: float = 30.0) -> float:
    """Seconds before restart number ``attempt + 1``: 1, 2, 4, 8 ... capped at ``max_s``."""
    return min(initial_s * (2 ** min(attempt, 32)), max_s)


def _exit_reason(code: int, memory: str = "") -> str:
    """``exited with code 1`` / ``was killed by SIGKILL`` / ``ran out of its memory limit
    (512Mi) and was stopped``."""
    if code == EXIT_MEMORY_LIMIT:
        return f"ran out of its memory limit ({memory or 'set'}) and was stopped"
    return f"exited with code {code}" if code >= 0 else describe_exit(code)
