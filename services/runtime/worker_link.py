"""The runtime's end of a worker connection, on the protocol in ``modelport/worker/protocol.py``.

The runtime listens on a per-replica unix socket (``WorkerListener``) and the worker
connects and says ``hello``. A ``WorkerLink`` then multiplexes requests by id; frames are
cut and handled as they arrive (``services/wire/transport.py``), each settling its
request's future (unary) or queue (streams). When the connection drops or the process
exits, every request in flight fails at once with ``worker.crashed``, carrying the exit
code when it is known.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from modelport.errors import Kind, ModelportError
from modelport.worker import protocol as p
from modelport.worker.protocol import BatchItem, ErrorCode, Result, Value
from services.runtime.containment import EXIT_MEMORY_LIMIT
from services.runtime.deadlines import Deadlines
from services.wire.transport import FrameProtocol

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
                  during: str = "while handling this request",
                  started: bool = True) -> ModelportError:
    """``worker.crashed``; ``started=False`` (``details.started``) for a request still
    queued in the worker behind another, which may safely be sent again."""
    details: dict[str, Any] = {}
    if code is not None:
        details["exit_code"] = code
    if request_id:
        details["request_id"] = request_id
    if not started:
        details["started"] = False
        during = "before it started this request (it was queued behind another one)"
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


def timeout_error(request_id: str, seconds: float) -> ModelportError:
    """``request.timeout``: the model did not answer within ``seconds`` (the link's unary,
    stream and batch calls and the batcher all say it the same way)."""
    return ModelportError(Kind.DEADLINE, "request.timeout",
                          f"the model did not answer within {seconds:g}s",
                          fix="raise the service's timeout_s, or make predict faster",
                          details={"request_id": request_id})


def _duplicate(request_id: str, name: str) -> ModelportError:
    return ModelportError(Kind.CONFLICT, "request.duplicate_id",
                          f"request {request_id!r} is already in flight on {name}",
                          fix="use a fresh request id per request")


class Reply:
    """A worker's answer to a relayed predict (``WorkerLink.relay``) as it came: the
    ``result`` header and the parts it indexes (views into the received frame), so the
    data socket hands them on to the gateway without decoding or encoding them again."""

    __slots__ = ("result", "parts", "duration_ms", "timings")

    def __init__(self, result: dict[str, Any], parts: list[Any],
                 duration_ms: float | None = None, timings: Any = None) -> None:
        self.result = result
        self.parts = parts
        self.duration_ms = duration_ms
        self.timings = timings

    @classmethod
    def of(cls, result: Result) -> Reply:
        """A decoded Result (chunks joined here) in the same shape."""
        parts: list[Any] = []
        return cls(p.encode_result(result, parts), parts, result.duration_ms, result.timings)

    def decoded(self) -> Result:
        """The answer as a Result (its parts copied out of the frame)."""
        result = p.decode_result(self.result, [bytes(x) for x in self.parts])
        return dataclasses.replace(result, duration_ms=self.duration_ms,
                                   timings=self.timings)


def _plain_result(raw: Any, n_parts: int) -> bool:
    """Whether ``raw`` is ``{json: i}`` or ``{bytes: i}`` with part i in the frame (the
    common answer, checked without building a Result)."""
    if type(raw) is not dict or len(raw) != 1:
        return False
    for tag, index in raw.items():
        return (tag == "json" or tag == "bytes") and type(index) is int and (
            0 <= index < n_parts)
    return False


class _Request:
    """One streamed request in flight: its events ("output" | "chunk" | "done" | "failed",
    payload) in a queue its consumer reads."""

    raw = False

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
    raw = False

    def __init__(self, request_id: str, sink: _ItemSink) -> None:
        self.id = request_id
        self.events = sink
        self.finished = False


class _Unary:
    """A unary request in flight (``predict``, ``relay``, ``relay_call``): the reader hands
    it each event as its frame arrives and it settles once, with a Result (or, ``raw``,
    a Reply) or a ModelportError: into a future, or by calling ``on_end`` at once. Its
    deadline (the link's ``Deadlines``) times it out; the future's cancellation (or
    ``cancel()``) cancels it in the worker. No queue, generator, task or timer per
    request: this is every unary request's path."""

    __slots__ = ("id", "link", "future", "on_end", "raw", "output", "chunks", "finished",
                 "timeout_s", "ended")

    def __init__(self, link: WorkerLink, request_id: str, future: asyncio.Future[Any] | None,
                 raw: bool, timeout_s: float | None,
                 on_end: Callable[[Any], None] | None = None) -> None:
        self.id = request_id
        self.link = link
        self.future = future
        self.on_end = on_end
        self.raw = raw
        self.output: Any = None
        self.chunks: list[Any] = []
        self.finished = False  # no longer tracked by the link
        self.timeout_s = timeout_s
        self.ended = False  # on_end was called (or cancel() made sure it never will be)

    @property
    def pending(self) -> bool:
        """Still waiting for its answer (``Deadlines`` skips it otherwise)."""
        return not self.finished

    @property
    def events(self) -> _Unary:
        return self

    def _settled(self) -> bool:
        return self.ended if self.future is None else self.future.done()

    def _settle(self, outcome: Any) -> None:
        if self.future is not None:
            if isinstance(outcome, ModelportError):
                self.future.set_exception(outcome)
            else:
                self.future.set_result(outcome)
            return
        self.ended = True
        try:
            self.on_end(outcome)  # type: ignore[misc]
        except Exception:  # the caller's bug: the connection (we are in its callback) lives
            log.exception("%s: handling the answer to %s failed", self.link.name, self.id)

    def put_nowait(self, event: tuple[str, Any]) -> None:
        kind, payload = event
        if self._settled():
            return
        if kind == "output":
            self.output = payload
            return
        if kind == "chunk":
            self.chunks.append(payload.decoded() if self.raw else payload)
            return
        if kind == "done":
            duration, timings = payload
            try:
                outcome = self._joined(duration, timings)
            except ModelportError as err:
                outcome = err
            self._settle(outcome)
            return
        self._settle(payload)

    def _joined(self, duration: float | None, timings: Any) -> Any:
        out = self.output
        if self.raw:
            if out is None:
                out = Reply.of(_join(self.chunks, duration))
            out.timings = timings
            return out
        if out is None:
            out = _join(self.chunks, duration)
        return dataclasses.replace(out, timings=timings) if timings else out

    def expire(self) -> None:
        """The timeout ran out: the caller hears ``request.timeout``; the worker, cancel."""
        self.link._abandon(self)
        if not self._settled():
            self._settle(timeout_error(self.id, self.timeout_s or 0.0))

    def ended_callback(self, future: asyncio.Future[Any]) -> None:
        """The future is settled (or the caller cancelled it)."""
        if not self.finished:  # cancelled by its caller: the worker drops or stops it
            self.link._abandon(self)

    def cancel(self) -> None:
        """The caller went away (``relay_call``): no ``on_end``; the worker stops it."""
        self.ended = True
        self.link._abandon(self)


class WorkerLink:
    """Requests to one connected worker, multiplexed by id.

    Frames are cut from the byte stream and handled in the connection's ``data_received``
    (``services/wire/transport.py``): no reader task, no await per frame. ``exit_code``
    (optional) resolves to the worker process's exit status; it lets a crash report name
    the exit code. ``on_log`` receives each ``log`` header.
    """

    def __init__(self, frames: FrameProtocol, hello: dict[str, Any], *, name: str = "worker",
                 exit_code: asyncio.Future[int] | None = None,
                 on_log: Callable[[dict[str, Any]], None] | None = None,
                 early: list[p.Frame] | None = None,
                 lost: tuple[Exception | None] | None = None) -> None:
        self.name = name
        self.hello = hello
        self.ready_info: dict[str, Any] | None = None
        self._frames = frames
        self._exit_code = exit_code
        self._on_log = on_log
        self._loop = asyncio.get_running_loop()
        self._requests: dict[str, Any] = {}
        self._probes: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._setup: asyncio.Future[dict[str, Any]] | None = None
        self._probe_ids = itertools.count(1)
        self._closed = asyncio.Event()
        self._failure: ModelportError | None = None
        self._known_exit: int | None = None
        #: after EOF with requests in flight: waits briefly for the exit code, then fails them
        self._exit_wait: asyncio.Task[None] | None = None
        #: the unary requests' timeouts, on one timer
        self._deadlines = Deadlines(self._loop)
        if frames.transport is not None:
            frames.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        frames.on_frame = self._dispatch
        frames.on_lost = self._lost
        for frame in early or ():  # what arrived after hello, before this link existed
            self._dispatch(frame)
        if lost is not None:
            self._lost(lost[0])

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
        self._frames.close()

    # ------------------------------------------------------------------ requests

    async def setup(self, config: dict[str, Any] | None = None,
                    timeout_s: float | None = 120.0) -> dict[str, Any]:
        """Ask the worker to load the package; returns the ``ready`` header.

        Raises ModelportError: ``worker.setup_failed`` (Kind.MODEL, "setup raised T: m";
        Kind.INVALID for a config.json the kind cannot use), ``worker.crashed`` if the
        process died, Kind.DEADLINE ``worker.setup_timeout``.
        """
        self._check_open()
        self._setup = self._loop.create_future()
        self._send(p.setup(config))
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
        ``tensor_outputs``: numpy arrays may come back as raw named tensors (OIP)."""
        header, parts = p.predict(request_id, inputs, timeout_s, None, tensor_outputs)
        return await self._unary(request_id, header, parts, timeout_s, raw=False)

    def relay(self, request_id: str, inputs: Any, parts: list[Any],
              timeout_s: float | None = None, tensor_outputs: bool = False
              ) -> Awaitable[Reply]:
        """``predict`` for a request that arrived as a frame (the data socket): its
        header's ``inputs`` and its parts go to the worker as they are, and the answer
        comes back as a ``Reply`` (undecoded). Returns the request's future itself (no
        coroutine on the hot path); cancelling it cancels the request in the worker."""
        header: dict[str, Any] = {"kind": p.PREDICT, "id": request_id, "inputs": inputs}
        if timeout_s is not None:
            header["timeout_s"] = timeout_s
        if tensor_outputs:
            header["tensor_outputs"] = True
        return self._unary(request_id, header, parts, timeout_s, raw=True)

    def relay_call(self, request_id: str, inputs: Any, parts: list[Any],
                   timeout_s: float | None, tensor_outputs: bool,
                   on_end: Callable[[Reply | ModelportError], None]) -> _Unary:
        """``relay`` for a caller without a task to await with: ``on_end(reply or
        error)`` is called once, synchronously, as the answer (or the failure) arrives,
        unless the returned handle's ``cancel()`` came first. Raises ModelportError when
        the request cannot be sent (closed link, duplicate id, too large)."""
        header: dict[str, Any] = {"kind": p.PREDICT, "id": request_id, "inputs": inputs}
        if timeout_s is not None:
            header["timeout_s"] = timeout_s
        if tensor_outputs:
            header["tensor_outputs"] = True
        req = _Unary(self, request_id, None, True, timeout_s, on_end)
        self._frames.write(self._register(request_id, req, header, parts))
        if timeout_s is not None:
            self._deadlines.add(self._loop.time() + timeout_s, req, len(self._requests))
        return req

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
                        self._send_quietly(p.credit(request_id, taken))
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
                outcomes[i] = _duplicate(item.id, self.name)
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
        all_ended = self._loop.create_future()
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
            self._requests[req.id] = req
        abandoned: list[_BatchRequest] = []
        try:
            # a write to a dead worker is dropped: the crash fails the items (exit code)
            self._frames.write(buffers)
            if self._frames.paused:
                await self._frames.drain()
            try:
                async with asyncio.timeout(timeout_s):
                    await asyncio.shield(all_ended)
            except TimeoutError:
                abandoned = [req for req in reqs if not req.finished]
                for req in abandoned:
                    req.finished = True
                    self._requests.pop(req.id, None)
                    req.events.put_nowait(("failed", timeout_error(req.id, timeout_s or 0.0)))
        finally:  # timed out, or this call was cancelled: the worker drops what is left
            for req in reqs:
                if not req.finished:
                    req.finished = True
                    self._requests.pop(req.id, None)
                    abandoned.append(req)
            for req in abandoned:
                self._send_quietly(p.cancel(req.id))
        return outcomes  # type: ignore[return-value]

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

    async def cancel(self, request_id: str) -> None:
        """Stop a request: it fails here at once; the worker drops it or stops it."""
        req = self._requests.pop(request_id, None)
        if req is not None and not req.finished:
            req.finished = True
            req.events.put_nowait(("failed", ModelportError(
                Kind.UNAVAILABLE, "request.cancelled", "the request was cancelled")))
        self._send_quietly(p.cancel(request_id))

    async def health(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The worker's health reply: ``{state, busy, queued}``."""
        self._check_open()
        probe_id = f"h{next(self._probe_ids)}"
        fut: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._probes[probe_id] = fut
        try:
            self._send(p.health(probe_id))
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
        self._send_quietly(p.shutdown())
        try:
            async with asyncio.timeout(timeout_s):
                await self._closed.wait()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Drop the connection (the worker exits when it notices)."""
        self._frames.close()
        if self._exit_wait is not None:
            self._exit_wait.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._exit_wait
        self._fail_all(self._known_exit)

    # ------------------------------------------------------------------ internals

    def _register(self, request_id: str, req: Any, header: dict[str, Any],
                  parts: list[Any]) -> list[Any]:
        """What every request starts with: the link is open, the id is not in flight
        here, the frame is within limits; then ``req`` is tracked. Returns the frame."""
        self._check_open()
        if request_id in self._requests:
            raise _duplicate(request_id, self.name)
        try:
            buffers = p.encode_frame(header, parts)
        except p.FrameTooLarge as exc:
            raise ModelportError(Kind.TOO_LARGE, "request.too_large", str(exc),
                                 fix="send smaller inputs") from None
        self._requests[request_id] = req
        return buffers

    def _unary(self, request_id: str, header: dict[str, Any], parts: list[Any],
               timeout_s: float | None, raw: bool) -> Awaitable[Any]:
        """Send one predict; the future settles with its answer, its error, or
        ``request.timeout`` after ``timeout_s``. While the worker reads slower than we
        write, a coroutine that waits for it first comes back instead."""
        future = self._loop.create_future()
        req = _Unary(self, request_id, future, raw, timeout_s)
        # a write to a worker that just died is dropped: the crash fails the request
        # (with the exit code) once the connection's loss is noticed
        self._frames.write(self._register(request_id, req, header, parts))
        if timeout_s is not None:
            self._deadlines.add(self._loop.time() + timeout_s, req, len(self._requests))
        future.add_done_callback(req.ended_callback)
        return self._after_drain(future) if self._frames.paused else future

    async def _after_drain(self, future: asyncio.Future[Any]) -> Any:
        """``future``'s outcome, once the worker has read enough of what we wrote; a
        caller that gives up meanwhile cancels it (and so the request)."""
        try:
            await self._frames.drain()
        except BaseException:
            future.cancel()
            raise
        return await future

    def _abandon(self, req: _Unary) -> None:
        """A unary request timed out or was cancelled here: the worker drops or stops it."""
        if not req.finished:
            req.finished = True
            if self._requests.get(req.id) is req:
                del self._requests[req.id]
            self._send_quietly(p.cancel(req.id))

    async def _exchange(self, request_id: str, inputs: dict[str, Value],
                        timeout_s: float | None, window: int | None = None,
                        tensor_outputs: bool = False) -> AsyncIterator[tuple[str, Any]]:
        """Send one predict and yield its events until done; fails, times out, cancels."""
        header, parts = p.predict(request_id, inputs, timeout_s, window, tensor_outputs)
        req = _Request(request_id)
        buffers = self._register(request_id, req, header, parts)
        loop = self._loop
        deadline = None if timeout_s is None else loop.time() + timeout_s
        try:
            self._frames.write(buffers)  # dropped if the worker died: the crash fails it
            if self._frames.paused:
                await self._frames.drain()
            while True:
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    async with asyncio.timeout(remaining):
                        event, payload = await req.events.get()
                except TimeoutError:
                    raise timeout_error(request_id, timeout_s or 0.0) from None
                if event == "failed":
                    raise payload
                yield event, payload
                if event == "done":
                    return
        finally:
            if not req.finished:  # timed out, cancelled, or the consumer stopped early
                req.finished = True
                self._requests.pop(request_id, None)
                self._send_quietly(p.cancel(request_id))

    def _check_open(self) -> None:
        if self._failure is not None:
            raise crashed_error(self._known_exit, during="")
        if self.closed:
            raise _unavailable(f"the model process ({self.name}) is not connected")

    def _send(self, message: tuple[dict[str, Any], list[bytes]]) -> None:
        """Write one frame now (dropped when the connection is gone: whoever waits for
        its answer is failed by the crash)."""
        header, parts = message
        self._frames.write(p.encode_frame(header, parts))

    def _send_quietly(self, message: tuple[dict[str, Any], list[bytes]]) -> None:
        if not self.closed:
            self._send(message)

    def _lost(self, exc: Exception | None) -> None:
        """The connection ended (EOF, a socket error, or a protocol error we closed it
        for): fail what is in flight, with the exit code if it comes soon."""
        if isinstance(exc, p.ProtocolError):
            log.error("%s: protocol error, dropping the connection: %s", self.name, exc)
        if self.closed or self._exit_wait is not None:
            return
        if self._known_exit is None and self._exit_code is not None and self._requests:
            self._exit_wait = self._loop.create_task(self._fail_after_exit(),
                                                     name=f"{self.name}-lost")
        else:
            self._fail_all(self._known_exit)

    async def _fail_after_exit(self) -> None:
        code = None
        assert self._exit_code is not None
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            code = await asyncio.wait_for(asyncio.shield(self._exit_code), EXIT_CODE_WAIT_S)
        self._fail_all(code if code is not None else self._known_exit)

    def _fail_all(self, code: int | None) -> None:
        if code is not None:
            self._known_exit = code
        if self._failure is None:
            self._failure = crashed_error(code, during="")
        requests = list(self._requests.values())
        self._requests.clear()
        self._deadlines.close()
        self._closed.set()  # first: a relay's callback below may look whether it is open
        # the worker runs its requests one at a time, in the order they were sent: only
        # the oldest one still here can have started
        for n, req in enumerate(requests):
            req.finished = True
            req.events.put_nowait(("failed", crashed_error(code, req.id, started=n == 0)))
        for fut in self._probes.values():
            if not fut.done():
                fut.set_exception(crashed_error(code, during="during a health check"))
        if self._setup is not None and not self._setup.done():
            self._setup.set_exception(crashed_error(code, during="during setup"))
            self._setup.exception()  # retrieved here, so an abandoned setup logs nothing

    def _dispatch(self, frame: p.Frame) -> None:
        kind, header = frame.kind, frame.header
        if kind == p.OUTPUT or kind == p.CHUNK or kind == p.DONE:
            req = self._requests.get(header.get("id") or "")
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
            raw = header.get("result")
            duration = header.get("duration_ms") if kind == p.OUTPUT else None
            try:
                if req.raw:
                    if not _plain_result(raw, len(frame.parts)):
                        p.decode_result(raw, frame.parts)  # raises what is wrong with it
                    payload: Any = Reply(raw, frame.parts, duration)
                else:
                    payload = p.decode_result(raw, [bytes(x) for x in frame.parts])
                    if duration is not None:
                        payload = dataclasses.replace(payload, duration_ms=duration)
            except p.ProtocolError as exc:
                req.finished = True
                del self._requests[req.id]
                req.events.put_nowait(("failed", ModelportError(
                    Kind.INTERNAL, "worker.protocol_error", str(exc))))
                return
            req.events.put_nowait(("output" if kind == p.OUTPUT else "chunk", payload))
            if kind == p.OUTPUT and header.get("final") is True:  # also its done
                req.finished = True
                self._requests.pop(req.id, None)
                req.events.put_nowait(("done", (duration, header.get("timings"))))
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


class _Arrival:
    """A worker's connection until its WorkerLink exists: the first frame (its hello) is
    awaited, later frames (logs) are kept in order for the link, and a loss is noted."""

    def __init__(self) -> None:
        self.frames = FrameProtocol(self._frame, self._lost)
        self.hello: asyncio.Future[p.Frame | None] = asyncio.get_running_loop().create_future()
        self.early: list[p.Frame] = []
        self.lost: tuple[Exception | None] | None = None

    def _frame(self, frame: p.Frame) -> None:
        if not self.hello.done():
            self.hello.set_result(frame)
        else:
            self.early.append(frame)

    def _lost(self, exc: Exception | None) -> None:
        self.lost = (exc,)
        if not self.hello.done():
            if isinstance(exc, p.ProtocolError):
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
        except p.ProtocolError as exc:
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

