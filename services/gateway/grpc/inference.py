"""Public gRPC `modelport.v1.Inference`: protobuf in, the shared data plane, protobuf out."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc

from modelport.errors import ModelportError
from modelport.v1 import inference_pb2, inference_pb2_grpc
from services.gateway.dataplane import DataPlane, InferenceRequest
from services.rpc.errors import abort


class InferenceServicer(inference_pb2_grpc.InferenceServicer):
    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane

    @staticmethod
    def _request(msg: inference_pb2.PredictRequest,
                 context: grpc.aio.ServicerContext | None = None) -> InferenceRequest:
        """The shared request; the caller's gRPC deadline caps ``timeout_s`` for every hop."""
        timeout = msg.timeout_s
        left = context.time_remaining() if context is not None else None
        if left is not None:
            timeout = min(timeout, left) if timeout else left
        return InferenceRequest(msg.service, msg.request_id or uuid.uuid4().hex, list(msg.inputs),
                                msg.version, timeout)

    async def Predict(self, request: inference_pb2.PredictRequest,
                      context: grpc.aio.ServicerContext) -> inference_pb2.PredictResponse:
        try:
            res = await self.dataplane.infer(self._request(request, context))
        except ModelportError as err:
            await abort(context, err)
            raise  # unreachable: abort raises
        return inference_pb2.PredictResponse(request_id=res.request_id, version=res.version,
                                             output=res.output, duration_ms=res.worker_ms)

    async def PredictStream(self, request: inference_pb2.PredictRequest,
                            context: grpc.aio.ServicerContext
                            ) -> AsyncIterator[inference_pb2.PredictChunk]:
        try:
            async for chunk in self.dataplane.infer_stream(self._request(request, context)):
                yield chunk
        except ModelportError as err:
            await abort(context, err)
