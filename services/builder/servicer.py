"""The Builder gRPC service: StartBuild, GetBuild and GetBuildLog over the build cache."""

from __future__ import annotations

from pathlib import Path

import grpc

from modelport.v1 import builder_pb2, builder_pb2_grpc
from services.builder import errors
from services.builder.cache import BuildCache, BuildRecord
from services.rpc.errors import translate_errors

#: build targets this builder can produce
TARGETS = ("process", "docker")


class BuilderServicer(builder_pb2_grpc.BuilderServicer):
    def __init__(self, cache: BuildCache) -> None:
        self._cache = cache

    @translate_errors
    async def StartBuild(self, request: builder_pb2.BuildRequest,
                         context: grpc.aio.ServicerContext) -> builder_pb2.Build:
        target = request.target or "process"
        if target not in TARGETS:
            raise errors.target_unavailable(target)
        if target == "docker" and not (request.package_dir
                                       and Path(request.package_dir).is_dir()):
            raise errors.package_dir_missing(request.package_dir)
        record = await self._cache.start(python=request.python,
                                         requirements=request.requirements, label=request.label,
                                         target=target, base_image=request.base_image,
                                         package_dir=request.package_dir,
                                         package_digest=request.package_digest,
                                         python_strict=request.python_strict,
                                         image=request.image, dockerfile=request.dockerfile)
        return to_proto(record)

    @translate_errors
    async def GetBuild(self, request: builder_pb2.GetBuildRequest,
                       context: grpc.aio.ServicerContext) -> builder_pb2.Build:
        return to_proto(self._cache.get(request.id))

    @translate_errors
    async def GetBuildLog(self, request: builder_pb2.BuildLogRequest,
                          context: grpc.aio.ServicerContext) -> builder_pb2.BuildLogText:
        text, state = self._cache.log_text(request.id)
        return builder_pb2.BuildLogText(text=text, state=state)


def to_proto(record: BuildRecord) -> builder_pb2.Build:
    return builder_pb2.Build(
        id=record.id, state=record.state, env_key=record.env_key, artifact=record.artifact,
        error=record.error, cached=record.cached, started_at=record.started_at,
        finished_at=record.finished_at, target=record.target,
        warning=record.warning)
