"""Composition root of the registry: store, blobs, controller and gRPC server wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from modelport.package import ArchiveLimits
from modelport.v1 import (
    agents_pb2_grpc,
    auth_pb2_grpc,
    batches_pb2_grpc,
    builder_pb2_grpc,
    gitops_pb2_grpc,
    registry_pb2_grpc,
    runtime_pb2_grpc,
)
from services.registry.accounts import AuthServicer
from services.registry.agents import AgentsServicer, AgentTable
from services.registry.batches import BatchesServicer, BatchQueue
from services.registry.blobs import PackageStore
from services.registry.controller.activity import Activity
from services.registry.controller.loop import ControllerLoop
from services.registry.credentials import load_signing_key
from services.registry.gitops_apply import CommitApplier
from services.registry.gitops_sources import GitOpsServicer
from services.registry.metrics import METRICS
from services.registry.ownership import OwnershipInterceptor
from services.registry.retention import prune_forever
from services.registry.servicer import RegistryServicer
from services.registry.serving import Serving
from services.registry.settings import RegistrySettings
from services.registry.store import SqliteStore
from services.registry.store.accounts import AuthStore
from services.registry.store.batches import SqliteBatchStore
from services.registry.store.tasks import SqliteTaskStore
from services.registry.tasks import TaskQueue, TasksServicer
from services.rpc.server import GrpcServer, channel, serve_until_signalled

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
    # runtime agents (several hosts) and cold-start demand, shared by controller and routes
    agents = AgentTable(settings.runtime_address, settings.agent_ttl_s, settings.heartbeat_s,
                        on_change=lambda: controller.trigger())
    activity = Activity()
    controller = ControllerLoop(store, builder, runtime, settings.reconcile_interval_s,
                                agents=agents, activity=activity,
                                runtime_address=settings.runtime_address)
    serving = Serving(store, agents, activity, settings.runtime_address, controller.trigger)
    servicer = RegistryServicer(store, packages, builder, serving, controller.trigger)
    auth = AuthStore(store.db)  # users, keys, ownership, audit (docs/security.md)
    server = GrpcServer(settings.listen, interceptors=[OwnershipInterceptor(auth)])
    server.add(auth_pb2_grpc.add_AuthServicer_to_server, AuthServicer(
        auth, store, load_signing_key(layout.root / "auth.key")), ["modelport.v1.Auth"])
    server.add(registry_pb2_grpc.add_RegistryServicer_to_server, servicer,
               ["modelport.v1.Registry"])
    server.add(agents_pb2_grpc.add_AgentsServicer_to_server, AgentsServicer(agents),
               ["modelport.v1.Agents"])
    applier = CommitApplier(store, packages, controller.trigger, layout.root / "faults")
    server.add(gitops_pb2_grpc.add_GitOpsServicer_to_server, GitOpsServicer(store, applier),
               ["modelport.v1.GitOps"])
    tasks = TaskQueue(SqliteTaskStore(store.db), ttl_s=settings.task_ttl_s,
                      lease_s=settings.task_lease_s)
    server.add(registry_pb2_grpc.add_TasksServicer_to_server, TasksServicer(tasks),
               ["modelport.v1.Tasks"])
    batches = BatchQueue(SqliteBatchStore(store.db), layout.batches,
                         service_exists=lambda name: store.get_service(name) is not None,
                         lease_s=settings.batch_lease_s, max_bytes=settings.max_batch_bytes)
    server.add(batches_pb2_grpc.add_BatchesServicer_to_server, BatchesServicer(batches),
               ["modelport.v1.Batches"])
    METRICS.attach_store(store)
    await server.start()
    controller.start()
    pruner = asyncio.create_task(prune_forever(
        store, settings.event_retention_s, min(60.0, max(1.0, settings.event_retention_s / 4))))
    sweeper = asyncio.create_task(tasks.sweep_forever(min(5.0, settings.task_ttl_s / 2)))
    batch_sweeper = asyncio.create_task(batches.sweep_forever(min(2.0, settings.batch_lease_s / 3)))
    log.info("registry serving on %s (home %s)", settings.listen, settings.home)

    async def on_stop() -> None:
        pruner.cancel()
        sweeper.cancel()
        batch_sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await controller.stop()

    await serve_until_signalled(server, on_stop)
    store.close()
