"""Where a worker connects: a per-replica unix socket, its first frame (``hello``) awaited,
and the race of that connection against the process's exit that both backends run."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelport.errors import Kind, ModelportError
from modelport.worker import protocol as p
from modelport.worker.frames import Frame, ProtocolError
from services.runtime import replica_log
from services.runtime.worker.errors import describe_exit
from services.runtime.worker.link import WorkerLink
from services.wire.transport import FrameProtocol


class _Arrival:
    """A worker's connection until its WorkerLink exists: the first frame (its hello) is
    awaited, later frames (logs) are kept in order for the link, and a loss is noted."""

    def __init__(self) -> None:
        self.frames = FrameProtocol(self._frame, self._lost)
        self.hello: asyncio.Future[Frame | None] = asyncio.get_running_loop().create_future()
        self.early: list[Frame] = []
        self.lost: tuple[Exception | None] | None = None

    def _frame(self, frame: Frame) -> None:
        if not self.hello.done():
            self.hello.set_result(frame)
        else:
            self.early.append(frame)

    def _lost(self, exc: Exception | None) -> None:
        self.lost = (exc,)
        if not self.hello.done():
            if isinstance(exc, ProtocolError):
                self.hello.set_exception(exc)
            else:
                self.hello.set_result(None)


class WorkerListener:
    """A unix socket the worker connects to; ``accept`` waits for it and its ``hello``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._server: asyncio.AbstractServer | None = None
        self._conn: asyncio.Queue[_Arrival] = asyncio.Queue()

    @classmethod
    async def open(cls, path: Path) -> WorkerListener:
        self = cls(path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(self._connected, path=str(self.path))
        os.chmod(self.path, 0o600)
        return self

    def _connected(self) -> asyncio.Protocol:
        if not self._conn.empty():
            return _Refused()  # one worker per socket
        arrival = _Arrival()
        self._conn.put_nowait(arrival)
        return arrival.frames

    async def accept(self, timeout_s: float | None = None, *, name: str = "worker",
                     exit_code: asyncio.Future[int] | None = None,
                     on_log: Callable[[dict[str, Any]], None] | None = None) -> WorkerLink:
        """Wait for the worker to connect and say hello; raises on timeout or a bad hello."""
        try:
            async with asyncio.timeout(timeout_s):
                arrival = await self._conn.get()
                frame = await asyncio.shield(arrival.hello)
        except TimeoutError:
            raise ModelportError(Kind.DEADLINE, "worker.start_timeout",
                                 f"the model process did not connect within {timeout_s:g}s",
                                 fix="see the replica log; raise startup_timeout_s") from None
        except ProtocolError as exc:
            raise ModelportError(Kind.UNAVAILABLE, "worker.protocol_error",
                                 f"bad first message from the model process: {exc}") from None
        if frame is None or frame.kind != p.HELLO:
            arrival.frames.close()
            raise ModelportError(Kind.UNAVAILABLE, "worker.protocol_error",
                                 "the model process did not say hello")
        version = frame.header.get("protocol")
        if version != p.PROTOCOL_VERSION:
            arrival.frames.close()
            raise ModelportError(Kind.UNAVAILABLE, "worker.protocol_mismatch",
                                 f"the worker speaks protocol {version}, the runtime "
                                 f"{p.PROTOCOL_VERSION}",
                                 fix="reinstall the worker shim (restart the runtime)")
        return WorkerLink(arrival.frames, frame.header, name=name, exit_code=exit_code,
                          on_log=on_log, early=arrival.early, lost=arrival.lost)

    async def close(self) -> None:
        if self._server is not None:
            # close() stops listening and leaves the accepted connection open; not
            # wait_closed(), which (Python >= 3.12) waits for that connection to end
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class _Refused(asyncio.Protocol):
    """A second connection to a replica's socket: closed at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


async def accept_worker(listener: WorkerListener, timeout_s: float, name: str,
                        exit_future: Any, wait: Any, log_path: Path, *,
                        who: str = "the worker", why: Callable[[int], str] = describe_exit,
                        fix: str) -> WorkerLink:
    """The worker's connection; if it dies before connecting, ``replica.exited_on_start``
    with its exit (``why(code)``) and the last lines of its log, at once.

    Both backends race the listener against the child's exit, so a worker that crashes on
    start is reported with its exit instead of after the startup timeout.
    """
    accept = asyncio.ensure_future(listener.accept(timeout_s, name=name,
                                                   exit_code=exit_future))
    exited = asyncio.ensure_future(wait())
    try:
        await asyncio.wait({accept, exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()
    if accept.done():
        return accept.result()
    accept.cancel()
    with contextlib.suppress(asyncio.CancelledError, ModelportError):
        await accept
    code = exited.result()
    last = replica_log.tail(log_path)
    raise ModelportError(
        Kind.UNAVAILABLE, "replica.exited_on_start",
        f"{who} {why(code)} before connecting"
        + (f"; last lines of replica.log:\n{last}" if last else ""),
        fix=fix, details={"exit_code": code})
