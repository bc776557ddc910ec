"""Sockets inside a container's network namespace: how the runtime reaches a custom image
that runs with ``network_mode: none`` (docs/docker.md, "Custom images").

A container with no network still has its own loopback; its server listens on
``127.0.0.1:PORT`` there, and nothing outside the container can reach that. A thread of
the runtime can enter the namespace (``setns(2)`` with ``CLONE_NEWNET``, which needs
``CAP_SYS_ADMIN``: the runtime runs as root on the Docker host): a socket created by that
thread belongs to the container's namespace for its whole life, whichever thread uses it
afterwards. So one thread per replica stays in its container's namespace and only creates
sockets; connecting, sending and reading happen on the event loop as for any socket.

The container gains nothing (no process, no mount, no interface); the namespace is held
open by its file descriptor, so a container that dies leaves a namespace where nothing
listens (connections are refused) until the replica is closed, never another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import queue
import socket
import threading
from typing import Any

from modelport.errors import Kind, ModelportError

CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def cannot_enter(pid: int, exc: OSError) -> ModelportError:
    if exc.errno in (errno.EPERM, errno.EACCES):
        why = ("the runtime lacks CAP_SYS_ADMIN, which entering another network namespace "
               "needs")
        fix = ("run the runtime as root on the Docker host (a custom image has no network: "
               "the runtime reaches its port from inside the container's namespace)")
    else:
        why = exc.strerror or str(exc)
        fix = ("the runtime must run on the Docker host, in the host's PID namespace, to "
               "reach a container with no network; see docs/docker.md, 'Custom images'")
    return ModelportError(Kind.UNAVAILABLE, "replica.netns_unreachable",
                          f"cannot enter the network namespace of the container (pid {pid}): "
                          f"{why}", fix=fix)


class NetnsDialer:
    """Creates TCP sockets in one container's network namespace and connects them to its
    loopback. ``open`` enters the namespace (raises ModelportError when it cannot);
    ``close`` lets the thread and the namespace go."""

    def __init__(self, pid: int, name: str) -> None:
        self.pid = pid
        self.name = name
        self._fd = -1
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.closed = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        try:
            self._fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise cannot_enter(self.pid, exc) from None

        def settle(error: BaseException | None) -> None:
            if not started.done():
                if error is None:
                    started.set_result(None)
                else:
                    started.set_exception(error)

        def body() -> None:
            try:
                _setns(self._fd)
            except OSError as exc:
                loop.call_soon_threadsafe(settle, cannot_enter(self.pid, exc))
                return
            loop.call_soon_threadsafe(settle, None)
            while True:  # this thread never leaves the namespace: it ends with the replica
                item = self._requests.get()
                if item is None:
                    return
                target_loop, future = item
                try:
                    sock: Any = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sock.setblocking(False)
                except OSError as exc:
                    sock = exc
                with contextlib.suppress(RuntimeError):  # that loop closed meanwhile
                    target_loop.call_soon_threadsafe(_deliver, future, sock)

        self._thread = threading.Thread(target=body, name=f"{self.name}-netns", daemon=True)
        self._thread.start()
        await started

    async def socket(self) -> socket.socket:
        """A new, unconnected, non-blocking TCP socket in the container's namespace."""
        if self.closed:
            raise ModelportError(Kind.UNAVAILABLE, "replica.gone",
                                 f"the container of {self.name} is gone",
                                 fix="retry; another replica will serve it")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[socket.socket] = loop.create_future()
        self._requests.put((loop, future))
        return await future

    async def connect(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Streams over a connection to ``127.0.0.1:port`` inside the container; raises
        OSError (refused: nothing listens) like any connect."""
        sock = await self.socket()
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return await asyncio.open_connection(sock=sock, limit=2**20)
        except BaseException:
            sock.close()
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._requests.put(None)
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


def _deliver(future: asyncio.Future[Any], value: Any) -> None:
    if future.done():
        if isinstance(value, socket.socket):
            value.close()
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)
