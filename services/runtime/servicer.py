"""gRPC face of the runtime: replica lifecycle RPCs and the Predict data plane."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc

from modelport.errors import ModelportError, not_found
from modelport.v1 import inference_pb2, runtime_pb2, runtime_pb2_grpc
from modelport.worker.values import Result, Value, encode_inputs
from services.rpc.errors import abort, translate_errors
from services.runtime import capacity, replica_log
from services.runtime.backends import ReplicaSpec
from services.runtime.dataplane import calls, forward
from services.runtime.dataplane.admission import Admission
from services.runtime.dataplane.batching import BatchPolicy, admission_slots
from services.runtime.dataplane.observation import Observation
from services.runtime.supervisor import ReplicaInfo, Supervisor
from services.runtime.worker.errors import whole_timeout
from services.runtime.worker.requests import Reply
from services.telemetry import logfiles
from services.wire.predict_frames import to_output, to_values


def replica_to_proto(r: ReplicaInfo, admission: Admission | None = None,
                     direct: Any = None) -> runtime_pb2.Replica:
    out = runtime_pb2.Replica(id=r.id, service=r.service, version=r.version, state=r.state,
                              pid=r.pid or 0, restarts=r.restarts, message=r.message or "",
                              log_path=str(r.log_path or ""), started_at=r.started_at or 0.0,
                              runtime=r.runtime, gpus=list(r.gpus),
                              last_exit=getattr(r, "last_exit", ""))
    if admission is not None:  # its load and whether it is on its way out (admission.py)
        out.in_flight = admission.in_flight.get(r.id, 0)
        out.template = admission.template(r.id)
        out.draining = admission.is_draining(r.id) and r.state != "stopped"
    if direct is not None:  # its version's public gRPC port here (direct_ports.py)
        out.direct_address = direct.address(r.service, r.version)
    return out


def time_left(timeout_s: float, remaining: float | None, waited_s: float = 0.0) -> float | None:
    """The request's timeout less the time it waited in the queue, shortened to the
    caller's own deadline (``remaining``, e.g. gRPC's) when that comes first."""
    own = max(0.001, round(timeout_s - waited_s, 2)) if timeout_s else 0.0
    if remaining is None:
        return own or None
    return min(own, remaining) if own else remaining


class RuntimeServicer(runtime_pb2_grpc.RuntimeServicer):
    #: services/runtime/metrics.py RuntimeMetrics (set by server.py); None records nothing
    metrics: Any = None
    #: services/runtime/direct_ports.py DirectPorts (set by server.py); None: no such ports
    direct_ports: Any = None

    def __init__(self, supervisor: Supervisor, admission: Admission) -> None:
        self.supervisor = supervisor
        self.admission = admission

    @translate_errors
    async def StartReplica(self, request: runtime_pb2.StartReplicaRequest,
                           context: grpc.aio.ServicerContext) -> runtime_pb2.Replica:
        existing = self.supervisor.get(request.replica_id)
        if existing is not None and existing.state != "stopped":
            return replica_to_proto(existing)  # idempotent: a retried start changes nothing
        runtime = request.runtime or "process"
        spec = ReplicaSpec(
            replica_id=request.replica_id, service=request.service, version=request.version,
            kind=request.kind, python=request.artifact if runtime == "process" else "",
            package_dir=Path(request.package_dir),
            config=json.loads(request.config_json or "{}"), env=dict(request.env),
            timeout_s=request.timeout_s or 60.0, runtime=runtime,
            image=request.artifact if runtime == "docker" else "",
            resources={"cpu": request.cpu, "memory": request.memory, "gpu": request.gpu})
        self.admission.configure(
            request.replica_id, request.service,
            admission_slots(spec.config, request.max_concurrency), request.queue_size,
            request.template, pipelining=BatchPolicy.from_config(spec.config) is None)
        return replica_to_proto(await self.supervisor.start(spec), self.admission)

    @translate_errors
    async def StopReplica(self, request: runtime_pb2.StopReplicaRequest,
                          context: grpc.aio.ServicerContext) -> runtime_pb2.Replica:
        info = self.supervisor.get(request.replica_id)
        if info is None:
            return runtime_pb2.Replica(id=request.replica_id, state="stopped")
        if request.drain_s > 0 and info.state != "stopped":  # in-flight requests finish first
            self.admission.stop_later(request.replica_id, request.drain_s)
            return replica_to_proto(info, self.admission)
        await self.supervisor.stop(request.replica_id)
        self.admission.forget(request.replica_id)
        info = self.supervisor.get(request.replica_id) or info
        return replica_to_proto(info)

    @translate_errors
    async def GetCapacity(self, request: runtime_pb2.GetCapacityRequest,
                          context: grpc.aio.ServicerContext) -> runtime_pb2.Capacity:
        return await capacity.report(self.supervisor)

    @translate_errors
    async def ListReplicas(self, request: runtime_pb2.ListReplicasRequest,
                           context: grpc.aio.ServicerContext
                           ) -> runtime_pb2.ListReplicasResponse:
        reps = [r for r in self.supervisor.list()
                if not request.service or r.service == request.service]
        admission = self.admission
        return runtime_pb2.ListReplicasResponse(
            replicas=[replica_to_proto(r, admission, self.direct_ports) for r in reps],
            loads=[runtime_pb2.ServiceLoad(service=ld.service, in_flight=ld.in_flight,
                                           queued=ld.queued, last_request_at=ld.last_request_at,
                                           rejected=ld.rejected)
                   for ld in admission.loads()
                   if not request.service or ld.service == request.service])

    async def Predict(self, request: inference_pb2.PredictRequest,
                      context: grpc.aio.ServicerContext) -> inference_pb2.PredictResponse:
        start = time.perf_counter()
        try:
            rid, result = await self.predict(request.service, request.version,
                                             request.request_id, to_values(request.inputs),
                                             request.timeout_s, request.tensor_outputs,
                                             context.time_remaining)
        except ModelportError as err:
            await abort(context, err)
            raise
        duration = result.duration_ms if result.duration_ms is not None else (
            time.perf_counter() - start) * 1000
        response = inference_pb2.PredictResponse(request_id=request.request_id,
                                                 version=request.version, replica_id=rid,
                                                 duration_ms=duration)
        response.output.CopyFrom(to_output(result))  # `output=` would re-encode it (upb)
        return response

    async def predict(self, service: str, version: int, request_id: str,
                      inputs: dict[str, Value], timeout_s: float, tensor_outputs: bool = False,
                      remaining: Callable[[], float | None] | None = None
                      ) -> tuple[str, Result]:
        """One unary prediction (the gRPC ``Predict``): the Values go to the worker in
        the header form, as a relayed request's do (``relay``)."""
        parts: list[Any] = []
        wire = encode_inputs(inputs, parts)
        rid, reply = await self._serve(service, version, request_id, wire, parts, timeout_s,
                                       tensor_outputs, remaining)
        return rid, reply.decoded()

    async def relay(self, service: str, version: int, request_id: str, inputs: Any,
                    parts: list[Any], timeout_s: float, tensor_outputs: bool = False
                    ) -> tuple[str, Reply]:
        """One unary prediction that came as a frame (the data socket's task path, with
        spans): the header's ``inputs`` and the parts go to the worker as they are, and
        its answer comes back undecoded (``Reply``). See ``_serve``."""
        return await self._serve(service, version, request_id, inputs, parts, timeout_s,
                                 tensor_outputs, None)

    async def _serve(self, service: str, version: int, request_id: str, inputs: Any,
                     parts: list[Any], timeout_s: float, tensor_outputs: bool,
                     remaining: Callable[[], float | None] | None) -> tuple[str, Reply]:
        """One unary prediction, observed (metrics, spans, request-id logs): a slot on a
        replica, the worker round trip (``calls.start``, awaited), the slot back.
        Raises ModelportError."""
        obs = Observation(self.metrics, service, version, request_id)
        admission = self.admission
        with obs:
            try:
                queued_at = time.monotonic()
                rid = obs.take(admission)
                if rid is None:
                    rid = await obs.pick(self.admission, timeout_s)
                took = time.monotonic()
                try:
                    with obs.call(rid) as span:
                        left = time_left(timeout_s, remaining() if remaining else None,
                                         took - queued_at)
                        try:
                            result = await calls.awaited(lambda done: calls.start(
                                self.supervisor, rid, request_id, inputs, parts, left,
                                tensor_outputs, done))
                        except ModelportError as err:
                            raise whole_timeout(err, timeout_s, took - queued_at,
                                                left) from None
                    obs.worker(result.timings, rid, span)
                finally:
                    admission.observe_hold(service, time.monotonic() - took)
                    self.admission.release(rid, service)
            except ModelportError as err:
                obs.failed(err)
                raise
        return rid, result

    async def ForwardHttp(self, request: runtime_pb2.HttpRequest,
                          context: grpc.aio.ServicerContext
                          ) -> AsyncIterator[runtime_pb2.HttpResponsePart]:
        """An HTTP request to a custom image's replica (``dataplane/forward.py``)."""
        try:
            async for part in forward.forward(self.supervisor, self.admission, self.metrics,
                                              request):
                yield part
        except ModelportError as err:
            await abort(context, err)

    async def ReadLogs(self, request: runtime_pb2.ReadLogsRequest,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[runtime_pb2.LogLine]:
        """A replica's (or a service's replicas') log lines, then new ones with ``follow``."""
        def find() -> list[replica_log.Source]:
            return replica_log.sources(self.supervisor.work_dir, request.service,
                                       request.replica_id)

        known = await asyncio.to_thread(find)
        if request.replica_id and not known:
            await abort(context, not_found(
                "replica.not_found", f"no replica {request.replica_id!r} on this runtime",
                "list a service's replicas with `modelport get NAME`"))
        lines = await asyncio.to_thread(replica_log.read_many, known, request.since or None,
                                        request.tail or None)
        for ts, rid, version, text in lines:
            yield runtime_pb2.LogLine(ts=ts, replica_id=rid, version=version, text=text)
        if request.follow:
            async for rid, version, text in replica_log.follow_many(find, known):
                yield runtime_pb2.LogLine(ts=logfiles.line_time(text) or 0.0, replica_id=rid,
                                          version=version, text=text)

    async def PredictStream(self, request: inference_pb2.PredictRequest,
                            context: grpc.aio.ServicerContext
                            ) -> AsyncIterator[inference_pb2.PredictChunk]:
        obs = Observation(self.metrics, request.service, request.version, request.request_id)
        with obs:
            try:
                queued_at = time.monotonic()
                rid = await obs.pick(self.admission, request.timeout_s)
                self.admission.hold_exclusive(rid)  # none queue behind a stream
                try:
                    with obs.call(rid) as span:
                        async for chunk in calls.stream(
                                self.supervisor, rid, request.request_id, to_values(request.inputs),
                                time_left(request.timeout_s, context.time_remaining(),
                                          time.monotonic() - queued_at),
                                on_timings=lambda t: obs.worker(t, rid, span)):
                            yield inference_pb2.PredictChunk(request_id=request.request_id,
                                                             version=request.version,
                                                             output=to_output(chunk))
                finally:
                    self.admission.release(rid, request.service)
                yield inference_pb2.PredictChunk(request_id=request.request_id,
                                                 version=request.version, final=True)
            except ModelportError as err:
                obs.failed(err)
                await abort(context, err)
