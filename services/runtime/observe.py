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
    def __init__(self, metrics: Any, service: str, version: int, request_id: str) -> None:
        self.metrics = metrics
        self.service = service
        self.version = version
        self.request_id = request_id
        self.status = 200
        self.error: ModelportError | None = None
        self.replica_id = ""
        self._token: Any = None
        self._start = 0.0

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
        if exc is not None and self.status < 400:
            self.status = exc.http_status if isinstance(exc, ModelportError) else 500
        if self.status >= 500:  # with the request id (and trace id) of this request
            err = self.error
            log.warning("predict on %s v%s failed: %s", self.service, self.version,
                        f"{err.code}: {err.message}" if err else repr(exc),
                        extra={"status": self.status, "replica_id": self.replica_id})
        if self.metrics is not None:
            self.metrics.observe_request(self.service, self.version, self.status,
                                         time.perf_counter() - self._start)
        logs.REQUEST_ID.reset(self._token)

    def attributes(self, replica_id: str = "") -> dict[str, Any]:
        attrs: dict[str, Any] = {"modelport.service": self.service,
                                 "modelport.version": self.version,
                                 "modelport.request_id": self.request_id}
        if replica_id:
            attrs["modelport.replica_id"] = replica_id
        return attrs

    async def pick(self, dispatcher: Any, timeout_s: float) -> str:
        """The replica for this request, timed as queue wait."""
        began = time.perf_counter()
        with tracing.span(_tracer, "queue.wait", self.attributes()):
            if self.metrics is None:
                self.replica_id = await dispatcher.pick(self.service, self.version, timeout_s)
                return self.replica_id
            with self.metrics.waiting_for_replica(self.service, self.version):
                self.replica_id = await dispatcher.pick(self.service, self.version, timeout_s)
            self.metrics.observe_wait(self.service, self.version, time.perf_counter() - began)
            return self.replica_id

    def call(self, replica_id: str) -> Any:
        """``with obs.call(rid) as span:`` around the worker round trip."""
        return tracing.span(_tracer, "replica.call", self.attributes(replica_id))

    def worker(self, timings: Any, replica_id: str, parent: Any = None) -> None:
        """The worker's reported phases: histograms, and spans under ``parent``."""
        if not timings:
            return
        if self.metrics is not None:
            self.metrics.observe_timings(self.service, self.version, timings)
        tracing.record_worker_timings(timings, self.attributes(replica_id), parent)
