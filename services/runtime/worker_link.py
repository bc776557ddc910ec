"""The runtime's end of a worker connection, on the protocol in ``modelport/worker/protocol.py``.

The runtime listens on a per-replica unix socket (``WorkerListener``) and the worker
connects and says ``hello``. A ``WorkerLink`` then multiplexes requests by id: each
request has its own event queue, fed by one reader task. When the connection drops or
the process exits, every request in flight fails at once with ``worker.crashed``,
carrying the exit code when it is known.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from modelport.errors import Kind, ModelportError
from modelport.worker import protocol as p
from modelport.worker.protocol import BatchItem, ErrorCode, Result, Value
from services.runtime.containment import EXIT_MEMORY_LIMIT

log = logging.getLogger(__name__)

#: how long a dropped connection waits for the process's exit code before failing requests
EXIT_CODE_WAIT_S = 1.0
#: longest user error message passed on to clients; the full text is in the replica log
MAX_ERROR_MESSAGE = 2000
#: a connection's write buffer above which writers wait for the worker to read
WRITE_HIGH_WATER = 1024 * 1024
#: chunks a streaming model may run ahead of the consumer; credit goes back in halves
STREAM_WINDOW = 16

_CRASH_FIX = ("see the replica log for what the model printed before it exited; the replica "
              "is restarted automatically")


def describe_exit(code: int | None) -> str:
    """``exited (code 1)`` / ``was killed by SIGKILL`` / ``exited``."""
    if code is None:
        return "exited"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    if code == EXIT_MEMORY_LIMIT:
        return "ran out of its memory limit and was stopped"
    return f"exited (code {code})"


def crashed_error(code: int | None, request_id: str | None = None,
                  during: str = "while handling this request") -> ModelportError:
    details: dict[str, Any] = {}
    if code is not None:
        details["exit_code"] = code
    if request_id:
        details["request_id"] = request_id
    message = f"the model process {describe_exit(code)}" + (f" {during}" if during else "")
    return ModelportError(Kind.UNAVAILABLE, "worker.crashed", message, fix=_CRASH_FIX,
                          details=details)


def error_from_worker(err: dict[str, Any], request_id: str = "") -> ModelportError:
    """A ``done``/``setup_failed`` error from the worker as a ModelportError.

    Errors the shim detected carry a ``code``; anything else is the user's exception and
    becomes ``Kind.MODEL`` with ``Type: message`` (the traceback stays in the replica log).
    """
    code = err.get("code")
    type_name = str(err.get("type") or "Exception")
    message = str(err.get("message") or "")
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[:MAX_ERROR_MESSAGE] + "... (truncated; full text in the replica log)"
    details: dict[str, Any] = {"error_type": type_name}
    if request_id:
        details["request_id"] = request_id
    where = f" (request {request_id})" if request_id else ""
    if code == ErrorCode.INVALID_INPUT:
        return ModelportError(Kind.INVALID, "request.invalid_input", message,
                              fix="send the inputs declared in the package's config.json",
                              details=details)
    if code == ErrorCode.TIMEOUT:
        return ModelportError(Kind.DEADLINE, "request.timeout", message,
                              fix="raise timeout_s, or make the model faster", details=details)
    if code == ErrorCode.CANCELLED:
        return ModelportError(Kind.UNAVAILABLE, "request.cancelled", message, details=details)
    if code in (ErrorCode.SHUTTING_DOWN, ErrorCode.NOT_READY):
        return ModelportError(Kind.UNAVAILABLE, str(code), message,
                              fix="retry; another replica or the restarted one will serve it",
                              details=details)
    if code == ErrorCode.DUPLICATE_ID:
        return ModelportError(Kind.CONFLICT, "request.duplicate_id", message,
                              fix="use a fresh request id per request", details=details)
    if code == ErrorCode.OUTPUT_TOO_LARGE:
        return ModelportError(Kind.MODEL, "model.output_too_large", message,
                              fix="return a smaller result", details=details)
    if code == ErrorCode.BATCH_INVALID:
        return ModelportError(Kind.MODEL, "model.batch_invalid", f"{type_name}: {message}",
                              fix="make predict_batch return a list with one result (or "
                                  "Exception) per input, in input order", details=details)
    if code == ErrorCode.OUTPUT_INVALID:
        return ModelportError(Kind.MODEL, "model.output_invalid", f"{type_name}: {message}",
                              fix="return JSON-serialisable values or bytes"
                              " (see the replica log)", details=details)
    if code == ErrorCode.ENTRYPOINT_FAILED:
        return ModelportError(Kind.MODEL, "model.entrypoint_failed", message,
                              fix=f"see the replica log for the entrypoint's output{where}",
                              details=details)
    return ModelportError(Kind.MODEL, "model.error", f"{type_name}: {message}",
                          fix=f"the model's code raised; the traceback is in the replica "
                              f"log{where}", details=details)


def _unavailable(message: str) -> ModelportError:
    return ModelportError(Kind.UNAVAILABLE, "worker.unavailable", message,
                          fix="retry; the runtime restarts the model process")


class _Request:
    """One request in flight: its events ("output" | "chunk" | "done" | "failed", payload)."""

    def __init__(self, request_id: str) -> None:
        self.id = request_id
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.finished = False


class _ItemSink:
    """A batch item's events, handled as they arrive: ``on_end(index, outcome)`` once."""

    __slots__ = ("index", "on_end", "output", "chunks", "ended")

    def __init__(self, index: int, on_end: Callable[[int, Any], None]) -> None:
        self.index = index
        self.on_end = on_end
        self.output: Result | None = None
        self.chunks: list[Result] = []
        self.ended = False

    def put_nowait(self, event: tuple[str, Any]) -> None:
        kind, payload = event
        if self.ended:
            return
        if kind == "output":
            self.output = payload
            return
        if kind == "chunk":
            self.chunks.append(payload)
            return
        self.ended = True
        if kind == "done":
            duration, timings = payload
            try:
                result = self.output if self.output is not None else _join(self.chunks,
                                                                           duration)
            except ModelportError as err:
                payload = err
            else:
                payload = dataclasses.replace(result, timings=timings) if timings else result
        self.on_end(self.index, payload)


class _BatchRequest:
    """A batch item in flight: looks like ``_Request`` to the reader, but its events go
    straight to an ``_ItemSink``."""

    __slots__ = ("id", "events", "finished")

    def __init__(self, request_id: str, sink: _ItemSink) -> None:
        self.id = request_id
        self.events = sink
        self.finished = False


class WorkerLink:
    """Requests to one connected worker, multiplexed by id.

    ``exit_code`` (optional) resolves to the worker process's exit status; it lets a
    crash report name the exit code. ``on_log`` receives each ``log`` header.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 hello: dict[str, Any], *, name: str = "worker",
                 exit_code: asyncio.Future[int] | None = None,
                 on_log: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.name = name
        self.hello = hello
        self.ready_info: dict[str, Any] | None = None
        self._reader = reader
        self._writer = writer
        self._exit_code = exit_code
        self._on_log = on_log
        self._write_lock = asyncio.Lock()
        self._requests: dict[str, _Request] = {}
        self._probes: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._setup: asyncio.Future[dict[str, Any]] | None = None
        self._probe_ids = itertools.count(1)
        self._closed = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self._failure: ModelportError | None = None
        self._known_exit: int | None = None
        self._task = asyncio.get_running_loop().create_task(self._read_loop(),
                                                            name=f"{name}-reader")

    # ------------------------------------------------------------------ state

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def in_flight(self) -> list[str]:
        return list(self._requests)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def connection_lost(self, exit_code: int | None = None) -> None:
        """The process is gone (the backend saw it exit): fail everything now.

        Needed besides EOF because a child the model forked may hold the socket open.
        """
        if exit_code is not None:
            self._known_exit = exit_code
        self._fail_all(exit_code)
        self._writer.close()

    # ------------------------------------------------------------------ requests

    async def setup(self, config: dict[str, Any] | None = None,
                    timeout_s: float | None = 120.0) -> dict[str, Any]:
        """Ask the worker to load the package; returns the ``ready`` header.

        Raises ModelportError: ``worker.setup_failed`` (Kind.MODEL, "setup raised T: m";
        Kind.INVALID for a config.json the kind cannot use), ``worker.crashed`` if the
        process died, Kind.DEADLINE ``worker.setup_timeout``.
        """
        self._check_open()
        self._setup = asyncio.get_running_loop().create_future()
        await self._send(p.setup(config))
        try:
            async with asyncio.timeout(timeout_s):
                self.ready_info = await asyncio.shield(self._setup)
        except TimeoutError:
            raise ModelportError(Kind.DEADLINE, "worker.setup_timeout",
                                 f"setup did not finish within {timeout_s:g}s",
                                 fix="raise startup_timeout_s, or load less in setup()") from None
        return self.ready_info

    async def predict(self, request_id: str, inputs: dict[str, Value],
                      timeout_s: float | None = None, tensor_outputs: bool = False) -> Result:
        """One result. A streaming model's chunks are joined: JSON chunks into one JSON
        array (spliced as raw bytes, nothing decoded), bytes chunks concatenated.
        ``tensor_outputs``: numpy arrays may come back as raw named tensors (OIP).

        The hot path of every unary request: the answer's frames are handled as they
        arrive (``_ItemSink``) and resolve one future; no queue, generator or task.
        """
        self._check_open()
        if request_id in self._requests:
            raise ModelportError(Kind.CONFLICT, "request.duplicate_id",
                                 f"request {request_id!r} is already in flight on {self.name}",
                                 fix="use a fresh request id per request")
        header, parts = p.predict(request_id, inputs, timeout_s, None, tensor_outputs)
        try:
            buffers = p.encode_frame(header, parts)
        except p.FrameTooLarge as exc:
            raise ModelportError(Kind.TOO_LARGE, "request.too_large", str(exc),
                                 fix="send smaller inputs") from None
        future: asyncio.Future[Result | ModelportError] = (
            asyncio.get_running_loop().create_future())

        def ended(_index: int, outcome: Result | ModelportError) -> None:
            if not future.done():
                future.set_result(outcome)

        req = _BatchRequest(request_id, _ItemSink(0, ended))
        self._requests[request_id] = req  # type: ignore[assignment]
        try:
            try:
                await self._write(buffers)
            except ModelportError as write_error:
                # the worker died under us: the reader fails this request with the exit
                # code shortly; if it does not, report the write failure itself
                try:
                    async with asyncio.timeout(EXIT_CODE_WAIT_S + 1.0):
                        await asyncio.shield(future)
                except TimeoutError:
                    raise write_error from None
            try:
                async with asyncio.timeout(timeout_s):
                    outcome = await future
            except TimeoutError:
                raise ModelportError(
                    Kind.DEADLINE, "request.timeout",
                    f"the model did not answer within {timeout_s:g}s",
                    fix="raise the service's timeout_s, or make predict faster",
                    details={"request_id": request_id}) from None
        finally:
            if not req.finished:  # timed out or cancelled: the worker drops or stops it
                req.finished = True
                self._requests.pop(request_id, None)
                if not self.closed:
                    self._background_send(p.cancel(request_id))
        if isinstance(outcome, ModelportError):
            raise outcome
        return outcome

    async def predict_stream(self, request_id: str, inputs: dict[str, Value],
                             timeout_s: float | None = None,
                             on_timings: Callable[[Any], None] | None = None
                             ) -> AsyncIterator[Result]:
        """Each chunk as it arrives (a non-streaming model gives exactly one).

        ``timeout_s`` bounds the whole stream. Close the iterator (``aclosing``) when
        you stop early: that cancels the request in the worker. ``on_timings`` receives
        the worker's phase timings when the stream ends.
        """
        taken = 0
        async with contextlib.aclosing(self._exchange(request_id, inputs, timeout_s,
                                                      STREAM_WINDOW)) as events:
            async for event, payload in events:
                if event == "done" and on_timings is not None and payload[1]:
                    on_timings(payload[1])
                if event in ("chunk", "output"):
                    yield payload
                    taken += 1  # the consumer came back for more: the chunk has left
                    if taken >= STREAM_WINDOW // 2:
                        await self._send_quietly(p.credit(request_id, taken))
                        taken = 0

    async def predict_batch(self, items: list[BatchItem], timeout_s: float | None = None,
                            on_outcome: Callable[[int, Result | ModelportError], None]
                            | None = None) -> list[Result | ModelportError]:
        """Several requests as one ``predict_batch`` frame (adaptive batching, batching.py).

        Returns when every item has ended, one outcome per item in order: its Result
        (with the worker's timings) or the ModelportError that failed it alone. An item
        ends by its own answer, by ``cancel`` of its id, by a crash, or when ``timeout_s``
        (the longest item timeout; callers enforce their own) runs out. Items are tracked
        by id like ``predict``, so each caller's cancel or timeout touches only its own.
        ``on_outcome(index, outcome)`` hears of each item as soon as it ends. Items are
        handled as their frames arrive (``_ItemSink``): no task or queue per item.
        """
        self._check_open()
        outcomes: list[Result | ModelportError | None] = [None] * len(items)
        live: list[int] = []
        ids: set[str] = set()
        for i, item in enumerate(items):
            if item.id in self._requests or item.id in ids:
                outcomes[i] = ModelportError(
                    Kind.CONFLICT, "request.duplicate_id",
                    f"request {item.id!r} is already in flight on {self.name}",
                    fix="use a fresh request id per request")
            else:
                ids.add(item.id)
                live.append(i)
        buffers = self._encode_batch(items, live, outcomes, timeout_s)
        if on_outcome is not None:
            for i, outcome in enumerate(outcomes):
                if outcome is not None:
                    on_outcome(i, outcome)
        if not live:
            return outcomes  # type: ignore[return-value]
        loop = asyncio.get_running_loop()
        all_ended = loop.create_future()
        left = len(live)

        def ended(i: int, outcome: Result | ModelportError) -> None:
            nonlocal left
            outcomes[i] = outcome
            if on_outcome is not None:
                on_outcome(i, outcome)
            left -= 1
            if left == 0 and not all_ended.done():
                all_ended.set_result(None)

        reqs = [_BatchRequest(items[i].id, _ItemSink(i, ended)) for i in live]
        for req in reqs:
            self._requests[req.id] = req  # type: ignore[assignment]
        abandoned: list[_BatchRequest] = []
        try:
            try:
                await self._write(buffers)
            except ModelportError as write_error:
                # as in _exchange: the reader fails the items with the exit code shortly
                self._fail_later(reqs, write_error)
            try:
                async with asyncio.timeout(timeout_s):
                    await asyncio.shield(all_ended)
            except TimeoutError:
                abandoned = [req for req in reqs if not req.finished]
                for req in abandoned:
                    req.finished = True
                    self._requests.pop(req.id, None)
                    req.events.put_nowait(("failed", ModelportError(
                        Kind.DEADLINE, "request.timeout",
                        f"the model did not answer within {timeout_s:g}s",
                        fix="raise the service's timeout_s, or make predict faster",
                        details={"request_id": req.id})))
        finally:  # timed out, or this call was cancelled: the worker drops what is left
            for req in reqs:
                if not req.finished:
                    req.finished = True
                    self._requests.pop(req.id, None)
                    abandoned.append(req)
            if not self.closed:
                for req in abandoned:
                    self._background_send(p.cancel(req.id))
        return outcomes  # type: ignore[return-value]

    def _background_send(self, message: tuple[dict[str, Any], list[bytes]]) -> None:
        task = asyncio.get_running_loop().create_task(self._send_quietly(message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _encode_batch(self, items: list[BatchItem], live: list[int],
                      outcomes: list[Any], timeout_s: float | None) -> list[bytes]:
        """The frame for the ``live`` items; an item too large for a frame fails alone
        (it is dropped from ``live``)."""
        while live:
            try:
                header, parts = p.predict_batch([items[i] for i in live], timeout_s)
                return p.encode_frame(header, parts)
            except p.FrameTooLarge as exc:
                alone = [i for i in live if _too_large(items[i])]
                fix = ("send smaller inputs" if alone else "lower batching.max_batch_size in "
                       "config.json: these requests together are over a frame limit")
                for i in alone or list(live):
                    outcomes[i] = ModelportError(Kind.TOO_LARGE, "request.too_large",
                                                 str(exc), fix=fix)
                live[:] = [i for i in live if outcomes[i] is None]
        return []

    def _fail_later(self, reqs: list[_BatchRequest], error: ModelportError) -> None:
        """After a failed write: items still unanswered once the exit code had time to
        arrive fail with the write error itself."""
        def fail() -> None:
            for req in reqs:
                if not req.finished:
                    req.finished = True
                    self._requests.pop(req.id, None)
                    req.events.put_nowait(("failed", error))

        asyncio.get_running_loop().call_later(EXIT_CODE_WAIT_S + 1.0, fail)

    async def cancel(self, request_id: str) -> None:
        """Stop a request: it fails here at once; the worker drops it or stops it."""
        req = self._requests.pop(request_id, None)
        if req is not None and not req.finished:
            req.finished = True
            req.events.put_nowait(("failed", ModelportError(
                Kind.UNAVAILABLE, "request.cancelled", "the request was cancelled")))
        await self._send_quietly(p.cancel(request_id))

    async def health(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The worker's health reply: ``{state, busy, queued}``."""
        self._check_open()
        probe_id = f"h{next(self._probe_ids)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._probes[probe_id] = fut
        try:
            await self._send(p.health(probe_id))
            async with asyncio.timeout(timeout_s):
                return await fut
        except TimeoutError:
            raise ModelportError(Kind.DEADLINE, "worker.health_timeout",
                                 f"the model process did not answer a health check within "
                                 f"{timeout_s:g}s") from None
        finally:
            self._probes.pop(probe_id, None)

    async def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Ask the worker to finish its current request and exit; True if it closed in time."""
        if self.closed:
            return True
        await self._send_quietly(p.shutdown())
        try:
            async with asyncio.timeout(timeout_s):
                await self._closed.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Drop the connection (the worker exits when it notices)."""
        self._writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._fail_all(self._known_exit)

    # ------------------------------------------------------------------ internals

    async def _exchange(self, request_id: str, inputs: dict[str, Value],
                        timeout_s: float | None, window: int | None = None,
                        tensor_outputs: bool = False) -> AsyncIterator[tuple[str, Any]]:
        """Send one predict and yield its events until done; fails, times out, cancels."""
        self._check_open()
        if request_id in self._requests:
            raise ModelportError(Kind.CONFLICT, "request.duplicate_id",
                                 f"request {request_id!r} is already in flight on {self.name}",
                                 fix="use a fresh request id per request")
        header, parts = p.predict(request_id, inputs, timeout_s, window, tensor_outputs)
        try:
            buffers = p.encode_frame(header, parts)
        except p.FrameTooLarge as exc:
            raise ModelportError(Kind.TOO_LARGE, "request.too_large", str(exc),
                                 fix="send smaller inputs") from None
        req = _Request(request_id)
        self._requests[request_id] = req
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        try:
            try:
                await self._write(buffers)
            except ModelportError as write_error:
                # the worker died under us: the reader fails this request with the exit
                # code shortly; if it does not, report the write failure itself
                try:
                    async with asyncio.timeout(EXIT_CODE_WAIT_S + 1.0):
                        event, payload = await req.events.get()
                except TimeoutError:
                    raise write_error from None
                req.events.put_nowait((event, payload))
            while True:
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    async with asyncio.timeout(remaining):
                        event, payload = await req.events.get()
                except TimeoutError:
                    raise ModelportError(
                        Kind.DEADLINE, "request.timeout",
                        f"the model did not answer within {timeout_s:g}s",
                        fix="raise the service's timeout_s, or make predict faster",
                        details={"request_id": request_id}) from None
                if event == "failed":
                    raise payload
                yield event, payload
                if event == "done":
                    return
        finally:
            if not req.finished:  # timed out, cancelled, or the consumer stopped early
                req.finished = True
                self._requests.pop(request_id, None)
                if not self.closed:
                    task = loop.create_task(self._send_quietly(p.cancel(request_id)))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)

    def _check_open(self) -> None:
        if self._failure is not None:
            raise crashed_error(self._known_exit, during="")
        if self.closed:
            raise _unavailable(f"the model process ({self.name}) is not connected")

    async def _send(self, message: tuple[dict[str, Any], list[bytes]]) -> None:
        header, parts = message
        await self._write(p.encode_frame(header, parts))

    async def _write(self, buffers: list[bytes]) -> None:
        try:
            # one writelines per frame keeps frames whole; drain only over the high mark
            self._writer.writelines(buffers)
            if self._writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                async with self._write_lock:
                    await self._writer.drain()
        except (ConnectionError, OSError, RuntimeError) as exc:
            raise _unavailable(f"lost the connection to the model process: {exc}") from None

    async def _send_quietly(self, message: tuple[dict[str, Any], list[bytes]]) -> None:
        if self.closed:
            return
        with contextlib.suppress(ModelportError):
            await self._send(message)

    async def _read_loop(self) -> None:
        try:
            while True:
                frame = await p.read_frame(self._reader)
                if frame is None:
                    break
                self._dispatch(frame)
        except p.ProtocolError as exc:
            log.error("%s: protocol error, dropping the connection: %s", self.name, exc)
        except (ConnectionError, OSError):
            pass
        finally:
            self._writer.close()
        code = self._known_exit
        if code is None and self._exit_code is not None and self._requests:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                code = await asyncio.wait_for(asyncio.shield(self._exit_code), EXIT_CODE_WAIT_S)
        self._fail_all(code)

    def _fail_all(self, code: int | None) -> None:
        if code is not None:
            self._known_exit = code
        if self._failure is None:
            self._failure = crashed_error(code, during="")
        for req in list(self._requests.values()):
            req.finished = True
            req.events.put_nowait(("failed", crashed_error(code, req.id)))
        self._requests.clear()
        for fut in self._probes.values():
            if not fut.done():
                fut.set_exception(crashed_error(code, during="during a health check"))
        if self._setup is not None and not self._setup.done():
            self._setup.set_exception(crashed_error(code, during="during setup"))
            self._setup.exception()  # retrieved here, so an abandoned setup logs nothing
        self._closed.set()

    def _dispatch(self, frame: p.Frame) -> None:
        kind, header = frame.kind, frame.header
        if kind in (p.OUTPUT, p.CHUNK, p.DONE):
            req = self._requests.get(frame.id or "")
            if req is None or req.finished:
                return  # cancelled or timed out here already
            if kind == p.DONE:
                req.finished = True
                del self._requests[req.id]
                error = header.get("error")
                if error:
                    failure = error_from_worker(error, req.id)
                    failure.worker_timings = header.get("timings")  # type: ignore[attr-defined]
                    req.events.put_nowait(("failed", failure))
                else:
                    req.events.put_nowait(("done", (header.get("duration_ms"),
                                                    header.get("timings"))))
                return
            try:
                result = p.decode_result(header.get("result"), frame.parts)
            except p.ProtocolError as exc:
                req.finished = True
                del self._requests[req.id]
                req.events.put_nowait(("failed", ModelportError(
                    Kind.INTERNAL, "worker.protocol_error", str(exc))))
                return
            if kind == p.OUTPUT and header.get("duration_ms") is not None:
                result = dataclasses.replace(result, duration_ms=header["duration_ms"])
            req.events.put_nowait(("output" if kind == p.OUTPUT else "chunk", result))
        elif kind == p.HEALTH:
            fut = self._probes.get(frame.id or "")
            if fut is not None and not fut.done():
                fut.set_result(header)
        elif kind == p.READY:
            if self._setup is not None and not self._setup.done():
                self._setup.set_result(header)
        elif kind == p.SETUP_FAILED:
            if self._setup is not None and not self._setup.done():
                self._setup.set_exception(setup_error(header.get("error") or {}))
        elif kind == p.LOG:
            if self._on_log is not None:
                self._on_log(header)
            else:
                log.debug("%s: %s", self.name, header.get("message"))
        else:
            log.warning("%s: ignoring unknown frame kind %r", self.name, kind)


def setup_error(err: dict[str, Any]) -> ModelportError:
    type_name = str(err.get("type") or "Exception")
    message = str(err.get("message") or "")[:MAX_ERROR_MESSAGE]
    if type_name == "ConfigError":
        return ModelportError(Kind.INVALID, "package.config_invalid", f"config.json: {message}",
                              fix="fix the package's config.json and upload a new version",
                              details={"error_type": type_name})
    return ModelportError(Kind.MODEL, "worker.setup_failed", f"setup raised {type_name}: {message}",
                          fix="see the replica log for the traceback",
                          details={"error_type": type_name})


def _too_large(item: BatchItem) -> bool:
    """Whether this item alone breaks a frame limit."""
    try:
        p.encode_frame(*p.predict(item.id, item.inputs, item.timeout_s))
    except p.FrameTooLarge:
        return True
    return False


def _join(chunks: list[Result], duration: float | None) -> Result:
    if not chunks:
        return Result("json", b"[]", duration)
    kinds = {c.kind for c in chunks}
    if kinds == {"json"}:
        return Result("json", b"[" + b",".join(c.data for c in chunks) + b"]", duration)
    if kinds == {"bytes"}:
        return Result("bytes", b"".join(c.data for c in chunks), duration)
    if "tensors" in kinds:
        raise ModelportError(Kind.MODEL, "model.stream_tensors",
                             "predict yielded tensors as a stream; a unary call cannot join "
                             "them into one result", fix="call the streaming endpoint")
    raise ModelportError(Kind.MODEL, "model.mixed_stream",
                         "predict yielded both bytes and JSON values, which cannot be joined "
                         "into one result", fix="call the streaming endpoint, or yield one kind")


# ---------------------------------------------------------------------- listening


class WorkerListener:
    """A unix socket the worker connects to; ``accept`` waits for it and its ``hello``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._server: asyncio.AbstractServer | None = None
        self._conn: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue())

    @classmethod
    async def open(cls, path: Path) -> WorkerListener:
        self = cls(path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._server = await asyncio.start_unix_server(self._connected, path=str(self.path))
        os.chmod(self.path, 0o600)
        return self

    async def _connected(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        if not self._conn.empty():
            writer.close()  # one worker per socket
            return
        self._conn.put_nowait((reader, writer))

    async def accept(self, timeout_s: float | None = None, *, name: str = "worker",
                     exit_code: asyncio.Future[int] | None = None,
                     on_log: Callable[[dict[str, Any]], None] | None = None) -> WorkerLink:
        """Wait for the worker to connect and say hello; raises on timeout or a bad hello."""
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await self._conn.get()
                frame = await p.read_frame(reader)
        except TimeoutError:
            raise ModelportError(Kind.DEADLINE, "worker.start_timeout",
                                 f"the model process did not connect within {timeout_s:g}s",
                                 fix="see the replica log; raise startup_timeout_s") from None
        except p.ProtocolError as exc:
            raise ModelportError(Kind.UNAVAILABLE, "worker.protocol_error",
                                 f"bad first message from the model process: {exc}") from None
        if frame is None or frame.kind != p.HELLO:
            writer.close()
            raise ModelportError(Kind.UNAVAILABLE, "worker.protocol_error",
                                 "the model process did not say hello")
        version = frame.header.get("protocol")
        if version != p.PROTOCOL_VERSION:
            writer.close()
            raise ModelportError(Kind.UNAVAILABLE, "worker.protocol_mismatch",
                                 f"the worker speaks protocol {version}, the runtime "
                                 f"{p.PROTOCOL_VERSION}",
                                 fix="reinstall the worker shim (restart the runtime)")
        return WorkerLink(reader, writer, frame.header, name=name, exit_code=exit_code,
                          on_log=on_log)

    async def close(self) -> None:
        if self._server is not None:
            # close() stops listening and leaves the accepted connection open; not
            # wait_closed(), which (Python >= 3.12) waits for that connection to end
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


async def accept_unless_exited(listener: WorkerListener, timeout_s: float, name: str,
                               exit_future: Any, wait: Any) -> WorkerLink | int:
    """The worker's connection, or its exit code if it died before connecting.

    Both backends race the listener against the child's exit, so a worker that crashes on
    start is reported at once with its exit instead of after the startup timeout.
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
    return exited.result()

