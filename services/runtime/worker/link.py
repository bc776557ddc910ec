"""The runtime's end of a worker connection, on the protocol in ``modelport/worker/protocol.py``.

The runtime listens on a per-replica unix socket (``WorkerListener``) and the worker
connects and says ``hello``. A ``WorkerLink`` then multiplexes requests by id; frames are
cut and handled as they arrive (``services/wire/transport.py``), each settling its
request: a unary one by calling back (``call``), a stream through its queue. When the
connection drops or the process exits, every request in flight fails at once with
``worker.crashed``, carrying the exit code when it is known.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from modelport.errors import Kind, ModelportError
from modelport.worker import protocol as p
from modelport.worker.frames import Frame, FrameTooLarge, ProtocolError, encode_frame
from modelport.worker.values import BatchItem, Result, Value, decode_result
from services.runtime.dataplane.deadlines import Deadlines
from services.runtime.worker.errors import (
    crashed_error,
    duplicate_error,
    error_from_worker,
    setup_error,
    timeout_error,
    unavailable_error,
)
from services.runtime.worker.requests import (
    BatchItemRequest,
    ItemSink,
    Reply,
    StreamRequest,
    UnaryRequest,
    plain_result,
    too_large_alone,
)
from services.wire.transport import FrameProtocol

log = logging.getLogger(__name__)

#: how long a dropped connection waits for the process's exit code before failing requests
EXIT_CODE_WAIT_S = 1.0
#: a connection's write buffer above which writers wait for the worker to read
WRITE_HIGH_WATER = 1024 * 1024
#: chunks a streaming model may run ahead of the consumer; credit goes back in halves
STREAM_WINDOW = 16


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
                 early: list[Frame] | None = None,
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

    def call(self, request_id: str, inputs: Any, parts: list[Any], timeout_s: float | None,
             tensor_outputs: bool, on_end: Callable[[Reply | ModelportError], None]
             ) -> UnaryRequest:
        """One unary predict, the runtime's one convention for it (``dataplane/calls.py``):
        ``inputs`` (the header form, ``encode_inputs``) and ``parts`` go to the worker as
        they are; ``on_end(reply or error)`` is called once, synchronously, as the answer
        (or the failure, or ``request.timeout``) arrives, unless the returned handle's
        ``cancel()`` came first. A streaming model's chunks are joined into one answer.
        Raises ModelportError when the request cannot be sent (closed link, duplicate id,
        too large). No future, task or timer per request: this is every unary request's
        path."""
        header = p.predict_header(request_id, inputs, timeout_s, None, tensor_outputs)
        req = UnaryRequest(self, request_id, timeout_s, on_end)
        # a write to a worker that just died is dropped: the crash fails the request
        # (with the exit code) once the connection's loss is noticed
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
        handled as their frames arrive (``ItemSink``): no task or queue per item.
        """
        self._check_open()
        outcomes: list[Result | ModelportError | None] = [None] * len(items)
        live: list[int] = []
        ids: set[str] = set()
        for i, item in enumerate(items):
            if item.id in self._requests or item.id in ids:
                outcomes[i] = duplicate_error(item.id, self.name)
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

        reqs = [BatchItemRequest(items[i].id, ItemSink(i, ended)) for i in live]
        for req in reqs:
            self._requests[req.id] = req
        abandoned: list[BatchItemRequest] = []
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
                return encode_frame(header, parts)
            except FrameTooLarge as exc:
                alone = [i for i in live if too_large_alone(items[i])]
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
            raise duplicate_error(request_id, self.name)
        try:
            buffers = encode_frame(header, parts)
        except FrameTooLarge as exc:
            raise ModelportError(Kind.TOO_LARGE, "request.too_large", str(exc),
                                 fix="send smaller inputs") from None
        self._requests[request_id] = req
        return buffers

    def _abandon(self, req: UnaryRequest) -> None:
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
        req = StreamRequest(request_id)
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
            raise unavailable_error(f"the model process ({self.name}) is not connected")

    def _send(self, message: tuple[dict[str, Any], list[bytes]]) -> None:
        """Write one frame now (dropped when the connection is gone: whoever waits for
        its answer is failed by the crash)."""
        header, parts = message
        self._frames.write(encode_frame(header, parts))

    def _send_quietly(self, message: tuple[dict[str, Any], list[bytes]]) -> None:
        if not self.closed:
            self._send(message)

    def _lost(self, exc: Exception | None) -> None:
        """The connection ended (EOF, a socket error, or a protocol error we closed it
        for): fail what is in flight, with the exit code if it comes soon."""
        if isinstance(exc, ProtocolError):
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

    def _dispatch(self, frame: Frame) -> None:
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
                    if not plain_result(raw, len(frame.parts)):
                        decode_result(raw, frame.parts)  # raises what is wrong with it
                    payload: Any = Reply(raw, frame.parts, duration)
                else:
                    payload = decode_result(raw, [bytes(x) for x in frame.parts])
                    if duration is not None:
                        payload = dataclasses.replace(payload, duration_ms=duration)
            except ProtocolError as exc:
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

