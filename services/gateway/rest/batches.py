"""Batch jobs over REST, `/api/v1/batches`: create (the input archive as the body), list,
get, cancel, logs, results (a zip in ModelArts' output layout).

Creating a job needs the right to call its service (the data plane's gate, as a request
would); its items then run as the gateway itself (batch_runner.py). Members see only the
jobs they created.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from modelport.errors import invalid, not_found, too_large
from modelport.v1 import batches_pb2, batches_pb2_grpc
from services.gateway.auth.gate import InferenceGate
from services.gateway.auth.principal import Principal
from services.gateway.rest.params import query_int
from services.rpc.errors import from_rpc_error

CHUNK = 1 << 20


def batch_view(job: batches_pb2.BatchJob) -> dict[str, Any]:
    """The job as REST and the CLI show it: its state under ``status``."""
    view = MessageToDict(job, preserving_proto_field_name=True,
                         always_print_fields_with_no_presence=True)
    return {"id": view.pop("id"), "status": view.pop("state"), **view}


def _principal(request: Request) -> Principal | None:
    p = request.scope.get("state", {}).get("principal")
    return p if isinstance(p, Principal) else None


class BatchApi:
    def __init__(self, batches: batches_pb2_grpc.BatchesStub, gate: InferenceGate,
                 max_bytes: int) -> None:
        self.batches = batches
        self.gate = gate
        self.max_bytes = max_bytes

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/batches", self.create, methods=["POST"]),
            Route("/api/v1/batches", self.list, methods=["GET"]),
            Route("/api/v1/batches/{id}", self.get, methods=["GET"]),
            Route("/api/v1/batches/{id}/cancel", self.cancel, methods=["POST"]),
            Route("/api/v1/batches/{id}/logs", self.logs, methods=["GET"]),
            Route("/api/v1/batches/{id}/results", self.results, methods=["GET"]),
        ]

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=60)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, "registry") from None

    async def _mine(self, request: Request) -> batches_pb2.BatchJob:
        """The job named in the path, if this caller may see it (a member: their own)."""
        job = await self._call(self.batches.GetBatch,
                               batches_pb2.GetBatchRequest(id=request.path_params["id"]))
        p = _principal(request)
        if p is not None and p.role != "admin" and job.owner != p.user:
            raise not_found("batch.not_found", f"no batch job {job.id!r}",
                            "list yours with `modelport batch list`")
        return job

    async def create(self, request: Request) -> Response:
        q = request.query_params
        service = q.get("service", "")
        if not service:
            raise invalid("batch.service_missing", "a batch job needs a service",
                          "POST /api/v1/batches?service=NAME with the input archive as the "
                          "body (`modelport batch create NAME --input PATH`)", path="service")
        concurrency = query_int(request, "concurrency", 1, code="batch.concurrency",
                                fix="e.g. ?concurrency=2")
        await self.gate.admit(service, limit=False, strict=True)
        p = _principal(request)
        header = batches_pb2.BatchHeader(service=service, concurrency=concurrency,
                                         input_kind=q.get("input_kind", "jsonl"),
                                         owner=p.user if p is not None else "")
        overflow = False

        async def chunks() -> AsyncIterator[batches_pb2.CreateBatchChunk]:
            nonlocal overflow
            yield batches_pb2.CreateBatchChunk(header=header)
            size = 0
            async for data in request.stream():
                size += len(data)
                if size > self.max_bytes:
                    overflow = True  # end the stream; raising here would cancel the RPC
                    return
                if data:
                    yield batches_pb2.CreateBatchChunk(data=data)

        try:
            job = await self.batches.CreateBatch(chunks(), timeout=600)
        except grpc.aio.AioRpcError as err:
            if not overflow:
                raise from_rpc_error(err, "registry") from None
        if overflow:
            raise too_large("batch.too_large", f"the batch input is over {self.max_bytes} "
                            "bytes", "split it into several jobs")
        return JSONResponse(batch_view(job), status_code=201)

    async def list(self, request: Request) -> Response:
        p = _principal(request)
        owner = p.user if p is not None and p.role != "admin" else ""
        limit = query_int(request, "limit", 50, code="batch.limit", fix="e.g. ?limit=20")
        resp = await self._call(self.batches.ListBatches, batches_pb2.ListBatchesRequest(
            service=request.query_params.get("service", ""), owner=owner, limit=limit))
        return JSONResponse({"batches": [batch_view(j) for j in resp.batches]})

    async def get(self, request: Request) -> Response:
        return JSONResponse(batch_view(await self._mine(request)))

    async def cancel(self, request: Request) -> Response:
        job = await self._mine(request)
        return JSONResponse(batch_view(await self._call(
            self.batches.CancelBatch, batches_pb2.CancelBatchRequest(id=job.id))))

    async def logs(self, request: Request) -> Response:
        job = await self._mine(request)
        log = await self._call(self.batches.GetBatchLog, batches_pb2.BatchLogRequest(id=job.id))
        return PlainTextResponse(log.text)

    async def results(self, request: Request) -> Response:
        job = await self._mine(request)
        data = bytearray()
        try:
            async for chunk in self.batches.GetBatchResults(
                    batches_pb2.BatchResultsRequest(id=job.id), timeout=600):
                data += chunk.data
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, "registry") from None
        return Response(bytes(data), media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="infer-result-{job.id}.zip"'})

