"""Open Inference Protocol v2 semantics shared by the REST (``rest/oip_routes.py``) and gRPC
(``grpc/oip_service.py``) adapters: server and model readiness, model metadata from the
service's declared interface, and one ``infer`` over the DataPlane.

An OIP model is a modelport service; an OIP model version is a modelport version number
("" = whatever the service serves now). Readiness and metadata come from the same route
the data plane uses, so "ready" means "an infer call would be routed now".
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from modelport import __version__
from modelport.errors import Kind, ModelportError, invalid, not_found
from modelport.v1 import inference_pb2
from services.component.lazy_imports import lazy_module
from services.gateway.dataplane import DataPlane, InferenceRequest, InferenceResult, Route

tz = lazy_module("services.gateway.oip.tensors")  # numpy (10 MB) with the first OIP request

SERVER_NAME = "modelport"
EXTENSIONS = ["binary_tensor_data"]


@dataclass
class Inference:
    """One answered OIP request: the data plane's result and the output tensors."""

    result: InferenceResult
    route: Route
    outputs: list[tz.Tensor]


def version_number(model: str, version: str) -> int:
    if not version:
        return 0
    if not (version.isascii() and version.isdigit()) or not 0 < int(version) < 2**31:
        raise not_found("oip.version", f"model {model!r} has no version {version!r}",
                        "versions are numbers (see `modelport versions`), or leave it out "
                        "for the serving version")
    return int(version)


class OipModels:
    """What both OIP adapters ask of the platform; they only translate framing."""

    def __init__(self, dataplane: DataPlane,
                 registry_ready: Callable[[], Awaitable[bool]]) -> None:
        self.dataplane = dataplane
        self.registry_ready = registry_ready

    @staticmethod
    def server_metadata() -> dict[str, object]:
        return {"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS}

    async def server_ready(self) -> bool:
        return await self.registry_ready()

    async def route(self, model: str, version: str) -> Route:
        return await self.dataplane.route(model, version_number(model, version))

    async def model_ready(self, model: str, version: str) -> bool:
        """True when a request would be served now; a model that does not exist is an
        error (404), one that exists but is not serving is False."""
        try:
            await self.route(model, version)
        except ModelportError as err:
            if err.kind is Kind.UNAVAILABLE:
                return False
            raise
        return True

    async def model_metadata(self, model: str, version: str) -> dict[str, object]:
        route = await self.route(model, version)
        iface = route.interface
        return {
            "name": route.service,
            "versions": [str(route.version)],
            "platform": f"modelport_{iface.get('kind') or 'model'}",
            "inputs": [tz.metadata(i) for i in route.inputs],
            "outputs": [tz.metadata(o) for o in iface.get("outputs", [])],
        }

    async def infer(self, model: str, version: str, inputs: list[tz.Tensor],
                    requested: list[str] | None = None, request_id: str = "",
                    timeout_s: float = 0.0) -> Inference:
        """Map named tensors onto the service's declared inputs, run, name the outputs."""
        route = await self.route(model, version)
        names = [t.name for t in inputs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise invalid("oip.duplicate_input", f"input tensor(s) {', '.join(duplicates)} "
                          "sent more than once", "send each input once")
        # names first, so an unknown or missing input is reported before any data problem
        DataPlane.check_inputs(route, [inference_pb2.InputValue(name=n) for n in names])
        declared = {i["name"]: i for i in route.inputs}
        values = [tz.to_input_value(t, declared.get(t.name)) for t in inputs]
        declared_out = route.interface.get("outputs", [])
        if requested and declared_out:
            _check_requested(route, requested, [o["name"] for o in declared_out])
        result = await self.dataplane.infer(InferenceRequest(
            route.service, request_id or uuid.uuid4().hex, values, route.version, timeout_s,
            tensor_outputs=True), route)
        outputs = tz.output_tensors(result.output, declared_out)
        if requested:
            _check_requested(route, requested, [t.name for t in outputs])
            by_name = {t.name: t for t in outputs}
            outputs = [by_name[n] for n in requested]
        return Inference(result, route, outputs)


def _check_requested(route: Route, requested: list[str], available: list[str]) -> None:
    unknown = [n for n in requested if n not in available]
    if unknown:
        raise invalid("oip.unknown_output", f"unknown output(s) {', '.join(map(repr, unknown))} "
                      f"for model {route.service!r}",
                      "request only these outputs, or none for all: " + ", ".join(available),
                      details={"expected": available})


def registry_ready_probe(address: str) -> Callable[[], Awaitable[bool]]:
    """Server readiness for OIP: the registry (which every route needs) answers its health
    check as SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from services.rpc.server import channel

    stub = health_pb2_grpc.HealthStub(channel(address))

    async def ready() -> bool:
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    return ready
