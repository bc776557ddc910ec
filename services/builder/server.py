"""Composition root: BuilderSettings in, a running gRPC server with health and reflection out."""

from __future__ import annotations

import logging

from modelport.v1 import builder_pb2, builder_pb2_grpc
from services.builder.cache import BuildCache
from services.builder.image import ImageBuilder
from services.builder.servicer import BuilderServicer
from services.builder.settings import BuilderSettings
from services.builder.venv import VenvBuilder
from services.rpc.server import GrpcServer, serve_until_signalled

log = logging.getLogger(__name__)

SERVICE_NAME = builder_pb2.DESCRIPTOR.services_by_name["Builder"].full_name


def build_server(settings: BuilderSettings) -> tuple[GrpcServer, BuildCache]:
    layout = settings.layout
    venvs = VenvBuilder(layout.envs, uv=settings.uv, default_python=settings.python,
                        step_timeout_s=settings.build_timeout_s)
    images = ImageBuilder(layout.builder / "images", layout.envs, uv=settings.uv,
                          host_python=settings.python, index_env=venvs.uv_index_env,
                          default_base_image=settings.docker_base_image,
                          pull=settings.docker_pull, step_timeout_s=settings.build_timeout_s)
    cache = BuildCache(layout, venvs, settings.max_concurrent_builds, images=images)
    server = GrpcServer(settings.listen)
    server.add(builder_pb2_grpc.add_BuilderServicer_to_server, BuilderServicer(cache),
               [SERVICE_NAME])
    return server, cache


async def serve(settings: BuilderSettings) -> None:
    """Serve until SIGTERM/SIGINT; builds in progress are stopped and recorded failed."""
    server, cache = build_server(settings)
    cache.load()
    await server.start()
    log.info("builder serving on %s (home %s, installer %s, python %s)", settings.listen,
             settings.home, settings.uv or "venv + pip", settings.python)
    await serve_until_signalled(server, on_stop=cache.close)
    log.info("builder stopped")
