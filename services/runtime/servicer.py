"""gRPC face of the runtime: replica lifecycle RPCs and the Predict data plane."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from modelport.errors import ModelportError
from modelport.v1 import inference_pb2, runtime_pb2, runtime_pb2_grpc
from modelport.worker.protocol import Result, Value
from services.grpc_errors import abort, translate_errors
from services.runtime.backends import ReplicaSpec
from services.runtime.dispatcher import Dispatcher
from services.runtime.supervisor import ReplicaInfo, Supervisor


def replica_to_proto(r: ReplicaInfo) -> runtime_pb2.Replica:
    return runtime_pb2.Replica(id=r.id, service=r.service, version=r.version, state=r.state,
                               pid=r.pid or 0, restarts=r.restarts, message=r.message or "",
                               log_path=str(r.log_path or ""), started_at=r.started_at or 0.0)


def to_values(inputs: list[inference_pb2.InputValue]) -> dict[str, Value]:
    out: dict[str, Value] = {}
    for i in inputs:
        which = i.WhichOneof("value")
        if which == "text":
            out[i.name] = Value.of_text(i.text)
        elif which == "data":
            out[i.name] = Value.of_bytes(i.data)
        else:
            out[i.name] = Value.of_raw_json(i.json or b"null")
    return out


def to_output(result: Result) -> inference_pb2.Output:
    if result.kind == "json":
        return inference_pb2.Output(json=result.data)
    return inference_pb2.Output(data=result.data)


class RuntimeServicer(runtime_pb2_grpc.RuntimeServicer):
    def __init__(self, supervisor: Supervisor, dispatcher: Dispatcher) -> None:
        self.supervisor = supervisor
        self.dispatcher = dispatcher

    @translate_errors
    async def StartReplica(self, request: runtime_pb2.StartReplicaRequest,
                           context: grpc.aio.ServicerContext) -> runtime_pb2.Replica:
        existing = self.supervisor.get(request.replica_id)
        if existing is not None and existing.state != "stopped":
            return replica_to_proto(existing)  # idempotent: a retried start changes nothing
        spec = ReplicaSpec(
            replica_id=request.replica_id, service=request.service, version=request.version,
            kind=request.kind, python=request.artifact, package_dir=Path(request.package_dir),
            config=json.loads(request.config_json or "{}"), env=dict(request.env),
            timeout_s=request.timeout_s or 60.0)
        return replica_to_proto(await self.supervisor.start(spec))

    @translate_errors
    async def StopReplica(self, request: runtime_pb2.StopReplicaRequest,
                          context: grpc.aio.ServicerContext) -> runtime_pb2.Replica:
        info = self.supervisor.get(request.replica_id)
        if info is None:
            return runtime_pb2.Replica(id=request.replica_id, state="stopped")
        await self.supervisor.stop(request.replica_id)
        info = self.supervisor.get(request.replica_id) or info
        return replica_to_proto(info)

    @translate_errors
    async def ListReplicas(self, request: runtime_pb2.ListReplicasRequest,
                           context: grpc.aio.ServicerContext
                           ) -> runtime_pb2.ListReplicasResponse:
        reps = [r for r in self.supervisor.list()
                if not request.service or r.service == request.service]
        return runtime_pb2.ListReplicasResponse(replicas=[replica_to_proto(r) for r in reps])

    async def Predict(self, request: inference_pb2.PredictRequest,
                      context: grpc.aio.ServicerContext) -> inference_pb2.PredictResponse:
        start = time.perf_counter()
        try:
            rid = await self.dispatcher.pick(request.service, request.version, request.timeout_s)
            self.dispatcher.in_flight[rid] += 1
            try:
                result = await self.supervisor.predict(rid, request.request_id,
                                                       to_values(request.inputs),
                                                       request.timeout_s or None)
            finally:
                self.dispatcher.in_flight[rid] -= 1
        except ModelportError as err:
            await abort(context, err)
            raise
        duration = result.duration_ms if result.duration_ms is not None else (
            time.perf_counter() - start) * 1000
        return inference_pb2.PredictResponse(request_id=request.request_id,
                                             version=request.version, replica_id=rid,
                                             output=to_output(result), duration_ms=duration)

    async def PredictStream(self, request: inference_pb2.PredictRequest,
                            context: grpc.aio.ServicerContext
                            ) -> AsyncIterator[inference_pb2.PredictChunk]:
        try:
            rid = await self.dispatcher.pick(request.service, request.version, request.timeout_s)
            async for chunk in self.supervisor.predict_stream(
                    rid, request.request_id, to_values(request.inputs),
                    request.timeout_s or None):
                yield inference_pb2.PredictChunk(request_id=request.request_id,
                                                 version=request.version,
                                                 output=to_output(chunk))
            yield inference_pb2.PredictChunk(request_id=request.request_id,
                                             version=request.version, final=True)
        except ModelportError as err:
            await abort(context, err)
