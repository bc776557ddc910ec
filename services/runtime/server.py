"""Composition root of the runtime: supervisor, dispatcher and the gRPC servicer."""

from __future__ import annotations

import logging

from modelport.v1 import runtime_pb2_grpc
from services.grpc_server import GrpcServer, serve_until_signalled
from services.runtime.dispatcher import Dispatcher
from services.runtime.servicer import RuntimeServicer
from services.runtime.settings import RuntimeSettings
from services.runtime.supervisor import Supervisor

log = logging.getLogger(__name__)


async def serve(settings: RuntimeSettings) -> None:
    settings = settings.resolved()
    work = settings.home / "runtime"
    work.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(work)
    servicer = RuntimeServicer(supervisor, Dispatcher(supervisor, settings.ready_wait_s))
    server = GrpcServer(settings.listen)
    server.add(runtime_pb2_grpc.add_RuntimeServicer_to_server, servicer,
               ["modelport.v1.Runtime"])
    await server.start()
    log.info("runtime serving on %s", settings.listen)
    await serve_until_signalled(server, supervisor.close)
