"""Composition root of the xDS server: observe the platform, build and check snapshots,
serve them over ADS, report clients over CSDS (docs/xds.md)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import grpc
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm,
)
from envoy.service.discovery.v3 import ads_pb2_grpc
from envoy.service.status.v3 import csds_pb2_grpc

from modelport.home import HomeLayout
from modelport.v1 import registry_pb2, registry_pb2_grpc
from services.rpc.server import GrpcServer, channel, serve_until_signalled
from services.xds import resources
from services.xds.ads import AggregatedDiscovery, ClientStatus, ClientStream, NackHook
from services.xds.platform_state import PlatformObserver, PlatformState
from services.xds.settings import XdsSettings

log = logging.getLogger(__name__)

ADS_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
CSDS_SERVICE = "envoy.service.status.v3.ClientStatusDiscoveryService"


def gateways_file(home: Path) -> Path:
    """Where the launcher lists the gateway processes (the edge's upstreams)."""
    return HomeLayout(home).run / "gateways.json"


def filters_file(home: Path) -> Path:
    """The operator's extra HTTP filters for proxyless listeners (resources.py)."""
    return Path(home) / "xds-filters.json"


class ControlPlane:
    """Keeps the ADS server's snapshots equal to the platform's state."""

    def __init__(self, settings: XdsSettings, ads: AggregatedDiscovery) -> None:
        self.settings = settings
        self.ads = ads
        self.observer = PlatformObserver(settings.registry_address,
                                         gateways_file(settings.home))
        self.state: PlatformState | None = None
        self._filters_text: str | None = None
        self._registry_away = False

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.settings.poll_s)

    async def tick(self) -> None:
        try:
            state = await self.observer.observe()
        except grpc.aio.AioRpcError as err:
            if not self._registry_away:
                log.warning("registry not reachable (%s): serving the last state",
                            err.code().name)
            self._registry_away = True
            return
        self._registry_away = False
        filters_path = filters_file(self.settings.home)
        text = filters_path.read_text() if filters_path.exists() else ""
        if state == self.state and text == self._filters_text:
            return
        self._publish(state, resources.load_extra_filters(filters_path))
        self.state, self._filters_text = state, text

    def _publish(self, state: PlatformState, extra: list[hcm.HttpFilter]) -> None:
        built = {"grpc": resources.proxyless(state, extra)}
        if self.settings.envoy_port:
            built["envoy"] = resources.edge(state, self.settings.envoy_host,
                                            self.settings.envoy_port)
        for kind, snap in built.items():
            try:
                resources.check(snap)
            except resources.InvalidSnapshot as exc:
                log.error("xDS snapshot for %s clients not sent (the last one stays): %s",
                          kind, exc)
                continue
            changed = self.ads.update(kind, snap)
            if changed:
                log.info("xDS %s update: %s", kind, ", ".join(
                    f"{resources.SHORT[t]} v{self.ads.versions[(kind, t)]}" for t in changed))


def nack_recorder(registry: registry_pb2_grpc.RegistryStub) -> NackHook:
    """A NACK as a Warning event of each service the rejected update named."""

    async def record(stream: ClientStream, type_url: str, version: str, message: str,
                     names: tuple[str, ...]) -> None:
        services = sorted({n.split("/v")[0] for n in names
                           if n not in (resources.EDGE, resources.GATEWAYS_HTTP,
                                        resources.GATEWAYS_GRPC)})
        for service in services:
            await registry.RecordEvent(registry_pb2.Event(
                service=service, type="Warning", reason="XdsUpdateRejected",
                message=f"xDS client {stream.label} rejected {resources.SHORT[type_url]} "
                        f"version {version}: {message}; it keeps its last accepted config"),
                timeout=5)

    return record


async def serve(settings: XdsSettings) -> None:
    settings = settings.resolved()
    registry = registry_pb2_grpc.RegistryStub(channel(settings.registry_address))
    ads = AggregatedDiscovery(on_nack=nack_recorder(registry))
    control = ControlPlane(settings, ads)
    server = GrpcServer(settings.listen)
    server.add(ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server, ads,
               [ADS_SERVICE])
    server.add(csds_pb2_grpc.add_ClientStatusDiscoveryServiceServicer_to_server,
               ClientStatus(ads), [CSDS_SERVICE])
    await control.tick()  # a first snapshot before any client is answered, when it can
    loop = asyncio.create_task(control.run())
    await server.start()
    if settings.port_file:
        Path(settings.port_file).write_text(json.dumps({"port": server.bound_port}))
    log.info("xDS (ADS, CSDS) serving on %s", settings.listen.rsplit(":", 1)[0] + ":"
             + str(server.bound_port))

    async def on_stop() -> None:
        loop.cancel()

    await serve_until_signalled(server, on_stop)
