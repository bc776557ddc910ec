"""Public gRPC ``inference.GRPCInferenceService`` (Open Inference Protocol v2) on the
gateway's gRPC port: protobuf in, the shared OIP semantics (``services/gateway/oip/models.py``)
over the one data plane, protobuf out.

Outputs always travel in ``raw_output_contents`` (as Triton answers), which both
tritonclient and the kserve SDK read. ``ModelStreamInfer`` and the repository RPCs are
left to the generated base class (UNIMPLEMENTED) unless a subclass adds them.
"""

from __future__ import annotations

import uuid

import grpc

from modelport.errors import ModelportError, invalid, too_large
from modelport.inference import grpc_predict_v2_pb2 as pb
from modelport.inference import grpc_predict_v2_pb2_grpc as pb_grpc
from services.component.lazy_imports import lazy_module
from services.gateway.oip.models import OipModels
from services.rpc.errors import abort

tz = lazy_module("services.gateway.oip.tensors")  # numpy (10 MB) with the first OIP request

SERVICE_NAME = "inference.GRPCInferenceService"


def _tensor_metadata(entry: dict[str, object]) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(**entry)


def request_tensors(request: pb.ModelInferRequest) -> list[tz.Tensor]:
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise invalid("oip.raw_input_contents", f"raw_input_contents has {len(raw)} entries "
                      f"for {len(request.inputs)} inputs", "send raw data for every input, or "
                      "for none (then use contents)")
    return [tz.from_grpc(t, raw[i] if raw else None) for i, t in enumerate(request.inputs)]


class OipServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, models: OipModels, max_body: int) -> None:
        self.models = models
        self.max_body = max_body

    async def ServerLive(self, request: pb.ServerLiveRequest,
                         context: grpc.aio.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest,
                          context: grpc.aio.ServicerContext) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=await self.models.server_ready())

    async def ServerMetadata(self, request: pb.ServerMetadataRequest,
                             context: grpc.aio.ServicerContext) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**self.models.server_metadata())  # type: ignore[arg-type]

    async def ModelReady(self, request: pb.ModelReadyRequest,
                         context: grpc.aio.ServicerContext) -> pb.ModelReadyResponse:
        try:
            return pb.ModelReadyResponse(
                ready=await self.models.model_ready(request.name, request.version))
        except ModelportError as err:
            await abort(context, err)
            raise

    async def ModelMetadata(self, request: pb.ModelMetadataRequest,
                            context: grpc.aio.ServicerContext) -> pb.ModelMetadataResponse:
        try:
            meta = await self.models.model_metadata(request.name, request.version)
        except ModelportError as err:
            await abort(context, err)
            raise
        return pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[_tensor_metadata(i) for i in meta["inputs"]],  # type: ignore[attr-defined]
            outputs=[_tensor_metadata(o) for o in meta["outputs"]])  # type: ignore[attr-defined]

    async def ModelInfer(self, request: pb.ModelInferRequest,
                         context: grpc.aio.ServicerContext) -> pb.ModelInferResponse:
        rid = uuid.uuid4().hex
        try:
            inputs = request_tensors(request)
            # the tensors' size, not request.ByteSize(): upb serialises to measure
            size = sum(memoryview(t.to_raw()).nbytes for t in inputs)
            if size > self.max_body:
                raise too_large("request.too_large", f"the input tensors are {size} bytes; "
                                f"the limit is {self.max_body}", "send a smaller input")
            requested = [o.name for o in request.outputs] or None
            remaining = context.time_remaining()
            done = await self.models.infer(request.model_name, request.model_version, inputs,
                                           requested, rid, remaining or 0.0)
        except ModelportError as err:
            await abort(context, err)
            raise
        response = pb.ModelInferResponse(model_name=done.route.service,
                                         model_version=str(done.result.version),
                                         id=request.id or rid)
        for t in done.outputs:
            response.outputs.add(name=t.name, datatype=t.datatype, shape=t.shape)
            response.raw_output_contents.append(bytes(t.to_raw()))
        return response
