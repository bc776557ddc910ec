"""Async tasks: the registry keeps them; gateways run them (`modelport.v1.Tasks`).

Who runs a task: the gateway's task runner (services/gateway/task_runner.py), through
the same DataPlane as a synchronous request, so routing, input checks, deadlines and
the "never retry once the model started" rule are the same code. The registry only
persists and hands out work: it survives restarts with the queue and the results in
SQLite, and any number of gateways can share the queue because a claim is atomic.

- Claims are leases: a runner renews them on every poll; a running task whose lease
  ran out (its gateway died) is failed as ``task.interrupted``, never run again, because
  the model may already have acted on it.
- A task that was never started (service not ready yet, no replica) is put back in the
  queue by its runner with a delay, so work queued before a restart runs after it.
- Finished tasks and their results are deleted ``ttl_s`` after they finish.
- A webhook is delivered by the runner that finished the task; if that runner dies
  first, another claims the pending delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import grpc

from modelport.errors import Kind, ModelportError, conflict, invalid, not_found
from modelport.v1 import inference_pb2, registry_pb2, registry_pb2_grpc
from services.registry.store.tasks import TERMINAL, TaskRecord, TaskStore
from services.rpc.errors import translate_errors

log = logging.getLogger(__name__)

MAX_PAGE = 500
DEFAULT_PAGE = 50


def request_digest(request: inference_pb2.PredictRequest) -> str:
    """What an idempotent resubmission must repeat: the inputs (not the request id)."""
    same = inference_pb2.PredictRequest(service=request.service, inputs=request.inputs)
    return hashlib.sha256(same.SerializeToString(deterministic=True)).hexdigest()


def check_webhook(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid("task.webhook_invalid", f"webhook {url!r} is not an http(s) URL",
                      "pass an absolute URL such as https://example.com/hook", path="webhook")
    return url


def to_proto(t: TaskRecord) -> registry_pb2.Task:
    msg = registry_pb2.Task(
        id=t.id, service=t.service, state=t.state, created_at=t.created_at,
        started_at=t.started_at, finished_at=t.finished_at, request_id=t.request_id,
        idempotency_key=t.idempotency_key, webhook=t.webhook, webhook_state=t.webhook_state,
        webhook_attempts=t.webhook_attempts, error_json=t.error_json, version=t.version,
        duration_ms=t.duration_ms, expires_at=t.expires_at, attempts=t.attempts,
        has_output=bool(t.output_kind))
    if t.output is not None and t.output_kind:
        msg.output.CopyFrom(inference_pb2.Output(**{t.output_kind: t.output}))
    return msg


class TaskQueue:
    """The task rules over a TaskStore; ``clock`` is injectable for tests."""

    def __init__(self, store: TaskStore, *, ttl_s: float = 86400.0, lease_s: float = 30.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.lease_s = lease_s
        self.clock = clock
        self._changed = asyncio.Event()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _visible(self, task_id: str, payloads: bool = False) -> TaskRecord:
        t = self.store.get_task(task_id, payloads)
        if t is None or (t.expires_at and t.expires_at < self.clock()):
            raise not_found("task.not_found", f"no task {task_id!r}",
                            f"finished tasks are kept for {self.ttl_s:g}s; submit it again")
        return t

    # ------------------------------------------------------------------ clients

    def submit(self, request: inference_pb2.PredictRequest, idempotency_key: str = "",
               webhook: str = "") -> tuple[TaskRecord, bool]:
        """A new queued task, or the existing one for the same idempotency key."""
        if not request.service:
            raise invalid("task.service_missing", "a task needs a service",
                          "POST /v1/services/{name}/tasks")
        digest = request_digest(request)
        if idempotency_key:
            existing = self.store.find_by_key(request.service, idempotency_key)
            if existing is not None and not (existing.expires_at
                                             and existing.expires_at < self.clock()):
                return self._replay(existing, digest), True
        task_id = uuid.uuid4().hex
        record = TaskRecord(
            id=task_id, service=request.service, state="queued", created_at=self.clock(),
            request_id=request.request_id or task_id, request=request.SerializeToString(),
            request_digest=digest, idempotency_key=idempotency_key,
            webhook=check_webhook(webhook) if webhook else "")
        try:
            self.store.add_task(record)
        except sqlite3.IntegrityError:  # an expired one still holds the key: replace it
            old = self.store.find_by_key(request.service, idempotency_key)
            if old is None or not old.expires_at or old.expires_at >= self.clock():
                raise
            self.store.purge_expired(self.clock())
            self.store.add_task(record)
        self._poke()
        return record, False

    @staticmethod
    def _replay(existing: TaskRecord, digest: str) -> TaskRecord:
        if existing.request_digest != digest:
            raise invalid("task.idempotency_key_reused",
                          f"Idempotency-Key {existing.idempotency_key!r} was used for a "
                          f"different request (task {existing.id})",
                          "use a new key for a new request, or resend the same inputs")
        return existing

    def get(self, task_id: str, with_result: bool = False) -> TaskRecord:
        return self._visible(task_id, with_result)

    def list(self, service: str, limit: int = 0, page_token: str = "",
             state: str = "") -> tuple[list[TaskRecord], str]:
        limit = min(max(limit or DEFAULT_PAGE, 1), MAX_PAGE)
        try:
            before = int(page_token) if page_token else 0
        except ValueError:
            raise invalid("task.page_token_invalid", f"page_token {page_token!r} is not one "
                          "this API gave out", "pass next_page_token from the previous page",
                          path="page_token") from None
        if state and state not in ("queued", "running", *TERMINAL):
            raise invalid("task.state_invalid", f"no task state {state!r}",
                          "filter by queued, running, succeeded, failed or cancelled",
                          path="state")
        now = self.clock()
        rows = [t for t in self.store.list_tasks(service, limit + 1, before, state)
                if not (t.expires_at and t.expires_at < now)]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (str(rows[-1].seq) if more and rows else "")

    def cancel(self, task_id: str) -> TaskRecord:
        t = self._visible(task_id)
        if t.state in TERMINAL:
            raise conflict("task.finished", f"task {task_id} already {t.state}",
                           "only queued or running tasks can be cancelled")
        now = self.clock()
        error = ModelportError(Kind.CONFLICT, "task.cancelled",
                               "the task was cancelled before it finished",
                               "submit it again if you still need its result")
        after = self.store.cancel(task_id, now, now + self.ttl_s, error.to_json())
        self._poke()  # the runner's poll returns with the cancel
        assert after is not None
        return after

    # ------------------------------------------------------------------ runners

    async def claim(self, runner: str, limit: int, running: list[str],
                    wait_s: float) -> tuple[list[tuple[str, TaskRecord]], list[str]]:
        deadline = self.clock() + max(0.0, min(wait_s, 60.0))
        while True:
            now = self.clock()
            self.store.renew(runner, running, now + self.lease_s)
            cancels = self.store.cancelled_of(running)
            jobs: list[tuple[str, TaskRecord]] = []
            if limit > 0:
                jobs = [("run", t) for t in self.store.claim(runner, limit, now, self.lease_s)]
                free = limit - len(jobs)
                if free > 0:
                    jobs += [("notify", t) for t in self.store.claim_notifications(
                        runner, free, now, self.lease_s)]
            if jobs or cancels or now >= deadline:
                return jobs, cancels
            wake = deadline
            due = self.store.next_due()
            if due is not None and due > now:
                wake = min(wake, due)
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.01, wake - now)):
                    await changed.wait()

    def finish(self, req: registry_pb2.FinishTaskRequest) -> TaskRecord:
        now = self.clock()
        if req.state == "queued":
            self.store.requeue(req.id, req.runner, now + max(req.retry_after_s, 0.0))
            self._poke()
        elif req.state in ("succeeded", "failed"):
            values: dict[str, object] = {
                "state": req.state, "finished_at": now, "expires_at": now + self.ttl_s,
                "error_json": req.error_json, "version": req.version,
                "duration_ms": req.duration_ms, "lease_until": 0,
                # the finishing runner delivers the webhook; others take over after this
                "notify_until": now + 2 * self.lease_s}
            if req.HasField("output"):
                which = req.output.WhichOneof("body") or "json"
                values["output_kind"] = which
                values["output"] = getattr(req.output, which)
            self.store.finish(req.id, req.runner, **values)
        else:
            raise invalid("task.state_invalid", f"a runner cannot set state {req.state!r}",
                          "finish with succeeded, failed or queued")
        return self._visible(req.id)

    def record_webhook(self, task_id: str, delivered: bool, attempts: int) -> TaskRecord:
        self.store.set_webhook(task_id, "delivered" if delivered else "failed", attempts)
        return self._visible(task_id)

    def sweep(self) -> None:
        """Fail tasks whose runner vanished; delete expired ones."""
        now = self.clock()
        for t in self.store.lost(now):
            error = ModelportError(
                Kind.UNAVAILABLE, "task.interrupted",
                "the gateway running this task stopped before it finished; it was not run "
                "again because the model may have started on it",
                "submit the task again (with a new Idempotency-Key)")
            self.store.finish(t.id, t.runner, state="failed", finished_at=now,
                              expires_at=now + self.ttl_s, error_json=error.to_json(),
                              lease_until=0)
            log.warning("task %s failed: its runner %s stopped renewing it", t.id, t.runner)
        if self.store.purge_expired(now):
            log.info("deleted expired tasks")

    async def sweep_forever(self, every_s: float) -> None:
        while True:
            try:
                self.sweep()
            except Exception:  # keep sweeping; a bad row must not stop expiry
                log.exception("task sweep failed")
            await asyncio.sleep(every_s)


class TasksServicer(registry_pb2_grpc.TasksServicer):
    def __init__(self, queue: TaskQueue) -> None:
        self.queue = queue

    @translate_errors
    async def SubmitTask(self, request: registry_pb2.SubmitTaskRequest,
                         context: grpc.aio.ServicerContext) -> registry_pb2.SubmitTaskResponse:
        task, replayed = self.queue.submit(request.request, request.idempotency_key,
                                           request.webhook)
        return registry_pb2.SubmitTaskResponse(task=to_proto(task), replayed=replayed)

    @translate_errors
    async def GetTask(self, request: registry_pb2.GetTaskRequest,
                      context: grpc.aio.ServicerContext) -> registry_pb2.Task:
        return to_proto(self.queue.get(request.id, request.with_result))

    @translate_errors
    async def ListTasks(self, request: registry_pb2.ListTasksRequest,
                        context: grpc.aio.ServicerContext) -> registry_pb2.ListTasksResponse:
        tasks, token = self.queue.list(request.service, request.limit, request.page_token,
                                       request.state)
        return registry_pb2.ListTasksResponse(tasks=[to_proto(t) for t in tasks],
                                              next_page_token=token)

    @translate_errors
    async def CancelTask(self, request: registry_pb2.CancelTaskRequest,
                         context: grpc.aio.ServicerContext) -> registry_pb2.Task:
        return to_proto(self.queue.cancel(request.id))

    @translate_errors
    async def ClaimTasks(self, request: registry_pb2.ClaimTasksRequest,
                         context: grpc.aio.ServicerContext) -> registry_pb2.ClaimTasksResponse:
        jobs, cancels = await self.queue.claim(request.runner, request.max,
                                               list(request.running), request.wait_s)
        out = registry_pb2.ClaimTasksResponse(cancel=cancels)
        for job, t in jobs:
            claimed = out.tasks.add(job=job, task=to_proto(t))
            if job == "run":
                claimed.request.ParseFromString(t.request)
        return out

    @translate_errors
    async def FinishTask(self, request: registry_pb2.FinishTaskRequest,
                         context: grpc.aio.ServicerContext) -> registry_pb2.Task:
        return to_proto(self.queue.finish(request))

    @translate_errors
    async def RecordWebhook(self, request: registry_pb2.RecordWebhookRequest,
                            context: grpc.aio.ServicerContext) -> registry_pb2.Task:
        return to_proto(self.queue.record_webhook(request.id, request.delivered,
                                                  request.attempts))


def error_of(task: registry_pb2.Task) -> dict[str, object] | None:
    return json.loads(task.error_json) if task.error_json else None
