"""The gateway's end of a runtime's data socket (``services/wire/predict_frames.py``).

One connection per runtime on this host, opened on first use and kept: requests are
written as frames and matched to their answers by id, so any number can be in flight on
it at once with no per-request connection, stream or thread. A caller that gives up
(its timeout, a client that went away) sends ``cancel`` so the model stops too. When the
connection drops, every request on it fails with ``component.unavailable`` (the data
plane routes a request again only when no replica took it); the next call reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from modelport.errors import Kind, ModelportError
from modelport.v1 import inference_pb2
from modelport.worker import protocol as p
from modelport.worker.frames import Frame, FrameTooLarge, encode_frame
from modelport.worker.values import decode_result
from services.wire import predict_frames as pf
from services.wire.transport import FrameProtocol

log = logging.getLogger(__name__)

def _unavailable(path: Path, why: object, sent: bool = True) -> ModelportError:
    """``sent=False``: the connection could not even be opened, so the request provably
    never left the gateway (the data plane may hold it and try again: dataplane.py)."""
    return ModelportError(Kind.UNAVAILABLE, "component.unavailable",
                          f"the runtime is not reachable at {path}: {why}",
                          fix="check that `modelport up` is running",
                          details={} if sent else {"not_sent": True})


def json_predict_frame(request_id: str, service: str, version: int,
                       inputs: list[inference_pb2.InputValue], timeout_s: float,
                       tensor_outputs: bool = False, trace: dict[str, str] | None = None
                       ) -> list[bytes] | None:
    """``predict_frames.predict`` for requests whose inputs are all JSON (a REST body):
    the same frame, byte for byte, built straight from the inputs' raw JSON instead of
    through a worker ``Value`` per input. None for anything else (text, bytes, tensors,
    a repeated name): the general encoder handles it."""
    spec: dict[str, dict[str, int]] = {}
    parts: list[bytes] = []
    for value in inputs:
        name = value.name
        if name in spec or value.WhichOneof("value") not in ("json", None):
            return None
        spec[name] = {"json_part": len(parts)}
        parts.append(value.json or b"null")
    header: dict[str, Any] = {"kind": p.PREDICT, "id": request_id, "inputs": spec,
                              "timeout_s": timeout_s}
    if tensor_outputs:
        header["tensor_outputs"] = True
    header["service"] = service
    header["version"] = version
    if trace:
        header["trace"] = trace
    return encode_frame(header, parts)


class _Expired(Exception):
    """The runtime did not answer in time (the request's timeout and a grace)."""


def _expire(future: asyncio.Future[Frame]) -> None:
    if not future.done():
        future.set_exception(_Expired())


class Answer:
    """A runtime's answer: the output and where it came from."""

    __slots__ = ("output", "version", "replica_id", "duration_ms")

    def __init__(self, output: inference_pb2.Output, version: int, replica_id: str,
                 duration_ms: float) -> None:
        self.output = output
        self.version = version
        self.replica_id = replica_id
        self.duration_ms = duration_ms


class RuntimeLink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: FrameProtocol | None = None
        #: request id -> (its answer, the connection it went out on)
        self._pending: dict[str, tuple[asyncio.Future[Frame], FrameProtocol]] = {}
        self._lock = asyncio.Lock()

    async def _connected(self) -> FrameProtocol:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        async with self._lock:
            if self._conn is not None and not self._conn.closed:
                return self._conn
            loop = asyncio.get_running_loop()
            mine: list[FrameProtocol] = []
            try:
                _, conn = await loop.create_unix_connection(
                    lambda: FrameProtocol(self._answered,
                                          lambda exc: self._lost(mine[0], exc)),
                    str(self.path))
            except OSError as exc:
                raise _unavailable(self.path, exc, sent=False) from None
            mine.append(conn)
            self._conn = conn
            return conn

    async def predict(self, request_id: str, service: str, version: int,
                      inputs: list[inference_pb2.InputValue], timeout_s: float,
                      tensor_outputs: bool = False, trace: dict[str, str] | None = None
                      ) -> Answer:
        """Send one prediction and wait (at most ``timeout_s`` + a grace) for its answer.

        Raises the runtime's ModelportError, ``component.unavailable`` when the runtime
        cannot be reached or went away, or ``request.timeout``.
        """
        if request_id in self._pending:
            raise ModelportError(Kind.CONFLICT, "request.duplicate_id",
                                 f"request {request_id!r} is already in flight",
                                 fix="use a fresh request id per request")
        try:
            buffers = json_predict_frame(request_id, service, version, inputs, timeout_s,
                                         tensor_outputs, trace)
            if buffers is None:
                buffers = pf.predict(request_id, service, version, pf.to_values(inputs),
                                     timeout_s, tensor_outputs, trace)
        except FrameTooLarge as exc:
            raise ModelportError(Kind.TOO_LARGE, "request.too_large", str(exc),
                                 fix="send smaller inputs") from None
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connected()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Frame] = loop.create_future()
        self._pending[request_id] = (future, conn)
        answered = False
        timer: asyncio.TimerHandle | None = None
        try:
            conn.write(buffers)
            await conn.drain()
            # a timer on the future, not asyncio.timeout(): one handle instead of a
            # context manager, a handle and a task cancellation per request
            timer = loop.call_at(loop.time() + timeout_s + 5.0, _expire, future)
            frame = await future
            answered = True
        except _Expired:
            raise ModelportError(Kind.DEADLINE, "request.timeout",
                                 f"the model did not answer within {timeout_s:g}s",
                                 "raise timeout_s in config.json or the service spec") from None
        finally:
            if timer is not None:
                timer.cancel()
            self._pending.pop(request_id, None)
            if not answered:  # gave up (or was cancelled): stop the model too
                conn.write(pf.cancel(request_id))
        header = frame.header
        if frame.kind == pf.FAILED:
            raise ModelportError.from_dict(header.get("error") or {})
        return Answer(pf.to_output(decode_result(header.get("result"), frame.parts)),
                      int(header.get("version") or version), str(header.get("replica_id", "")),
                      float(header.get("duration_ms") or 0.0))

    def _answered(self, frame: Frame) -> None:
        pending = self._pending.get(frame.id or "")
        if pending is not None and not pending[0].done():
            pending[0].set_result(frame)

    def _lost(self, conn: FrameProtocol, exc: Exception | None) -> None:
        """A connection dropped: what was in flight on it fails; the next call reconnects."""
        why = exc or "the runtime closed the connection"
        for future, on in self._pending.values():
            if on is conn and not future.done():
                future.set_exception(_unavailable(self.path, why))

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class RuntimeLinks:
    """Links by runtime address; None for a runtime without a data socket (another host)."""

    def __init__(self) -> None:
        self._links: dict[str, RuntimeLink | None] = {}

    def get(self, address: str) -> RuntimeLink | None:
        if address in self._links:
            return self._links[address]
        path = pf.data_socket_path(address)
        link = RuntimeLink(path) if path is not None and os.path.exists(path) else None
        if link is not None or path is None:  # a unix runtime still starting: look again
            self._links[address] = link
        return link

    async def close(self) -> None:
        for link in self._links.values():
            if link is not None:
                await link.close()
