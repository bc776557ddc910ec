"""Composition root of the gateway: one DataPlane shared by the REST app and the gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Generator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelport.errors import ModelportError
from modelport.v1 import inference_pb2_grpc, registry_pb2_grpc
from services.gateway.dataplane import DataPlane
from services.gateway.grpc.inference import InferenceServicer
from services.gateway.rest.errors import handle_modelport_error, handle_unexpected
from services.gateway.rest.infer import InferEndpoint
from services.gateway.rest.management import ManagementApi
from services.gateway.settings import GatewaySettings
from services.grpc_server import GrpcServer, channel

log = logging.getLogger(__name__)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "UP"})


def build_app(settings: GatewaySettings, dataplane: DataPlane,
              registry: registry_pb2_grpc.RegistryStub) -> Starlette:
    mgmt = ManagementApi(registry, settings.max_upload_bytes, dataplane.forget)
    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/services/{name}/infer",
              InferEndpoint(dataplane, settings.max_body_bytes).handle, methods=["POST"]),
        *mgmt.routes(),
    ]
    return Starlette(routes=routes, exception_handlers={ModelportError: handle_modelport_error,
                                                        Exception: handle_unexpected})


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the gateway owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(settings: GatewaySettings) -> None:
    settings = settings.resolved()
    registry = registry_pb2_grpc.RegistryStub(channel(settings.registry_address))
    dataplane = DataPlane(registry, settings.route_ttl_s)
    app = build_app(settings, dataplane, registry)

    grpc_server = GrpcServer(f"{settings.host}:{settings.grpc_port}")
    grpc_server.add(inference_pb2_grpc.add_InferenceServicer_to_server,
                    InferenceServicer(dataplane), ["modelport.v1.Inference"])
    await grpc_server.start()

    config = uvicorn.Config(app, host=settings.host, port=settings.port, loop="none",
                            http="httptools", lifespan="off", access_log=False,
                            log_level="warning")
    http = _Uvicorn(config)
    task = asyncio.create_task(http.serve())
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

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await asyncio.wait([task, asyncio.create_task(stop.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    http.should_exit = True
    await task
    await grpc_server.stop(2)
