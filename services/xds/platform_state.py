"""What the xDS server serves from: the platform as it is now, read from its own parts.

Every ``poll_s`` the server asks the registry for each service's route (versions, their
share of the traffic split, the runtimes holding them) and each of those runtimes for its
replicas (state, draining, and the public gRPC port of their version,
``services/runtime/direct_ports.py``). The result is a plain, comparable value: the
snapshot is rebuilt and pushed only when it changed, so a deploy, a traffic change, a
replica becoming ready or unready, a stop or a delete reaches clients within one poll.

Gateway instances (the Envoy edge's upstreams) come from ``<home>/run/gateways.json``,
which the launcher writes as gateways start and restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc

from modelport.v1 import registry_pb2, registry_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from services.rpc.errors import from_rpc_error
from services.rpc.server import channel

log = logging.getLogger(__name__)

HEALTHY, DRAINING, UNHEALTHY = "HEALTHY", "DRAINING", "UNHEALTHY"


@dataclass(frozen=True)
class Endpoint:
    """A host:port serving one version, in the locality of the runtime that holds it."""
    host: str
    port: int
    health: str
    locality: str


@dataclass(frozen=True)
class VersionState:
    version: int
    percent: float
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def healthy(self) -> bool:
        return any(e.health == HEALTHY for e in self.endpoints)


@dataclass(frozen=True)
class ServiceState:
    name: str
    versions: tuple[VersionState, ...]


@dataclass(frozen=True)
class Gateway:
    """One gateway process: its HTTP port (REST, SSE, WebSocket) and its gRPC port."""
    host: str
    http_port: int
    grpc_port: int


@dataclass(frozen=True)
class PlatformState:
    services: tuple[ServiceState, ...] = ()
    gateways: tuple[Gateway, ...] = ()

    def service(self, name: str) -> ServiceState | None:
        return next((s for s in self.services if s.name == name), None)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def endpoints_of(replicas: list[runtime_pb2.Replica], locality: str
                 ) -> dict[tuple[str, int], list[Endpoint]]:
    """Per (service, version): its direct port on this runtime, HEALTHY when one of its
    replicas there is ready and not draining, DRAINING when the ready ones all drain
    (calls in flight finish, new ones go elsewhere), else UNHEALTHY."""
    grouped: dict[tuple[str, int, str], list[runtime_pb2.Replica]] = {}
    for r in replicas:
        if r.direct_address and r.state != "stopped":
            grouped.setdefault((r.service, r.version, r.direct_address), []).append(r)
    out: dict[tuple[str, int], list[Endpoint]] = {}
    for (service, version, address), reps in sorted(grouped.items()):
        ready = [r for r in reps if r.state == "ready"]
        if any(not r.draining for r in ready):
            health = HEALTHY
        elif ready:
            health = DRAINING
        else:
            health = UNHEALTHY
        host, port = split_address(address)
        out.setdefault((service, version), []).append(Endpoint(host, port, health, locality))
    return out


class PlatformObserver:
    """Reads the platform's state from the registry and the runtimes (see module doc)."""

    def __init__(self, registry_address: str, gateways_file: Path) -> None:
        self.registry = registry_pb2_grpc.RegistryStub(channel(registry_address))
        self.gateways_file = gateways_file
        self._runtimes: dict[str, runtime_pb2_grpc.RuntimeStub] = {}

    def _runtime(self, address: str) -> runtime_pb2_grpc.RuntimeStub:
        stub = self._runtimes.get(address)
        if stub is None:
            stub = self._runtimes[address] = runtime_pb2_grpc.RuntimeStub(channel(address))
        return stub

    async def observe(self) -> PlatformState:
        """The state now. Raises grpc.aio.AioRpcError when the registry does not answer
        (the caller keeps serving the last state)."""
        listed = await self.registry.ListServices(registry_pb2.ListServicesRequest(),
                                                  timeout=5)
        names = sorted(s.name for s in listed.services)
        routes = await asyncio.gather(*(self._route(n) for n in names))
        runtimes = sorted({e.address for r in routes if r is not None
                           for v in r.versions for e in v.endpoints})
        replicas = await asyncio.gather(*(self._replicas(a) for a in runtimes))
        found: dict[tuple[str, int], list[Endpoint]] = {}
        for address, reps in zip(runtimes, replicas, strict=True):
            for key, eps in endpoints_of(reps, address).items():
                found.setdefault(key, []).extend(eps)
        services = []
        for name, route in zip(names, routes, strict=True):
            versions = () if route is None else tuple(
                VersionState(v.version, v.percent, tuple(found.get((name, v.version), ())))
                for v in sorted(route.versions, key=lambda v: v.version))
            services.append(ServiceState(name, versions))
        return PlatformState(tuple(services), self._gateways())

    async def _route(self, name: str) -> registry_pb2.Route | None:
        """The service's route table; None when it serves nothing (stopped, or deleted
        between the list and this call)."""
        try:
            return await self.registry.ResolveRoute(
                registry_pb2.ResolveRouteRequest(service=name), timeout=5)
        except grpc.aio.AioRpcError as err:
            # service.stopped / not_ready / not_found: nothing to route to. A transport
            # failure means the registry is away: keep the last state rather than empty it
            if from_rpc_error(err, "registry").code in ("component.unavailable",
                                                        "rpc.deadline_exceeded"):
                raise
            return None

    async def _replicas(self, address: str) -> list[runtime_pb2.Replica]:
        try:
            resp = await self._runtime(address).ListReplicas(
                runtime_pb2.ListReplicasRequest(), timeout=5)
        except grpc.aio.AioRpcError as err:  # a runtime away: its endpoints are gone
            log.info("runtime %s did not list its replicas: %s", address, err.code().name)
            return []
        return list(resp.replicas)

    def _gateways(self) -> tuple[Gateway, ...]:
        try:
            entries = json.loads(self.gateways_file.read_text())
        except (OSError, ValueError):
            return ()
        return tuple(Gateway(str(g["host"]), int(g["http_port"]), int(g["grpc_port"]))
                     for g in entries if isinstance(g, dict) and g.get("http_port"))
