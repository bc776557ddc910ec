"""The worker process: connect to the runtime, load the package, serve predictions.

Run as ``<venv python> -m modelport_worker.shim --socket PATH --package DIR [--kind K]``.

Two threads, one socket:

- the main thread reads frames while no model code runs, and runs the queue in order:
  setup once, then one prediction (or one batch: a single call of the model's
  ``predict_batch``) at a time (model code runs on the main thread, where libraries
  expect it). A request that arrives at an idle worker is read, run and answered by
  this one thread, with no hand-off between threads;
- the watch thread reads frames while model code runs for longer than
  ``WATCH_INTERVAL_S`` (at once for setup, a batch or a stream): it answers ``health``,
  queues ``predict``, flags ``cancel`` and ``credit`` for the running request, and exits
  the process when the runtime goes away mid-call (after ``ORPHAN_GRACE_S``; an idle
  main thread sees the end of the stream itself). When it looks and when it sleeps is
  ``watch.py``'s: a short prediction never wakes it.

Whoever reads holds ``Shim._io``: the main thread always, except inside model code.

A batch answers each of its requests on its own (``output``/``done`` by id): an item the
model returns an Exception for, or whose inputs are invalid, fails alone; a
``predict_batch`` that raises, or returns a list of the wrong length, fails them all.

stdout and stderr are the replica log; the protocol has its own socket, so ``print()`` in
model code can never corrupt it. User exceptions become ``done`` frames with
``{type, message, traceback}``; the traceback is also printed to stderr.

Stdlib only, Python >= 3.8.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import platform
import sys
import threading
import time
from typing import Any

from . import protocol as p
from .channel import SocketChannel
from .exit_codes import EXIT_SETUP_FAILED
from .failures import check_size, error_from
from .frames import Frame, ProtocolError
from .kinds import load_adapter
from .kinds.base import RequestContext, ShimError, ms3
from .process import (
    connect,
    enter_package,
    exit_if_out_of_memory,
    limit_self,
    readable_poller,
    stderr_line,
)
from .values import Result, Value, decode_inputs
from .watch import WATCH_INTERVAL_S, CallWatch

#: how long the process lingers for model code to return once the runtime is gone
ORPHAN_GRACE_S = 2.0


class Disconnected(OSError):
    """The socket to the runtime broke while sending a result."""


class _Job:
    """A queued setup (no ctx), prediction (ctx and inputs) or batch (``batch``)."""

    def __init__(self, frame: Frame, ctx: RequestContext | None = None,
                 inputs: dict[str, Value] | None = None,
                 batch: list[tuple[RequestContext, dict[str, Value]]] | None = None) -> None:
        self.frame = frame
        self.ctx = ctx
        self.inputs = inputs or {}
        self.batch = batch

    def contexts(self) -> list[RequestContext]:
        """The requests this job answers (none for setup)."""
        if self.batch is not None:
            return [ctx for ctx, _ in self.batch]
        return [self.ctx] if self.ctx is not None else []


class Shim:
    def __init__(self, channel: SocketChannel, package_dir: str, kind: str | None = None):
        self.channel = channel
        self.package_dir = package_dir
        self.kind = kind
        self.adapter: Any = None
        self.state = "new"  # new | setting_up | ready | failed | stopping
        #: held by the thread that may read the socket and change the queue and the
        #: state below: the main thread, except while it runs model code
        self._io = threading.Lock()
        self._queue: collections.deque[_Job] = collections.deque()
        self._current: RequestContext | None = None
        #: the requests of the batch the main thread is running (empty when none)
        self._current_batch: list[RequestContext] = []
        self._stopping = False
        self._main_done = threading.Event()
        #: the model calls, as the watch thread sees them (watch.py)
        self._watch = CallWatch()
        self._poll: Any = None  # readable_poller of the socket, made by run()

    # ------------------------------------------------------------------ sending

    def send(self, message: tuple[dict[str, Any], list[bytes]]) -> None:
        header, parts = message
        self.channel.send(header, parts)

    def _emit_many(self, messages: list[tuple[dict[str, Any], list[bytes]]]) -> None:
        """A batch's answers in one write; a broken socket becomes Disconnected."""
        try:
            self.channel.send_many(messages)
        except OSError as exc:
            raise Disconnected(str(exc)) from exc

    def _emit(self, message: tuple[dict[str, Any], list[bytes]]) -> None:
        """Send a result frame; a broken socket becomes Disconnected, never the model's error."""
        try:
            self.send(message)
        except OSError as exc:
            raise Disconnected(str(exc)) from exc

    def log(self, level: str, message: str, request_id: str | None = None) -> None:
        stderr_line(message)
        try:
            self.send(p.log(level, message, request_id))
        except OSError:
            pass

    # ------------------------------------------------------------------ reading

    def _receive(self) -> bool:
        """Read what has arrived (blocking) and handle every complete frame; False once
        the runtime is gone. Call holding ``_io``."""
        try:
            if not self.channel.fill():
                if self.channel.partial():
                    stderr_line("protocol error from the runtime, exiting: the connection "
                            "closed in the middle of a frame")
                return False
            while True:
                frame = self.channel.next_frame()
                if frame is None:
                    return True
                self.handle(frame)
        except ProtocolError as exc:
            stderr_line(f"protocol error from the runtime, exiting: {exc}")
        except OSError:
            pass
        return False

    def _serve_call(self, calls: int) -> bool:
        """The watch thread: read frames while model call number ``calls`` runs; False
        once the runtime is gone (the process is then on its way out)."""
        poll, watch = self._poll, self._watch
        while watch.calls == calls and watch.in_call:
            if not poll(WATCH_INTERVAL_S):
                continue
            if not self._io.acquire(False):
                return True  # the main thread is back at the socket
            try:
                # the main thread may have read this data before a later call began
                alive = not poll(0) or self._receive()
                if not alive:
                    self._forget_queue()
            finally:
                self._io.release()
            if not alive:
                self._runtime_gone()
                return False
        return True

    def _enter_call(self, watch_now: bool = False) -> None:
        """Model code is about to run: the watch thread may read from now on (at once
        when ``watch_now``: a call expected to be long). Call holding ``_io``."""
        self._watch.enter(self._io.release, watch_now)

    def _leave_call(self) -> None:
        self._io.acquire()
        self._watch.leave()
        self._current = None
        self._current_batch = []

    def handle(self, frame: Frame) -> None:
        """One frame from the runtime (call holding ``_io``)."""
        kind = frame.kind
        if kind == p.PREDICT:
            self._enqueue_predict(frame)
        elif kind == p.HEALTH:
            current = self._current
            busy = current.id if current else (
                self._current_batch[0].id if self._current_batch else None)
            queued = sum(len(job.contexts()) for job in self._queue)
            self.send(p.health_reply(frame.id or "", self.state, busy, queued))
        elif kind == p.SETUP:
            self._queue.append(_Job(frame))
        elif kind == p.PREDICT_BATCH:
            self._enqueue_batch(frame)
        elif kind == p.CREDIT:
            self._credit(frame.id, frame.header.get("n"))
        elif kind == p.CANCEL:
            self._cancel(frame.id)
        elif kind == p.SHUTDOWN:
            self._stop_accepting()
        else:
            self.log("warning", f"ignoring unknown message kind {kind!r} (newer runtime?)")

    def _enqueue_predict(self, frame: Frame) -> None:
        request_id = frame.id
        if not isinstance(request_id, str) or not request_id:
            self.log("error", "predict without a request id ignored")
            return
        try:
            inputs = decode_inputs(frame.header.get("inputs"), frame.parts)
        except ProtocolError as exc:
            self.send(p.done(request_id, p.error_dict("InvalidInput", str(exc), "",
                                                     p.ErrorCode.INVALID_INPUT)))
            return
        timeout = frame.header.get("timeout_s")
        window = frame.header.get("window")
        ctx = RequestContext(request_id, timeout if isinstance(timeout, (int, float)) else None,
                             window if isinstance(window, int) and window > 0 else None)
        ctx.tensor_outputs = frame.header.get("tensor_outputs") is True
        if self._stopping:
            error = p.error_dict("ShuttingDown", "the worker is shutting down", "",
                                 p.ErrorCode.SHUTTING_DOWN)
        elif self._in_progress(request_id):
            error = p.error_dict("DuplicateRequest", f"request {request_id!r} is already "
                                 "in progress", "", p.ErrorCode.DUPLICATE_ID)
        else:
            self._queue.append(_Job(frame, ctx, inputs))
            return
        self.send(p.done(request_id, error))

    def _in_progress(self, request_id: str) -> bool:
        """Whether a request with this id is queued or running (call holding _io)."""
        if not self._queue and self._current is None and not self._current_batch:
            return False
        return any(ctx.id == request_id for ctx in self._running()) or any(
            ctx.id == request_id for job in self._queue for ctx in job.contexts())

    def _running(self) -> list[RequestContext]:
        """The requests the main thread is working on (call holding _io)."""
        current = [self._current] if self._current is not None else []
        return current + [ctx for ctx in self._current_batch if ctx is not self._current]

    def _enqueue_batch(self, frame: Frame) -> None:
        """Queue a predict_batch as one job; an item that cannot run is answered alone."""
        items = frame.header.get("items")
        if not isinstance(items, list):
            self.log("error", "predict_batch without an 'items' list ignored")
            return
        timeout = frame.header.get("timeout_s")
        tensor_outputs = frame.header.get("tensor_outputs") is True
        answers: list[tuple[dict[str, Any], list[bytes]]] = []
        batch: list[tuple[RequestContext, dict[str, Value]]] = []
        for raw in items:
            request_id = raw.get("id") if isinstance(raw, dict) else None
            if not isinstance(request_id, str) or not request_id:
                self.log("error", "predict_batch item without a request id ignored")
                continue
            try:
                inputs = decode_inputs(raw.get("inputs"), frame.parts)
            except ProtocolError as exc:
                answers.append(p.done(request_id, p.error_dict(
                    "InvalidInput", str(exc), "", p.ErrorCode.INVALID_INPUT)))
                continue
            own = raw.get("timeout_s", timeout)
            ctx = RequestContext(request_id, own if isinstance(own, (int, float)) else None)
            ctx.tensor_outputs = raw.get("tensor_outputs", tensor_outputs) is True
            batch.append((ctx, inputs))
        accepted: list[tuple[RequestContext, dict[str, Value]]] = []
        for ctx, inputs in batch:
            if self._stopping:
                error = p.error_dict("ShuttingDown", "the worker is shutting down", "",
                                     p.ErrorCode.SHUTTING_DOWN)
            elif self._in_progress(ctx.id) or any(c.id == ctx.id for c, _ in accepted):
                error = p.error_dict("DuplicateRequest", f"request {ctx.id!r} is already "
                                     "in progress", "", p.ErrorCode.DUPLICATE_ID)
            else:
                accepted.append((ctx, inputs))
                continue
            answers.append(p.done(ctx.id, error))
        if accepted:
            self._queue.append(_Job(frame, batch=accepted))
        if answers:
            self.channel.send_many(answers)

    def _merge_queued_batches(self, job: _Job) -> None:
        """Batches that queued up while the model was busy join ``job``, up to the
        model's max_batch_size (call holding _io).

        The runtime sends a batch at the latest max_latency_ms after its first request,
        even to a busy worker; merging here turns several small batches that waited
        behind a long call into one call, which is what keeps a model whose fixed cost
        per call exceeds max_latency_ms from falling behind.
        """
        assert job.batch is not None
        limit = getattr(self.adapter, "max_batch_size", 0) or 0
        while (self._queue and self._queue[0].batch is not None
               and len(job.batch) + len(self._queue[0].batch or ()) <= limit):
            job.batch.extend(self._queue.popleft().batch or ())

    def _cancel(self, request_id: str | None) -> None:
        for job in list(self._queue):
            if job.batch is not None:
                kept = [(c, i) for c, i in job.batch if c.id != request_id]
                if len(kept) < len(job.batch):
                    job.batch[:] = kept
                    if not kept:
                        self._queue.remove(job)
                    break
            elif job.ctx is not None and job.ctx.id == request_id:
                self._queue.remove(job)
                break
        else:
            for ctx in self._running():
                if ctx.id == request_id:
                    ctx.cancelled.set()
            return
        self.send(p.done(request_id or "", p.error_dict(
            "Cancelled", "the request was cancelled", "", p.ErrorCode.CANCELLED)))

    def _credit(self, request_id: str | None, n: object) -> None:
        current = self._current
        if current is not None and current.id == request_id and isinstance(n, int):
            current.add_credit(n)

    def _stop_accepting(self) -> None:
        """Shutdown: queued predictions fail, the running one finishes, then the loop ends."""
        self._stopping = True
        self.state = "stopping"
        dropped = [ctx for job in self._queue for ctx in job.contexts()]
        self._queue.clear()
        for ctx in dropped:
            self.send(p.done(ctx.id, p.error_dict(
                "ShuttingDown", "the worker shut down before running this request", "",
                p.ErrorCode.SHUTTING_DOWN)))

    def _forget_queue(self) -> None:
        """The runtime is gone: nothing queued runs, the running call is cancelled (call
        holding _io)."""
        self._stopping = True
        self._queue.clear()
        for ctx in self._running():
            ctx.cancelled.set()

    def _runtime_gone(self) -> None:
        """The watch thread saw the runtime go while model code runs: give the model
        ``ORPHAN_GRACE_S`` to return, then exit without it."""
        if not self._main_done.wait(ORPHAN_GRACE_S):
            stderr_line("the runtime closed the connection; exiting without waiting for the model")
            os._exit(0)

    # ------------------------------------------------------------------ main thread

    def run(self) -> int:
        self.send(p.hello(os.getpid(), platform.python_version(),
                          platform.python_implementation()))
        self._poll = readable_poller(self.channel.fileno())
        watcher = threading.Thread(target=self._watch.loop, args=(self._serve_call,),
                                   name="modelport-watch", daemon=True)
        self._io.acquire()
        watcher.start()
        try:
            while True:
                if not self._queue:
                    if self._stopping or not self._receive():
                        break
                    continue
                job = self._queue.popleft()
                if job.batch is not None:
                    self._merge_queued_batches(job)
                self._current = job.ctx
                self._current_batch = list(job.contexts()) if job.batch is not None else []
                # setup and batches are long: the watch thread reads at once
                self._enter_call(watch_now=job.ctx is None)
                try:
                    if job.batch is not None:
                        self._predict_batch(job)
                    elif job.ctx is None:
                        if not self._setup(job.frame):
                            return EXIT_SETUP_FAILED
                    else:
                        self._predict(job)
                finally:
                    self._leave_call()
            if self.adapter is not None:
                try:
                    self.adapter.close()
                except Exception as exc:  # noqa: BLE001 - a failing close must not hide exit
                    stderr_line(f"close() raised {type(exc).__name__}: {exc}")
            return 0
        except OSError as exc:  # the socket broke while sending
            stderr_line(f"lost the runtime connection: {exc}")
            return 0
        finally:
            self._main_done.set()

    def _setup(self, frame: Frame) -> bool:
        if self.adapter is not None:
            self.send(p.ready(self.adapter.kind, bool(self.adapter.streaming)))
            return True
        self.state = "setting_up"
        started = time.monotonic()
        config = frame.header.get("config")
        try:
            adapter = load_adapter(self.package_dir, config if isinstance(config, dict) else None,
                                   self.kind)
            adapter.setup()
        except BaseException as exc:  # noqa: BLE001 - SystemExit in setup is a failure too
            if isinstance(exc, KeyboardInterrupt):
                raise
            exit_if_out_of_memory(exc)
            self.state = "failed"
            error = error_from(exc)
            stderr_line(f"setup failed: {error['type']}: {error['message']}")
            if error["traceback"]:
                sys.stderr.write(error["traceback"])
                sys.stderr.flush()
            self.send(p.setup_failed(error))
            return False
        self.adapter = adapter
        # what setup loaded (the model) lives as long as the process: out of the
        # collector's generations, so a full collection does not walk it again and again
        gc.collect()
        gc.freeze()
        self.state = "ready"
        self.log("info", f"{adapter.kind} package ready in {time.monotonic() - started:.2f}s")
        self.send(p.ready(adapter.kind, bool(adapter.streaming)))
        return True

    def _predict(self, job: _Job) -> None:
        ctx = job.ctx
        assert ctx is not None
        started = time.monotonic()
        ctx.add_phase("queue", ctx.started, started)
        try:
            if self.adapter is None:
                raise ShimError(p.ErrorCode.NOT_READY, "NotReady",
                                "predict arrived before setup finished")
            out = self.adapter.predict(job.inputs, ctx)
            if isinstance(out, Result):
                check_size(out)
                took = _ms(started)
                # the result is also the request's done: one frame, one system call
                try:
                    self.channel.send(*p.output(ctx.id, out, took, True, ctx.timings()))
                except OSError as exc:
                    raise Disconnected(str(exc)) from exc
                return
            else:
                with ctx.phase("stream"):
                    self._stream(ctx, out)
        except Disconnected:
            raise  # the runtime is gone; an OSError from the model's code is its error
        except BaseException as exc:  # noqa: BLE001 - SystemExit in predict is a failure too
            if isinstance(exc, KeyboardInterrupt):
                raise
            exit_if_out_of_memory(exc)
            error = error_from(exc)
            if error["traceback"]:
                sys.stderr.write(f"[modelport-worker] request {ctx.id} failed:\n"
                                 f"{error['traceback']}")
                sys.stderr.flush()
            else:
                stderr_line(f"request {ctx.id} failed: {error['type']}: {error['message']}")
            self.send(p.done(ctx.id, error, _ms(started), ctx.timings()))
            return
        self.send(p.done(ctx.id, None, _ms(started), ctx.timings()))

    def _predict_batch(self, job: _Job) -> None:
        """One call of the model for several requests, each answered on its own.

        Adapters without ``predict_batch`` (``batching`` False) run the items one by one.
        """
        assert job.batch is not None
        if self.adapter is not None and not getattr(self.adapter, "batching", False):
            for ctx, inputs in job.batch:
                self._current = ctx
                if ctx.cancelled.is_set():
                    self.send(p.done(ctx.id, p.error_dict(
                        "Cancelled", "the request was cancelled", "", p.ErrorCode.CANCELLED)))
                else:
                    self._predict(_Job(job.frame, ctx, inputs))
            return
        started = time.monotonic()
        for ctx, _ in job.batch:
            ctx.add_phase("queue", ctx.started, started)
        try:
            if self.adapter is None:
                raise ShimError(p.ErrorCode.NOT_READY, "NotReady",
                                "predict_batch arrived before setup finished")
            outcomes = self.adapter.predict_batch([(inputs, ctx) for ctx, inputs in job.batch])
        except BaseException as exc:  # noqa: BLE001 - the adapter's own failure fails all
            if isinstance(exc, KeyboardInterrupt):
                raise
            outcomes = [exc] * len(job.batch)
        if len(outcomes) != len(job.batch):  # the adapter's own bug: fail all, say so
            outcomes = [ShimError(p.ErrorCode.BATCH_INVALID, "BatchLengthMismatch",
                                  f"the {self.adapter.kind} adapter answered {len(outcomes)} "
                                  f"of {len(job.batch)} batched requests")] * len(job.batch)
        answers: list[tuple[dict[str, Any], list[bytes]]] = []
        logged: set[int] = set()
        size = len(job.batch)
        shared = collections.Counter(id(out) for out in outcomes)
        for (ctx, _), out in zip(job.batch, outcomes):
            if isinstance(out, Result):
                try:
                    check_size(out)
                except ShimError as exc:
                    out = exc
            timings = dict(ctx.timings(), batch=size)
            if ctx.cancelled.is_set():
                answers.append(p.done(ctx.id, p.error_dict(
                    "Cancelled", "the request was cancelled", "", p.ErrorCode.CANCELLED),
                    _ms(started), timings))
            elif isinstance(out, Result):
                answers.append(p.output(ctx.id, out, _ms(started), True, timings))
            else:
                exit_if_out_of_memory(out)
                error = error_from(out)
                self._log_failure(ctx.id, out, error, logged, shared[id(out)])
                answers.append(p.done(ctx.id, error, _ms(started), timings))
        self._emit_many(answers)

    @staticmethod
    def _log_failure(request_id: str, exc: BaseException, error: dict[str, Any],
                     logged: set[int], count: int) -> None:
        """A failed batch item in the replica log; an exception shared by several items
        (predict_batch raised) is written once, with its traceback."""
        if id(exc) in logged:
            return
        logged.add(id(exc))
        who = f"{count} batched requests (from {request_id})" if count > 1 else (
            f"request {request_id}")
        if exc.__traceback__ is not None and error["traceback"]:
            sys.stderr.write(f"[modelport-worker] {who} failed:\n{error['traceback']}")
            sys.stderr.flush()
        else:
            stderr_line(f"{who} failed: {error['type']}: {error['message']}")

    def _stream(self, ctx: RequestContext, items: Any) -> None:
        self._watch.wake()  # credit and cancel must get through while the model streams
        try:
            for result in items:
                if not ctx.may_send():  # waits while the runtime's window is full
                    raise ShimError(p.ErrorCode.CANCELLED, "Cancelled", "the request was cancelled")
                check_size(result)
                self._emit(p.chunk(ctx.id, result))
        finally:
            close = getattr(items, "close", None)
            if callable(close):
                close()


def _ms(started: float) -> float:
    return ms3(time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelport_worker.shim",
                                     description="modelport worker: serves one model package")
    parser.add_argument("--socket", required=True, help="the runtime's unix socket")
    parser.add_argument("--package", required=True, help="the package directory")
    parser.add_argument("--kind", default=None, help="package kind (detected when omitted)")
    args = parser.parse_args(argv)
    limit_self()
    package_dir = os.path.abspath(args.package)
    enter_package(package_dir)
    try:
        sock = connect(args.socket)
    except OSError as exc:
        stderr_line(f"cannot connect to the runtime at {args.socket}: {exc}")
        return 2
    channel = SocketChannel(sock)
    try:
        return Shim(channel, package_dir, args.kind).run()
    finally:
        channel.close()


if __name__ == "__main__":
    sys.exit(main())
