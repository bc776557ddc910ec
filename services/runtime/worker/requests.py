"""A worker's requests in flight, as the link's reader settles them: unary (``UnaryRequest``),
streamed (``StreamRequest``) and batch items (``BatchItemRequest`` into an ``ItemSink``), and the
answer shapes they settle with (``Reply``, a Result joined from chunks)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelport.errors import Kind, ModelportError
from modelport.worker import protocol as p
from modelport.worker.frames import FrameTooLarge, encode_frame
from modelport.worker.values import BatchItem, Result, decode_result, encode_result
from services.runtime.worker.errors import timeout_error

if TYPE_CHECKING:
    from services.runtime.worker.link import WorkerLink

log = logging.getLogger(__name__)


class Reply:
    """A worker's answer to a unary predict (``WorkerLink.call``) as it came: the
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
        return cls(encode_result(result, parts), parts, result.duration_ms, result.timings)

    def decoded(self) -> Result:
        """The answer as a Result (its parts copied out of the frame)."""
        result = decode_result(self.result, [bytes(x) for x in self.parts])
        return dataclasses.replace(result, duration_ms=self.duration_ms,
                                   timings=self.timings)


def plain_result(raw: Any, n_parts: int) -> bool:
    """Whether ``raw`` is ``{json: i}`` or ``{bytes: i}`` with part i in the frame (the
    common answer, checked without building a Result)."""
    if type(raw) is not dict or len(raw) != 1:
        return False
    for tag, index in raw.items():
        return (tag == "json" or tag == "bytes") and type(index) is int and (
            0 <= index < n_parts)
    return False


class StreamRequest:
    """One streamed request in flight: its events ("output" | "chunk" | "done" | "failed",
    payload) in a queue its consumer reads."""

    raw = False

    def __init__(self, request_id: str) -> None:
        self.id = request_id
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.finished = False


class _Collecting:
    """A request whose events (as the link's reader hands them over) end in one answer: its
    ``output``, or its chunks joined once ``done`` arrives; ``failed`` ends it with the
    error. Subclasses say what a chunk is kept as, how the answer is made, and where it
    goes (``_settle``, called once)."""

    __slots__ = ()
    ended: bool
    output: Any
    chunks: list[Result]

    def put_nowait(self, event: tuple[str, Any]) -> None:
        kind, payload = event
        if self.ended:
            return
        if kind == "output":
            self.output = payload
        elif kind == "chunk":
            self.chunks.append(self._chunk(payload))
        elif kind == "done":
            duration, timings = payload
            try:
                outcome = self._joined(duration, timings)
            except ModelportError as err:
                outcome = err
            self._settle(outcome)
        else:
            self._settle(payload)

    def _chunk(self, payload: Any) -> Result:
        return payload

    def _joined(self, duration: float | None, timings: Any) -> Any:
        raise NotImplementedError

    def _settle(self, outcome: Any) -> None:
        raise NotImplementedError


class ItemSink(_Collecting):
    """A batch item's events, handled as they arrive: ``on_end(index, outcome)`` once."""

    __slots__ = ("index", "on_end", "output", "chunks", "ended")

    def __init__(self, index: int, on_end: Callable[[int, Any], None]) -> None:
        self.index = index
        self.on_end = on_end
        self.output: Result | None = None
        self.chunks: list[Result] = []
        self.ended = False

    def _joined(self, duration: float | None, timings: Any) -> Result:
        result = self.output if self.output is not None else join_chunks(self.chunks,
                                                                         duration)
        return dataclasses.replace(result, timings=timings) if timings else result

    def _settle(self, outcome: Result | ModelportError) -> None:
        self.ended = True
        self.on_end(self.index, outcome)


class BatchItemRequest:
    """A batch item in flight: looks like ``StreamRequest`` to the reader, but its events go
    straight to an ``ItemSink``."""

    __slots__ = ("id", "events", "finished")
    raw = False

    def __init__(self, request_id: str, sink: ItemSink) -> None:
        self.id = request_id
        self.events = sink
        self.finished = False


class UnaryRequest(_Collecting):
    """A unary request in flight (``WorkerLink.call``): the reader hands it each event as
    its frame arrives and it settles once, with a Reply or a ModelportError, by calling
    ``on_end`` at once. Its deadline (the link's ``Deadlines``) times it out; ``cancel()``
    cancels it in the worker."""

    __slots__ = ("id", "link", "on_end", "output", "chunks", "finished", "timeout_s",
                 "ended")
    raw = True  # the reader hands it Replies, undecoded

    def __init__(self, link: WorkerLink, request_id: str, timeout_s: float | None,
                 on_end: Callable[[Reply | ModelportError], None]) -> None:
        self.id = request_id
        self.link = link
        self.on_end = on_end
        self.output: Reply | None = None
        self.chunks: list[Result] = []
        self.finished = False  # no longer tracked by the link
        self.timeout_s = timeout_s
        self.ended = False  # on_end was called (or cancel() made sure it never will be)

    @property
    def pending(self) -> bool:
        """Still waiting for its answer (``Deadlines`` skips it otherwise)."""
        return not self.finished

    @property
    def events(self) -> UnaryRequest:
        return self

    def _settle(self, outcome: Reply | ModelportError) -> None:
        on_end = self._let_go()
        try:
            on_end(outcome)
        except Exception:  # the caller's bug: the connection (we are in its callback) lives
            log.exception("%s: handling the answer to %s failed", self.link.name, self.id)

    def _let_go(self) -> Callable[[Reply | ModelportError], None]:
        """Ended: drop the answer and the caller's callback (which holds the request's own
        frame). Its deadline stays in the link's ``Deadlines`` heap until it comes due (or
        the heap is pruned), so a settled request kept whole there held its request and
        answer: with 4 MB answers, 64 of them held about half a gigabyte."""
        self.ended = True
        on_end, self.on_end = self.on_end, _settled
        self.output = None
        self.chunks = []
        return on_end

    def _chunk(self, payload: Reply) -> Result:
        return payload.decoded()

    def _joined(self, duration: float | None, timings: Any) -> Reply:
        out = self.output
        if out is None:
            out = Reply.of(join_chunks(self.chunks, duration))
        out.timings = timings
        return out

    def expire(self) -> None:
        """The timeout ran out: the caller hears ``request.timeout``; the worker, cancel."""
        self.link._abandon(self)
        if not self.ended:
            self._settle(timeout_error(self.id, self.timeout_s or 0.0))

    def cancel(self) -> None:
        """The caller went away: no ``on_end``; the worker stops it."""
        self._let_go()
        self.link._abandon(self)


def _settled(outcome: Reply | ModelportError) -> None:
    """What an ended request calls with a late answer: nothing."""


def too_large_alone(item: BatchItem) -> bool:
    """Whether this item alone breaks a frame limit."""
    try:
        encode_frame(*p.predict(item.id, item.inputs, item.timeout_s))
    except FrameTooLarge:
        return True
    return False


def join_chunks(chunks: list[Result], duration: float | None) -> Result:
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
