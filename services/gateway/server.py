"""Composition root of the gateway: one DataPlane shared by the REST app and the gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import json
import logging
import signal
import socket
from collections.abc import Generator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from modelport.errors import ModelportError
from modelport.home import HomeLayout
from modelport.inference import grpc_predict_v2_pb2_grpc
from modelport.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    batches_pb2_grpc,
    inference_pb2_grpc,
    registry_pb2_grpc,
)
from services.gateway.auth.asgi import AuthMiddleware
from services.gateway.auth.authenticator import Authenticator
from services.gateway.auth.gate import InferenceGate
from services.gateway.auth.grpc_credentials import (
    GrpcCredentialsInterceptor,
    identity_interceptors,
)
from services.gateway.auth.principal import CREDENTIALS, INTERNAL
from services.gateway.batch_runner import BatchRunner
from services.gateway.console import Console
from services.gateway.dataplane import DataPlane
from services.gateway.grpc import oip_service as grpc_oip
from services.gateway.grpc.inference import InferenceServicer
from services.gateway.http1 import HttpProtocol
from services.gateway.oip.models import OipModels, registry_ready_probe
from services.gateway.rest import modelarts_infer
from services.gateway.rest.auth_routes import AuthApi
from services.gateway.rest.batches import BatchApi
from services.gateway.rest.errors import handle_modelport_error, handle_unexpected
from services.gateway.rest.fast_infer import FastInfer
from services.gateway.rest.forward import ForwardEndpoint
from services.gateway.rest.gitops_routes import GitOpsApi
from services.gateway.rest.infer import InferEndpoint
from services.gateway.rest.kserve_v1 import KServeV1Api
from services.gateway.rest.management import ManagementApi
from services.gateway.rest.observability import ObservabilityApi
from services.gateway.rest.oip_routes import OipRestApi
from services.gateway.rest.openapi import OpenApi
from services.gateway.rest.platform_routes import PlatformApi
from services.gateway.rest.route_errors import handle_http_exception
from services.gateway.rest.tasks import TaskApi, task_view
from services.gateway.settings import GatewaySettings
from services.gateway.stats import GatewayStats
from services.gateway.streaming.websocket import WebSocketEndpoint
from services.gateway.task_runner import TaskRunner
from services.gateway.telemetry import AccessLog, GrpcTelemetryInterceptor, TelemetryMiddleware
from services.rpc.server import GrpcServer, channel

log = logging.getLogger(__name__)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "UP"})


def build_app(settings: GatewaySettings, dataplane: DataPlane,
              registry: registry_pb2_grpc.RegistryStub, tasks: TaskApi | None = None,
              stats: GatewayStats | None = None, access_log: AccessLog | None = None
              ) -> Starlette:
    mgmt = ManagementApi(registry, settings.max_upload_bytes, dataplane.forget)
    tasks = tasks or TaskApi(registry_pb2_grpc.TasksStub(channel(settings.registry_address)),
                             dataplane, settings.max_body_bytes)
    forward = ForwardEndpoint(dataplane, settings.max_body_bytes)
    infer = InferEndpoint(dataplane, settings.max_body_bytes, tasks, forward=forward)
    routes = [
        Route("/health", health, methods=["GET"]),
        *Console().routes(),
        Route("/v1/services/{name}/infer", infer.handle, methods=["POST"]),
        *modelarts_infer.routes(infer),
        *tasks.routes(),
        WebSocketRoute("/v1/services/{name}/ws",
                       WebSocketEndpoint(dataplane, settings.max_body_bytes).handle),
        *mgmt.routes(),
        *GitOpsApi(settings.registry_address, registry,
                   settings.gitops_webhook_secret, upload=mgmt.upload).routes(),
    ]
    oip = OipModels(dataplane, registry_ready_probe(settings.registry_address))
    routes += [*OipRestApi(oip, settings.max_body_bytes).routes(),
               *KServeV1Api(dataplane, oip, settings.max_body_bytes).routes()]
    stats = stats or GatewayStats()
    routes += ObservabilityApi(stats, registry, settings.runtime_address or HomeLayout(
        settings.home).socket("runtime"), HomeLayout(settings.home).logs,
        access_log.flush if access_log is not None else None).routes()
    routes += PlatformApi(HomeLayout(settings.home).run).routes()
    routes += forward.routes()  # after every /v1/services/{name}/... route: a catch-all
    routes.append(Route("/openapi.json", OpenApi(registry, lambda: routes).handle,
                        methods=["GET"]))
    # auth: the data plane's first stage, and the management API's one gate (+ audit)
    auth_stub = auth_pb2_grpc.AuthStub(channel(settings.registry_address))
    gate = dataplane.gate = dataplane.gate or InferenceGate(
        auth_stub, Authenticator(auth_stub, settings.auth_cache_s),
        enabled=settings.auth, policy_ttl_s=settings.route_ttl_s)
    routes[-1:-1] = AuthApi(auth_stub, gate.authenticator, settings.allow_registration).routes()
    routes[-1:-1] = BatchApi(batches_pb2_grpc.BatchesStub(channel(settings.registry_address)),
                             gate, settings.max_batch_bytes).routes()

    async def audit(entry: auth_pb2.AuditEntry) -> None:
        try:
            await auth_stub.RecordAudit(entry, timeout=10)
        except Exception:  # noqa: BLE001 - the action happened; say the record is missing
            log.exception("audit record lost: %s %s", entry.action, entry.target)

    # the router's 404/405 as the error envelope too (rest/route_errors.py)
    return Starlette(routes=routes, exception_handlers={ModelportError: handle_modelport_error,
                                                        HTTPException: handle_http_exception,
                                                        Exception: handle_unexpected},
                     middleware=[Middleware(
                         AuthMiddleware, gate=gate, routes=routes, audit=audit,
                         enabled=settings.auth, webhook_secret=bool(
                             settings.gitops_webhook_secret),
                         max_signed_body=settings.max_body_bytes)])


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the gateway owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(settings: GatewaySettings) -> None:
    settings = settings.resolved()
    registry = registry_pb2_grpc.RegistryStub(channel(
        settings.registry_address, identity_interceptors()))
    dataplane = DataPlane(registry, settings.route_ttl_s)
    tasks_stub = registry_pb2_grpc.TasksStub(channel(settings.registry_address))
    runner = TaskRunner(tasks_stub, dataplane, settings.task_concurrency, task_view=task_view)
    stats = GatewayStats()
    access_log = AccessLog(HomeLayout(settings.home).logs, settings.access_log_max_bytes,
                           settings.access_log_backups)
    app = build_app(settings, dataplane, registry,
                    TaskApi(tasks_stub, dataplane, settings.max_body_bytes, runner), stats,
                    access_log)
    # tasks were admitted (auth, limits) when submitted; the runner is the gateway itself
    runner_ctx = contextvars.copy_context()
    runner_ctx.run(CREDENTIALS.set, INTERNAL)
    runner_task = asyncio.create_task(runner.run(), context=runner_ctx)
    # batch jobs were admitted when created; their items run as the gateway too
    batch_runner = BatchRunner(batches_pb2_grpc.BatchesStub(channel(settings.registry_address)),
                               dataplane, settings.batch_concurrency)
    batch_task = asyncio.create_task(batch_runner.run(), context=runner_ctx)

    grpc_server = GrpcServer(f"{settings.host}:{settings.grpc_port}", public=True,
                             interceptors=[GrpcTelemetryInterceptor(stats, access_log),
                                           GrpcCredentialsInterceptor()])
    grpc_server.add(inference_pb2_grpc.add_InferenceServicer_to_server,
                    InferenceServicer(dataplane), ["modelport.v1.Inference"])
    grpc_server.add(grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server,
                    grpc_oip.OipServicer(OipModels(dataplane, registry_ready_probe(
                        settings.registry_address)), settings.max_body_bytes),
                    [grpc_oip.SERVICE_NAME])
    await grpc_server.start()

    # outermost: request id, trace, metrics and access log see every response, 500s too
    asgi: Any = TelemetryMiddleware(app, stats, access_log)
    if settings.fast_infer:  # in front: the unary JSON infer route, all of it inline
        asgi = FastInfer(asgi, dataplane, settings.max_body_bytes, stats, access_log,
                         ForwardEndpoint(dataplane, settings.max_body_bytes))
    config = uvicorn.Config(asgi, host=settings.host,
                            port=settings.port, loop="none", http=HttpProtocol,
                            lifespan="off", access_log=False, log_config=None,
                            log_level="warning")
    http = _Uvicorn(config)
    # the launcher's socket (modelport/launcher.py): it outlives this process
    sockets = [socket.socket(fileno=settings.http_fd)] if settings.http_fd >= 0 else None
    task = asyncio.create_task(http.serve(sockets=sockets))
    while not http.started:
        if task.done():
            await task  # surfaces the bind error
            raise SystemExit("gateway HTTP server exited during start")
        await asyncio.sleep(0.02)
    port = http.servers[0].sockets[0].getsockname()[1]
    if settings.port_file:
        from pathlib import Path

        Path(settings.port_file).write_text(json.dumps(
            {"http_port": port, "grpc_port": grpc_server.bound_port}))
    log.info("gateway serving http://%s:%d and gRPC %s:%d", settings.host, port, settings.host,
             grpc_server.bound_port)
    # as in the runtime: what start-up built lives as long as the process, so a full
    # collection need not walk it while requests wait (a p99 cost under load)
    gc.freeze()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await asyncio.wait([task, asyncio.create_task(stop.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    http.should_exit = True
    runner_task.cancel()
    batch_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await batch_task
    await batch_runner.close()
    with contextlib.suppress(asyncio.CancelledError):
        await runner_task
    await runner.close()
    await task
    await grpc_server.stop(2)
    access_log.close()  # the lines still waiting
