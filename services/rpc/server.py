"""Building, running and stopping a grpc.aio server the same way in every component.

Every server serves the standard health service (one status per service name) and
server reflection, so `grpcurl list` works against each; it listens on a unix
socket (`unix:/path`) or a loopback TCP address and shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.telemetry import tracing

#: packages are streamed in chunks, but predict payloads (1 MB images, tensors) are unary
MAX_MESSAGE_BYTES = 128 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
]


class GrpcServer:
    """A grpc.aio server with health and reflection, bound to one address."""

    def __init__(self, address: str, public: bool = False,
                 interceptors: Sequence[grpc.aio.ServerInterceptor] = ()) -> None:
        self.address = address
        # trace context in and out (nothing when tracing is off); `public`: the edge,
        # which starts traces, rather than an internal server that only continues them
        self.server = grpc.aio.server(options=GRPC_OPTIONS, interceptors=[
            *tracing.server_interceptors(public), *interceptors])
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._service_names: list[str] = [health.SERVICE_NAME]
        self.bound_port = 0

    def add(self, register: Callable[[object, grpc.aio.Server], None], servicer: object,
            service_names: Iterable[str]) -> None:
        register(servicer, self.server)
        self._service_names.extend(service_names)

    async def start(self) -> None:
        reflection.enable_server_reflection(
            [*self._service_names, reflection.SERVICE_NAME], self.server
        )
        if self.address.startswith("unix:"):
            path = Path(self.address[len("unix:"):])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
        self.bound_port = self.server.add_insecure_port(self.address)
        await self.server.start()
        for name in [*self._service_names, ""]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        notify_ready()

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def notify_ready() -> None:
    """Tell the launcher this component serves: write "ready" to the pipe it passed in
    MODELPORT_READY_FD (modelport/launcher.py), once. The launcher waits on that pipe instead
    of a gRPC health check so that it need not import grpc; without the variable (a
    component started by hand or by a test) this does nothing."""
    fd = os.environ.pop("MODELPORT_READY_FD", "")
    if not fd.isdigit():
        return
    try:
        os.write(int(fd), b"ready\n")
        os.close(int(fd))
    except OSError:  # the launcher is gone or gave up; PDEATHSIG takes care of us
        pass


async def serve_until_signalled(server: GrpcServer, on_stop: Callable[[], Awaitable[None]]
                                | None = None) -> None:
    """Run until SIGTERM/SIGINT, then stop the server and run `on_stop`."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if on_stop is not None:
        await on_stop()
    await server.stop()


def channel(address: str, interceptors: Sequence[grpc.aio.ClientInterceptor] = ()
            ) -> grpc.aio.Channel:
    """A client channel to another component, with the same message limits."""
    return grpc.aio.insecure_channel(
        address, options=GRPC_OPTIONS,
        interceptors=[*tracing.client_interceptors(), *interceptors] or None)
