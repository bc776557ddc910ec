"""One Predict as the runtime observes it: request id in the logs, spans, metrics.

Spans, under the runtime's gRPC server span: ``queue.wait`` (choosing a ready replica,
waiting for one while it starts), ``replica.call`` (the worker round trip), and under that
the worker's own ``replica.request`` with ``worker.queue`` / ``worker.preprocess`` /
``worker.predict`` / ``worker.postprocess``, recorded from the timings the worker reports
(resource ``modelport-replica``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from modelport.errors import ModelportError
from services.telemetry import logs, tracing

log = logging.getLogger(__name__)
_tracer = tracing.tracer("modelport.runtime")


class Observation:
    """Per request: cheap when tracing is off (no attribute dicts, no spans) and with the
    metrics' label children bound once per service version (``RuntimeMetrics.bound``)."""

    __slots__ = ("metrics", "bound", "service", "version", "request_id", "status", "error",
                 "replica_id", "_token", "_start", "_tried")

    def __init__(self, metrics: Any, service: str, version: int, request_id: str) -> None:
        self.metrics = metrics
        self.bound = metrics.bound(service, version) if metrics is not None else None
        self.service = service
        self.version = version
        self.request_id = request_id
        self.status = 200
        self.error: ModelportError | None = None
        self.replica_id = ""
        self._token: Any = None
        self._start = 0.0
        self._tried = False  # take() found no free slot: pick() only queues

    def __enter__(self) -> Observation:
        self._token = logs.bind_request_id(self.request_id)
        self._start = time.perf_counter()
        return self

    def failed(self, err: ModelportError) -> None:
        """The request failed with ``err``: its status, and the worker's timings if it ran."""
        self.status = err.http_status
        self.error = err
        timings = getattr(err, "worker_timings", None)
        if timings and self.replica_id:
            self.worker(timings, self.replica_id)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._record(exc)
        logs.REQUEST_ID.reset(self._token)

    def begin(self) -> None:
        """``__enter__`` for a request run by callbacks (the data socket's relay), which
        has no context of its own to bind the request id in: see ``end``."""
        self._start = time.perf_counter()

    def end(self, exc: BaseException | None = None) -> None:
        """``__exit__`` for a request run by callbacks; the request id is bound only
        around what is logged."""
        self._record(exc, bind=True)

    def _record(self, exc: BaseException | None, bind: bool = False) -> None:
        if exc is not None and self.status < 400:
            self.status = exc.http_status if isinstance(exc, ModelportError) else 500
        if self.status >= 500:  # with the request id (and trace id) of this request
            token = logs.bind_request_id(self.request_id) if bind else None
            try:
                err = self.error
                log.warning("predict on %s v%s failed: %s", self.service, self.version,
                            f"{err.code}: {err.message}" if err else repr(exc),
                            extra={"status": self.status, "replica_id": self.replica_id})
            finally:
                if token is not None:
                    logs.REQUEST_ID.reset(token)
        if self.bound is not None:
            self.bound.request(self.status, time.perf_counter() - self._start)

    def attributes(self, replica_id: str = "") -> dict[str, Any]:
        attrs: dict[str, Any] = {"modelport.service": self.service,
                                 "modelport.version": self.version,
                                 "modelport.request_id": self.request_id}
        if replica_id:
            attrs["modelport.replica_id"] = replica_id
        return attrs

    def take(self, admission: Any) -> str | None:
        """A free slot taken at once (no queueing, so no ``queue.wait`` span to record:
        only when tracing is off), timed as queue wait; None: ``pick`` waits for one."""
        if tracing.enabled():
            return None
        began = time.perf_counter()
        rid = admission.try_acquire(self.service, self.version)
        self._tried = True
        if rid is not None:
            self.replica_id = rid
            if self.bound is not None:
                self.bound.wait.observe(time.perf_counter() - began)
        return rid

    async def pick(self, admission: Any, timeout_s: float) -> str:
        """The replica for this request, timed as queue wait."""
        began = time.perf_counter()
        pick = admission.queue if self._tried else admission.acquire
        with tracing.span(_tracer, "queue.wait", self.attributes()
                          if tracing.enabled() else None):
            if self.metrics is None:
                self.replica_id = await pick(self.service, self.version, timeout_s)
                return self.replica_id
            waiting, key = self.metrics.waiting, (self.service, self.version)
            waiting[key] += 1
            try:
                self.replica_id = await pick(self.service, self.version, timeout_s)
            finally:
                waiting[key] -= 1
                if waiting[key] <= 0:
                    del waiting[key]
            assert self.bound is not None
            self.bound.wait.observe(time.perf_counter() - began)
            return self.replica_id

    def call(self, replica_id: str) -> Any:
        """``with obs.call(rid) as span:`` around the worker round trip."""
        if not tracing.enabled():
            return tracing.span(_tracer, "replica.call")  # the shared no-op
        return tracing.span(_tracer, "replica.call", self.attributes(replica_id))

    def worker(self, timings: Any, replica_id: str, parent: Any = None) -> None:
        """The worker's reported phases: histograms, and spans under ``parent``."""
        if not timings:
            return
        if self.bound is not None:
            self.bound.timings(timings)
        if tracing.enabled():
            tracing.record_worker_timings(timings, self.attributes(replica_id), parent)
