"""Composition root of the runtime: supervisor, admission and the gRPC servicer."""

from __future__ import annotations

import asyncio
import gc
import json
import logging

from modelport.home import HomeLayout
from modelport.v1 import runtime_pb2_grpc
from services.rpc.server import GrpcServer, serve_until_signalled
from services.runtime import capacity, gpus, replica_log
from services.runtime.agent import AgentClient, advertised
from services.runtime.containment import Containment
from services.runtime.dataplane.admission import Admission
from services.runtime.dataplane.data_socket import DataSocket
from services.runtime.direct_ports import DirectPorts, direct_host
from services.runtime.metrics import RuntimeMetrics, serve_metrics
from services.runtime.servicer import RuntimeServicer
from services.runtime.settings import RuntimeSettings
from services.runtime.supervisor import Supervisor
from services.wire.predict_frames import data_socket_path

log = logging.getLogger(__name__)


async def serve(settings: RuntimeSettings) -> None:
    settings = settings.resolved()
    work = settings.home / "runtime"
    work.mkdir(parents=True, exist_ok=True)
    replica_log.configure(settings.replica_log_max_bytes, settings.replica_log_backups)
    found, source = await asyncio.to_thread(gpus.discover, settings.gpus)
    supervisor = Supervisor(work, gpus=gpus.GpuInventory(found, source))
    supervisor.containment = Containment(
        work, enabled=None if settings.contain == "auto" else settings.contain == "on",
        id_base=settings.worker_id_base, id_count=settings.worker_id_count,
        open_files=settings.worker_open_files, processes=settings.worker_processes)
    log.info("runtime placing replicas on %s", capacity.describe(supervisor.gpus))
    admission = Admission(supervisor, settings.ready_wait_s)
    metrics = RuntimeMetrics(supervisor, admission)
    supervisor.metrics = metrics
    servicer = RuntimeServicer(supervisor, admission)
    servicer.metrics = metrics
    server = GrpcServer(settings.listen)
    server.add(runtime_pb2_grpc.add_RuntimeServicer_to_server, servicer,
               ["modelport.v1.Runtime"])
    await server.start()
    data_socket = None
    data_path = data_socket_path(settings.listen)
    if data_path is not None:  # gateways on this host send unary predictions here
        data_socket = DataSocket(servicer, data_path)
        await data_socket.start()
    direct = None
    if settings.direct_host != "none":  # proxyless xDS endpoints (docs/xds.md)
        own = settings.listen if not settings.listen.endswith(":0") \
            else f"{settings.listen[:-2]}:{server.bound_port}"
        registry = settings.registry_address if settings.registry_address != "none" \
            else HomeLayout(settings.home).socket("registry")
        direct = servicer.direct_ports = DirectPorts(
            supervisor, servicer, settings.direct_host or direct_host(settings.listen),
            registry, own, settings.direct_auth)
        direct.start()
    agent = None
    if settings.registry_address != "none":  # several hosts: register and heartbeat
        agent = AgentClient(settings.registry_address, settings.agent_id,
                            advertised(settings.listen, server.bound_port, settings.advertise),
                            supervisor, settings.max_replicas, settings.heartbeat_s)
        agent.start()
    metrics_http = None
    publish = HomeLayout(settings.home).run / "runtime-metrics.json"
    publish.unlink(missing_ok=True)
    if settings.metrics_port >= 0:
        metrics_http, url = await serve_metrics(metrics, settings.metrics_host,
                                                settings.metrics_port)
        publish.parent.mkdir(parents=True, exist_ok=True)
        publish.write_text(json.dumps({"url": url}))
        log.info("runtime metrics on %s", url)
    log.info("runtime serving on %s", settings.listen)
    # what start-up built (grpc, protobuf, opentelemetry, ...) lives as long as the process:
    # out of the collector's sight, a full collection no longer walks it while requests wait
    gc.freeze()

    async def on_stop() -> None:
        if direct is not None:
            await direct.close()
        if data_socket is not None:
            await data_socket.close()
        if agent is not None:
            await agent.stop()
        await supervisor.close()
        if metrics_http is not None:
            metrics_http.server.should_exit = True
            await metrics_http

    await serve_until_signalled(server, on_stop)
