"""Composition root of the registry: store, blobs, controller and gRPC server wired together."""

from __future__ import annotations

import logging

from modelport.package import ArchiveLimits
from modelport.v1 import builder_pb2_grpc, registry_pb2_grpc, runtime_pb2_grpc
from services.grpc_server import GrpcServer, channel, serve_until_signalled
from services.registry.blobs import PackageStore
from services.registry.controller.loop import ControllerLoop
from services.registry.servicer import RegistryServicer
from services.registry.settings import RegistrySettings
from services.registry.store import SqliteStore

log = logging.getLogger(__name__)


async def serve(settings: RegistrySettings) -> None:
    settings = settings.resolved()
    layout = settings.layout
    store = SqliteStore(layout.db)
    packages = PackageStore(layout, ArchiveLimits(
        max_upload_bytes=settings.max_upload_bytes, max_entries=settings.max_entries,
        max_uncompressed_bytes=settings.max_uncompressed_bytes))
    builder = builder_pb2_grpc.BuilderStub(channel(settings.builder_address))
    runtime = runtime_pb2_grpc.RuntimeStub(channel(settings.runtime_address))
    controller = ControllerLoop(store, builder, runtime, settings.reconcile_interval_s)
    servicer = RegistryServicer(store, packages, builder, settings.runtime_address,
                                controller.trigger)
    server = GrpcServer(settings.listen)
    server.add(registry_pb2_grpc.add_RegistryServicer_to_server, servicer,
               ["modelport.v1.Registry"])
    await server.start()
    controller.start()
    log.info("registry serving on %s (home %s)", settings.listen, settings.home)

    async def on_stop() -> None:
        await controller.stop()

    await serve_until_signalled(server, on_stop)
    store.close()
