"""Async tasks over REST: submit, poll, fetch the result, cancel, list.

| method | path | answer |
|---|---|---|
| POST | /v1/services/{name}/tasks | 202 task view (same bodies as the infer URL) |
| POST | /v1/services/{name}/infer + `Prefer: respond-async` | the same |
| GET | /v1/services/{name}/tasks?limit=&page_token=&status= | `{"tasks", "next_page_token"}` |
| GET | /v1/tasks/{id} | task view: status and timestamps |
| GET | /v1/tasks/{id}/result | the infer envelope, the task's error, or 409 while running |
| DELETE | /v1/tasks/{id} | cancel: the task view, status `cancelled` |

`Idempotency-Key: K` makes a resubmission of the same inputs return the first task (with
`Idempotent-Replayed: true`) instead of running the model again; K with other inputs is
a 422. `?webhook=URL` (or `X-Webhook-URL`) is POSTed the task view with its result when
the task ends.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import grpc
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as HttpRoute

from modelport.errors import ModelportError, conflict, invalid
from modelport.v1 import inference_pb2, registry_pb2, registry_pb2_grpc
from services.gateway.dataplane import DataPlane, InferenceResult, Route
from services.gateway.rest.errors import error_response
from services.gateway.rest.infer import decode, envelope
from services.gateway.rest.params import query_int
from services.rpc.errors import from_rpc_error

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=headers,
                    media_type="application/json")


def task_view(t: registry_pb2.Task, base: str = "", with_result: bool = False
              ) -> dict[str, Any]:
    """The public shape of a task; ``with_result`` adds ``data`` (webhooks)."""
    url = f"{base}/v1/tasks/{t.id}"
    out: dict[str, Any] = {
        "task_id": t.id, "service": t.service, "status": t.state, "url": url,
        "result_url": f"{url}/result", "request_id": t.request_id,
        "created_at": t.created_at, "started_at": t.started_at or None,
        "finished_at": t.finished_at or None, "expires_at": t.expires_at or None,
        "attempts": t.attempts,
    }
    if t.version:
        out["version"] = t.version
        out["duration_ms"] = round(t.duration_ms, 3)
    if t.idempotency_key:
        out["idempotency_key"] = t.idempotency_key
    if t.webhook:
        out["webhook"] = {"url": t.webhook, "state": t.webhook_state or "pending",
                          "attempts": t.webhook_attempts}
    if t.error_json:
        out["error"] = json.loads(t.error_json)
    if with_result and t.has_output:
        out["data"] = (orjson.Fragment(t.output.json) if t.output.HasField("json")
                       else base64.b64encode(t.output.data).decode())
    return out


def wants_async(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    return any(p.strip().lower() == "respond-async" for p in prefer.split(","))


class TaskApi:
    def __init__(self, registry: registry_pb2_grpc.TasksStub, dataplane: DataPlane,
                 max_body: int, runner: Any = None) -> None:
        self.registry = registry
        self.dataplane = dataplane
        self.max_body = max_body
        self.runner = runner  # task_runner.TaskRunner: cancels tasks running here at once

    wants_async = staticmethod(wants_async)

    async def _call(self, method: str, message: Any) -> Any:
        try:
            return await getattr(self.registry, method)(message, timeout=30)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, "registry") from None

    @staticmethod
    def _base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def submit(self, request: Request, route: Route,
                     inputs: list[inference_pb2.InputValue], rid: str) -> Response:
        """Queue one request as a task (the infer URL's `Prefer: respond-async` lands here)."""
        self.dataplane.check_inputs(route, inputs)
        key = request.headers.get("idempotency-key", "")
        if key and not _KEY.match(key):
            raise invalid("task.idempotency_key_invalid", "Idempotency-Key must be 1-255 "
                          "visible ASCII characters", "use a UUID")
        webhook = request.query_params.get("webhook") or request.headers.get(
            "x-webhook-url", "")
        resp = await self._call("SubmitTask", registry_pb2.SubmitTaskRequest(
            request=inference_pb2.PredictRequest(service=route.service, request_id=rid,
                                                 inputs=inputs),
            idempotency_key=key, webhook=webhook))
        view = task_view(resp.task, self._base(request))
        headers = {"Location": view["url"], "X-Request-ID": rid}
        if wants_async(request):
            headers["Preference-Applied"] = "respond-async"
        if resp.replayed:
            headers["Idempotent-Replayed"] = "true"
        return _json(view, 202, headers)

    # ------------------------------------------------------------------ handlers

    async def create(self, request: Request) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        try:
            route = await self.dataplane.route(request.path_params["name"])
            inputs = await decode(request, route, self.max_body)
            return await self.submit(request, route, inputs, rid)
        except ModelportError as err:
            return error_response(err, rid)

    async def get(self, request: Request) -> Response:
        task = await self._call("GetTask", registry_pb2.GetTaskRequest(
            id=request.path_params["id"]))
        await self.dataplane.authorize(task.service)
        return _json(task_view(task, self._base(request)))

    async def result(self, request: Request) -> Response:
        task = await self._call("GetTask", registry_pb2.GetTaskRequest(
            id=request.path_params["id"], with_result=True))
        await self.dataplane.authorize(task.service)
        headers = {"X-Task-ID": task.id, "X-Request-ID": task.request_id}
        if task.state in ("queued", "running"):
            raise conflict("task.not_finished", f"task {task.id} is {task.state}",
                           f"poll GET /v1/tasks/{task.id} until its status is succeeded")
        if task.state != "succeeded":
            error = ModelportError.from_dict(json.loads(task.error_json or "{}"))
            return error_response(error, task.request_id, headers)
        headers["X-Model-Version"] = str(task.version)
        if request.headers.get("accept") == "application/octet-stream" and task.output.HasField(
                "data"):
            return Response(task.output.data, headers=headers,
                            media_type="application/octet-stream")
        res = InferenceResult(task.request_id, task.version, task.output, task.duration_ms,
                              (task.finished_at - task.started_at) * 1000)
        return Response(envelope(res), headers=headers, media_type="application/json")

    async def cancel(self, request: Request) -> Response:
        await self.dataplane.authorize((await self._call("GetTask", registry_pb2.GetTaskRequest(
            id=request.path_params["id"]))).service)
        task = await self._call("CancelTask", registry_pb2.CancelTaskRequest(
            id=request.path_params["id"]))
        if self.runner is not None:
            self.runner.cancel_local(task.id)
        return _json(task_view(task, self._base(request)))

    async def list(self, request: Request) -> Response:
        q = request.query_params
        limit = query_int(request, "limit", 0, code="task.limit_invalid",
                          fix="pass limit=1..500")
        await self.dataplane.authorize(request.path_params["name"])
        resp = await self._call("ListTasks", registry_pb2.ListTasksRequest(
            service=request.path_params["name"], limit=limit,
            page_token=q.get("page_token", ""), state=q.get("status", "")))
        base = self._base(request)
        return _json({"tasks": [task_view(t, base) for t in resp.tasks],
                      "next_page_token": resp.next_page_token or None})

    def routes(self) -> list[HttpRoute]:
        return [
            HttpRoute("/v1/services/{name}/tasks", self.create, methods=["POST"]),
            HttpRoute("/v1/services/{name}/tasks", self.list, methods=["GET"]),
            HttpRoute("/v1/tasks/{id}", self.get, methods=["GET"]),
            HttpRoute("/v1/tasks/{id}/result", self.result, methods=["GET"]),
            HttpRoute("/v1/tasks/{id}", self.cancel, methods=["DELETE"]),
        ]
