"""Runs async tasks from the registry's queue through this gateway's DataPlane.

Why the gateway runs them (and the registry only stores them): a task is a request
that answers later, so it takes the one inference path every synchronous request
takes (route, input checks, deadline, the runtime call, the no-retry-once-started
rule), and the webhook goes out from the edge, like every other outbound call.

The loop long-polls ``Tasks.ClaimTasks`` with its free slots; each poll also renews
the leases of the tasks it runs and brings back cancellations. A task that fails
before the model started on it (service still deploying after a restart, no replica)
goes back to the queue with a growing delay; any other outcome is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import grpc
import orjson

from modelport.errors import ModelportError
from modelport.v1 import registry_pb2, registry_pb2_grpc
from services.gateway.dataplane import DataPlane, InferenceRequest
from services.rpc import outcomes

log = logging.getLogger(__name__)

#: errors that mean no model ever saw the request: safe to run it later. (An unreachable
#: runtime is not among them: it may have died with the model half-way through.)
NOT_STARTED = {"service.not_ready", "service.stopped", "replica.none", "replica.not_ready"}
#: delays between webhook attempts (so 1 + len attempts in all)
WEBHOOK_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)
MAX_REQUEUE_DELAY_S = 10.0


def requeue_after(err: ModelportError, started: bool, attempts: int) -> float | None:
    """Seconds to wait before running again work that failed with ``err`` before any model
    saw it (with a delay that grows with ``attempts``); None when it may have run."""
    if err.code in NOT_STARTED or (not started and err.code == "component.unavailable"):
        return min(0.5 * 2 ** max(attempts - 1, 0), MAX_REQUEUE_DELAY_S)
    return None


class TaskRunner:
    def __init__(self, tasks: registry_pb2_grpc.TasksStub, dataplane: DataPlane,
                 concurrency: int = 4, poll_s: float = 10.0,
                 task_view: Any = None) -> None:
        self.tasks = tasks
        self.dataplane = dataplane
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.task_view = task_view  # rest/tasks.py's view, for webhook bodies
        self.id = f"gateway-{uuid.uuid4().hex[:12]}"
        self.running: dict[str, asyncio.Task[None]] = {}
        self._jobs: set[asyncio.Task[None]] = set()
        #: the webhook client (httpx.AsyncClient), made with the first webhook: httpx and
        #: what it imports (rich, click) cost an idle gateway about 5 MB
        self._http: Any = None

    def cancel_local(self, task_id: str) -> None:
        """Stop a task this gateway is running (it was cancelled): down to the model."""
        job = self.running.get(task_id)
        if job is not None:
            job.cancel()

    async def run(self) -> None:
        if self.concurrency <= 0:
            return
        failures = 0
        while True:
            free = self.concurrency - len(self.running)
            try:
                resp = await self.tasks.ClaimTasks(registry_pb2.ClaimTasksRequest(
                    runner=self.id, max=free, running=list(self.running),
                    wait_s=self.poll_s if free > 0 else 1.0), timeout=self.poll_s + 10)
                failures = 0
            except grpc.aio.AioRpcError as err:
                failures += 1
                if failures == 1 or failures % 30 == 0:
                    log.warning("cannot claim tasks from the registry: %s", err.details())
                await asyncio.sleep(min(1.0 * failures, 5.0))
                continue
            for task_id in resp.cancel:
                self.cancel_local(task_id)
            for claimed in resp.tasks:
                if claimed.job == "run":
                    job = asyncio.create_task(self._run(claimed.task, claimed.request))
                    self.running[claimed.task.id] = job
                    job.add_done_callback(lambda _, i=claimed.task.id: self.running.pop(i, None))
                else:
                    job = asyncio.create_task(self._notify(claimed.task))
                self._jobs.add(job)
                job.add_done_callback(self._jobs.discard)

    async def close(self) -> None:
        for job in list(self._jobs):
            job.cancel()
        for job in list(self._jobs):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job
        if self._http is not None:
            await self._http.aclose()

    # ------------------------------------------------------------------ one task

    async def _run(self, task: registry_pb2.Task, request: Any) -> None:
        req = InferenceRequest(task.service, task.request_id or task.id, list(request.inputs))
        finish = registry_pb2.FinishTaskRequest(id=task.id, runner=self.id)
        try:
            started = False
            try:
                route = await self.dataplane.route(task.service)
                started = True  # from here on, the runtime may hand it to the model
                result = await self.dataplane.infer(req, route)
            except ModelportError as err:
                delay = requeue_after(err, started, task.attempts)
                if delay is None:
                    raise
                finish.state, finish.retry_after_s = "queued", delay
            else:
                finish.state = "succeeded"
                finish.output.CopyFrom(result.output)
                finish.version = result.version
                finish.duration_ms = result.worker_ms
        except asyncio.CancelledError:
            return  # cancelled: the registry already says so
        except ModelportError as err:
            finish.state = "failed"
            finish.error_json = err.to_json()
        except Exception:  # our bug: the task fails with a reference, the loop lives on
            log.exception("task %s failed inside the gateway", task.id)
            finish.state = "failed"
            finish.error_json = ModelportError.from_dict(
                {"kind": "internal", "code": "internal",
                 "message": f"internal error; quote task {task.id}"}).to_json()
        done = await self._finish(finish)
        if done is not None and done.webhook and done.state in ("succeeded", "failed"):
            await self._notify(done)

    async def _finish(self, finish: registry_pb2.FinishTaskRequest) -> registry_pb2.Task | None:
        # the registry may be restarting: the outcome must not be lost
        return await outcomes.record(lambda: self.tasks.FinishTask(finish, timeout=10),
                                     f"the outcome of task {finish.id}")

    # ------------------------------------------------------------------ webhooks

    async def _notify(self, task: registry_pb2.Task) -> None:
        """POST the task (with its result) to its webhook; retry 5xx, 429 and network errors."""
        import httpx

        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        full = await self.tasks.GetTask(registry_pb2.GetTaskRequest(id=task.id,
                                                                    with_result=True),
                                        timeout=10)
        body = orjson.dumps(self.task_view(full, with_result=True) if self.task_view
                            else {"task_id": full.id, "status": full.state})
        headers = {"Content-Type": "application/json", "X-Modelport-Task": full.id}
        delivered, attempts = False, 0
        for delay in (0.0, *WEBHOOK_BACKOFF_S):
            await asyncio.sleep(delay)
            attempts += 1
            try:
                r = await self._http.post(full.webhook, content=body, headers=headers)
            except httpx.HTTPError as exc:
                log.info("webhook for task %s: attempt %d failed: %s", full.id, attempts, exc)
                continue
            if r.status_code < 300:
                delivered = True
                break
            log.info("webhook for task %s: attempt %d got HTTP %d", full.id, attempts,
                     r.status_code)
            if r.status_code < 500 and r.status_code != 429:
                break  # the receiver refuses it: retrying will not help
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self.tasks.RecordWebhook(registry_pb2.RecordWebhookRequest(
                id=full.id, delivered=delivered, attempts=attempts), timeout=10)
