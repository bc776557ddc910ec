"""Public gRPC ports of the versions this runtime holds: where proxyless xDS clients call.

A gRPC client that resolves ``xds:///NAME`` (docs/xds.md) picks a version's cluster from
the route the xDS server sends, then connects to one of that cluster's endpoints itself:
no gateway in between. The endpoint must therefore know which version it serves without
being told, so each (service, version) with a replica here gets a port of its own, opened
when its first replica starts and closed when its last one is gone.

Behind each port runs the gateway's own gRPC adapters (``inference.GRPCInferenceService``,
``modelport.v1.Inference``) over the gateway's data plane, pinned to that version and
calling this runtime's admission in-process (``LocalLink``): auth (invoke keys, the
service's policy from the registry), rate limits, deadlines and trace context apply as at
the gateway, and the request is counted in the runtime's metrics like any other. A
proxyless call is not a way around auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import grpc

from modelport.errors import Kind, ModelportError
from modelport.inference import grpc_predict_v2_pb2_grpc
from modelport.v1 import auth_pb2_grpc, inference_pb2, inference_pb2_grpc, registry_pb2_grpc
from services.gateway.auth.authenticator import Authenticator
from services.gateway.auth.gate import InferenceGate
from services.gateway.auth.grpc_credentials import GrpcCredentialsInterceptor
from services.gateway.dataplane import DataPlane, InferenceRequest, Route
from services.gateway.grpc import oip_service
from services.gateway.grpc.inference import InferenceServicer
from services.gateway.oip.models import OipModels, registry_ready_probe
from services.gateway.runtime_link import Answer
from services.gateway.settings import GatewaySettings
from services.rpc.server import GRPC_OPTIONS, channel
from services.telemetry import tracing
from services.wire.predict_frames import to_output, to_values

log = logging.getLogger(__name__)

#: how often the ports are compared with the replicas this runtime holds
RECONCILE_S = 0.25
#: the largest request, as at the gateway's gRPC port
_MAX_BODY: int = GatewaySettings.model_fields["max_body_bytes"].default
#: the route's stand-in address: this runtime, called in-process
LOCAL = "local"


class LocalLink:
    """The data plane's runtime link (``runtime_link.RuntimeLink``'s ``predict``) for a
    runtime in this very process: admission and the worker, no socket in between."""

    def __init__(self, servicer: Any) -> None:
        self.servicer = servicer

    async def predict(self, request_id: str, service: str, version: int,
                      inputs: list[inference_pb2.InputValue], timeout: float,
                      tensor_outputs: bool = False, carrier: Any = None) -> Answer:
        rid, result = await self.servicer.predict(service, version, request_id,
                                                  to_values(inputs), timeout, tensor_outputs)
        return Answer(to_output(result), version, rid, result.duration_ms or 0.0)


class PinnedDataPlane(DataPlane):
    """The gateway's data plane for one service version on this runtime: every request
    goes to that version, here. A request that names another version came to the wrong
    endpoint (its client pinned the version in the body, not in the ``x-model-version``
    header the xDS route matches on) and is refused with how to pin it."""

    def __init__(self, registry: registry_pb2_grpc.RegistryStub, service: str, version: int,
                 local: LocalLink, runtime_address: str, route_ttl_s: float = 1.0) -> None:
        super().__init__(registry, route_ttl_s)
        self.service, self.version = service, version
        self.local = local
        self.runtime_address = runtime_address

    async def route(self, service: str, version: int = 0, fresh: bool = False) -> Route:
        if service != self.service:
            raise ModelportError(Kind.NOT_FOUND, "xds.wrong_endpoint",
                                 f"this endpoint serves service {self.service!r}, not "
                                 f"{service!r}",
                                 f"call xds:///{service}: its own endpoints serve it")
        if version and version != self.version:
            raise ModelportError(Kind.INVALID, "xds.wrong_version",
                                 f"this endpoint serves version {self.version} of "
                                 f"{service!r}, the request asks for version {version}",
                                 "pin a version with the x-model-version metadata header: the "
                                 "xDS route sends it to that version's endpoints")
        return await super().route(service, self.version, fresh)

    async def _picked(self, service: str, version: int, fresh: bool = False) -> Route:
        """Interface and timeout from the registry's route table (cached, and kept while
        the registry is away, as at the gateway); the endpoint is always this runtime."""
        table = await self._table(service, self.version, fresh)
        vr = table.versions.get(self.version)
        if vr is None:
            raise ModelportError(Kind.UNAVAILABLE, "version.not_serving",
                                 f"version {self.version} of {service!r} is no longer served",
                                 "the xDS server moves clients off this endpoint within "
                                 "seconds; retry")
        return Route(service, self.version, LOCAL, vr.interface, vr.timeout_s, table.expires)

    async def _call(self, route: Route, req: InferenceRequest, timeout: float) -> Answer:
        return await self.local.predict(req.request_id, route.service, route.version,
                                        req.inputs, timeout, req.tensor_outputs)

    def runtime(self, address: str) -> Any:
        """Streams go to this runtime's own gRPC face (``PredictStream``)."""
        return super().runtime(self.runtime_address)


class _Port:
    def __init__(self, server: grpc.aio.Server, address: str) -> None:
        self.server = server
        self.address = address


class DirectPorts:
    """One public gRPC server per (service, version) with a replica on this runtime."""

    def __init__(self, supervisor: Any, servicer: Any, host: str, registry_address: str,
                 runtime_address: str, auth: bool = True) -> None:
        self.supervisor = supervisor
        self.host = host
        self.local = LocalLink(servicer)
        self.runtime_address = runtime_address
        self.registry_address = registry_address
        self.auth = auth
        self._ports: dict[tuple[str, int], _Port] = {}
        self._gate: InferenceGate | None = None
        self._registry: registry_pb2_grpc.RegistryStub | None = None
        self._task: asyncio.Task[None] | None = None

    def address(self, service: str, version: int) -> str:
        port = self._ports.get((service, version))
        return port.address if port is not None else ""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.reconcile()
            except Exception:  # noqa: BLE001 - a port that fails to open is retried next tick
                log.exception("direct gRPC ports: reconcile failed")
            await asyncio.sleep(RECONCILE_S)

    async def reconcile(self) -> None:
        wanted = {(r.service, r.version) for r in self.supervisor.list()
                  if r.state != "stopped"}
        for key in sorted(wanted - set(self._ports)):
            self._ports[key] = await self._open(*key)
            log.info("direct gRPC port for %s v%d on %s", key[0], key[1],
                     self._ports[key].address)
        for key in [k for k in self._ports if k not in wanted]:
            port = self._ports.pop(key)
            # the xDS server drops the endpoint as the replicas go; calls still on it finish
            await port.server.stop(5)

    def _shared(self) -> tuple[registry_pb2_grpc.RegistryStub, InferenceGate]:
        """One registry channel and one auth gate (policies, key cache, rate limits) for
        every port of this runtime."""
        if self._registry is None or self._gate is None:
            self._registry = registry_pb2_grpc.RegistryStub(channel(self.registry_address))
            auth_stub = auth_pb2_grpc.AuthStub(channel(self.registry_address))
            self._gate = InferenceGate(auth_stub, Authenticator(auth_stub), enabled=self.auth)
        return self._registry, self._gate

    async def _open(self, service: str, version: int) -> _Port:
        registry, gate = self._shared()
        dataplane = PinnedDataPlane(registry, service, version, self.local,
                                    self.runtime_address)
        dataplane.gate = gate
        server = grpc.aio.server(options=GRPC_OPTIONS, interceptors=[
            *tracing.server_interceptors(True), GrpcCredentialsInterceptor()])
        inference_pb2_grpc.add_InferenceServicer_to_server(InferenceServicer(dataplane), server)
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            oip_service.OipServicer(OipModels(dataplane, registry_ready_probe(
                self.registry_address)), _MAX_BODY), server)
        bound = server.add_insecure_port(f"{_bracketed(self.host)}:0")
        await server.start()
        return _Port(server, f"{_bracketed(self.host)}:{bound}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for port in self._ports.values():
            await port.server.stop(1)
        self._ports.clear()


def direct_host(listen: str) -> str:
    """The host the ports bind by default: the runtime's own when it listens on TCP (an
    agent on another address), else loopback."""
    if listen.startswith("unix:") or ":" not in listen:
        return "127.0.0.1"
    return listen.rsplit(":", 1)[0].strip("[]") or "127.0.0.1"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
