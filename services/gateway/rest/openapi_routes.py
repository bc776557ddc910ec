"""The routes /openapi.json describes besides inference and the core management API
(``openapi.py``): the console's files, async tasks, ModelArts' URL, custom images' own
paths, lifecycle and traffic, GitOps, observability, the platform's components, users
and keys, audit, and batch jobs. With these every route the gateway serves has its
parameters and bodies described, so a generated client can call it and an API fuzzer
(tests/reliability/test_fuzz_routes.py) reaches all of it; a route left out shows up
tagged ``other`` and that test fails.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from modelport.v1 import gitops_pb2
from services.gateway.rest.params import INT32_MAX, INT64_MAX

REF = "#/components/schemas/"
_STATUS = {200: "OK", 201: "created", 202: "accepted", 204: "no content",
           308: "moved (to /console)", 400: "bad request", 401: "no valid credential",
           403: "the credential lacks the scope", 404: "not found",
           405: "a method the path does not take", 409: "conflict",
           413: "body too large", 422: "invalid input: the error says what to send",
           429: "busy or rate limited (Retry-After)", 503: "not ready (Retry-After)",
           504: "the model did not answer in time"}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": _STATUS[c], "content": {"application/json": {
        "schema": {"$ref": REF + "Error"}}}} for c in codes}


def _ok(schema: dict[str, Any] | None = None, status: int = 200,
        media: str = "application/json") -> dict[str, Any]:
    body: dict[str, Any] = {"description": _STATUS[status]}
    if schema is not None:
        body["content"] = {media: {"schema": schema}}
    return {str(status): body}


def _path(name: str, what: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": what,
            "schema": schema or {"type": "string"}}


def _query(name: str, schema: dict[str, Any], what: str = "") -> dict[str, Any]:
    out = {"name": name, "in": "query", "required": False, "schema": schema}
    if what:
        out["description"] = what
    return out


def _header(name: str, what: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": what,
            "schema": schema or {"type": "string"}}


def _int(low: int = 0, high: int = INT32_MAX) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


def _json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _object(required: tuple[str, ...] = (), **props: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    return out


def _op(op_id: str, tag: str, summary: str, responses: dict[str, Any],
        **more: Any) -> dict[str, Any]:
    return {"tags": [tag], "operationId": op_id, "summary": summary, "responses": responses,
            **more}


_STR = {"type": "string"}
_ANY_OBJECT = {"type": "object"}
NAME = _path("name", "service name")
ID = _path("id", "its id")


# ------------------------------------------------------------------ protobuf as JSON schema

_SCALARS = {
    FieldDescriptor.TYPE_STRING: _STR, FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"}, FieldDescriptor.TYPE_FLOAT: {
        "type": "number"},
    FieldDescriptor.TYPE_INT32: _int(-2**31), FieldDescriptor.TYPE_INT64: _int(-2**63,
                                                                               INT64_MAX),
}


def message_schema(desc: Descriptor) -> dict[str, Any]:
    """The JSON form of a protobuf message (proto field names), as ``ParseDict`` reads it."""
    props: dict[str, Any] = {}
    for f in desc.fields:
        one = (message_schema(f.message_type) if f.type == FieldDescriptor.TYPE_MESSAGE
               else dict(_SCALARS.get(f.type, {})))
        repeated = getattr(f, "is_repeated", f.label == FieldDescriptor.LABEL_REPEATED)
        props[f.name] = {"type": "array", "items": one} if repeated else one
    return {"type": "object", "properties": props}


# ------------------------------------------------------------------ the routes

def console_paths() -> dict[str, Any]:
    page = {"text/html": {"schema": _STR}}
    return {
        "/console": {"get": _op("console_page", "console", "The web console's page",
                                {"200": {"description": "the page", "content": page}})},
        "/console/": {"get": _op("console_slash", "console", "Redirects to /console",
                                 {"308": {"description": _STATUS[308]}})},
        "/console/assets/{path}": {"parameters": [_path("path", "a file of the console")],
                                   "get": _op("console_asset", "console",
                                              "One of the console's files",
                                              {"200": {"description": "the file"},
                                               **_errors(404)})},
    }


def task_paths() -> dict[str, Any]:
    view = {"$ref": REF + "Task"}
    submit_params = [NAME, _query("webhook", _STR, "a URL POSTed the task when it ends"),
                     _header("Idempotency-Key", "resubmitting with the same key returns the "
                             "first task", {"type": "string", "maxLength": 255}),
                     _header("X-Webhook-URL", "like ?webhook=")]
    return {
        "/v1/services/{name}/tasks": {
            "post": _op("submit_task", "tasks", "Queue a call as an async task (the infer "
                        "URL's bodies)", {**_ok(view, 202), **_errors(404, 413, 422, 503)},
                        parameters=submit_params,
                        requestBody=_json_body({"type": "object", "description": "inputs "
                                                "keyed by name"})),
            "get": _op("list_tasks", "tasks", "A service's tasks, newest first",
                       {**_ok(_object(tasks={"type": "array", "items": view},
                                      next_page_token={"type": "string", "nullable": True})),
                        **_errors(404, 422)},
                       parameters=[NAME, _query("limit", _int(0, 500)),
                                   _query("page_token", _STR),
                                   _query("status", {"type": "string", "enum": [
                                       "queued", "running", "succeeded", "failed",
                                       "cancelled", "expired"]})])},
        "/v1/tasks/{id}": {
            "parameters": [ID],
            "get": _op("get_task", "tasks", "A task's status and timestamps",
                       {**_ok(view), **_errors(404)}),
            "delete": _op("cancel_task", "tasks", "Cancel a task",
                          {**_ok(view), **_errors(404, 409)})},
        "/v1/tasks/{id}/result": {
            "parameters": [ID],
            "get": _op("get_task_result", "tasks", "The finished task's answer (the infer "
                       "envelope) or its error; 409 while it runs",
                       {**_ok({"$ref": REF + "InferResult"}), **_errors(404, 409)})},
    }


def modelarts_paths() -> dict[str, Any]:
    body = {"required": True, "content": {
        "application/json": {"schema": {"type": "object"}},
        "multipart/form-data": {"schema": {"type": "object", "additionalProperties": {
            "type": "string", "format": "binary"}}}}}
    error = {"description": "an error in ModelArts' shape", "content": {"application/json": {
        "schema": _object(error_code=_STR, error_msg=_STR)}}}
    answer = {"200": {"description": "the package's own answer, no envelope"},
              **{str(c): error for c in (404, 413, 422, 503, 504)}}
    return {
        "/v1/infers/{name}": {"parameters": [NAME], "post": _op(
            "modelarts_infer", "inference", "ModelArts' URL: the package's raw answer",
            answer, requestBody=body)},
        "/v1/infers/{name}/{path}": {"parameters": [NAME, _path("path", "an `apis` url")],
                                     "post": _op("modelarts_infer_path", "inference",
                                                 "ModelArts' URL with an `apis` path",
                                                 answer, requestBody=body)},
    }


def forward_paths() -> dict[str, Any]:
    """``ANY /v1/services/{name}/{path}``: a custom image's own paths (rest/forward.py)."""
    ops: dict[str, Any] = {"parameters": [NAME, _path("path", "the container's path")]}
    answer = {"default": {"description": "the container's answer as it is; 404/405 (the "
                                         "router's) when the service is no custom image"},
              **_errors(404, 405, 413, 422, 503)}
    for method in ("get", "post", "put", "patch", "delete", "options"):
        extra = ({"requestBody": {"required": False, "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {}}}}} if method in ("post", "put", "patch")
            else {})
        ops[method] = _op(f"forward_{method}", "inference",
                          "A custom image's own path", answer, **extra)
    return {"/v1/services/{name}/{path}": ops}


def service_paths() -> dict[str, Any]:
    view = {"$ref": REF + "Service"}
    target = _object(("version", "percent"), version=_int(1), percent=_int(0, 100))
    return {
        "/api/v1/services/{name}/traffic": {"parameters": [NAME], "put": _op(
            "set_service_traffic", "management", "The canary split alone (an empty list: "
            "all to the target version)", {**_ok(view), **_errors(404, 409, 422)},
            requestBody=_json_body(_object(("traffic",), traffic={
                "type": "array", "items": target})))},
        "/api/v1/services/{name}/{action}": {
            "parameters": [NAME, _path("action", "what to do", {
                "type": "string", "enum": ["start", "stop", "restart"]})],
            "post": _op("service_action", "management", "Start, stop or restart a service",
                        {**_ok(view), **_errors(404, 409, 422)},
                        parameters=[_query("reason", {"type": "string", "maxLength": 200})])},
    }


def gitops_paths() -> dict[str, Any]:
    source = _query("source", _STR, "a watcher source id (repo#branch:path)")
    return {
        "/api/v1/gitops": {"get": _op(
            "gitops_status", "gitops", "Sources and each service's sync status and health",
            {**_ok(_object(sources={"type": "array", "items": _ANY_OBJECT},
                           services={"type": "array", "items": _ANY_OBJECT}))},
            parameters=[source])},
        "/api/v1/gitops/webhook": {"post": _op(
            "gitops_webhook", "gitops", "A git host's push event: its watchers sync now",
            {**_ok(_ANY_OBJECT), **_ok(_ANY_OBJECT, 202), **_errors(404, 422)},
            parameters=[_header("X-GitHub-Event", "the event (`ping` is answered)")],
            requestBody=_json_body(_object(
                ref=_STR, repo=_STR, branch=_STR,
                repository=_object(clone_url=_STR, full_name=_STR, html_url=_STR)),
                required=False))},
        "/api/v1/gitops/reports": {"post": _op(
            "gitops_report", "gitops", "What a watcher found (the JSON form of "
            "modelport.v1.ReportGitOpsRequest)", {**_ok(_ANY_OBJECT), **_errors(422)},
            requestBody=_json_body(message_schema(
                gitops_pb2.ReportGitOpsRequest.DESCRIPTOR)))},
        "/api/v1/gitops/packages": {"post": _op(
            "gitops_stage_package", "gitops", "Stage a package by its content digest (no "
            "service changes until an apply names it)",
            {**_ok(_object(digest=_STR, kind=_STR, name=_STR), 201), **_errors(413, 422)},
            requestBody={"required": True, "content": {"application/zip": {
                "schema": {"type": "string", "format": "binary"}}}})},
        "/api/v1/gitops/apply": {"post": _op(
            "gitops_apply", "gitops", "A whole commit, applied in one registry transaction "
            "or not at all", {**_ok(_ANY_OBJECT), **_errors(404, 409, 422)},
            requestBody=_json_body(_object(
                ("source", "commit"), source=message_schema(
                    gitops_pb2.GitOpsSource.DESCRIPTOR), commit=_STR,
                services={"type": "array", "items": _object(
                    ("name",), name=_STR, spec={"type": "object", "description": "a "
                                                "ModelService spec"}, package=_STR)},
                prune={"type": "array", "items": _STR},
                statuses={"type": "array", "items": message_schema(
                    gitops_pb2.GitOpsServiceStatus.DESCRIPTOR)},
                events={"type": "array", "items": message_schema(
                    gitops_pb2.GitOpsEvent.DESCRIPTOR)},
                sync=message_schema(gitops_pb2.GitOpsSyncRecord.DESCRIPTOR))))},
        "/api/v1/gitops/wait": {"get": _op(
            "gitops_wait", "gitops", "Long poll: answers once a source's sync requests pass "
            "`after`, or after `timeout` seconds (at most 30)",
            {**_ok(_object(sync_requests={"type": "integer"})), **_errors(422)},
            parameters=[source, _query("after", _int(0, INT64_MAX)),
                        _query("timeout", {"type": "number", "minimum": 0, "maximum": 30})])},
    }


def observability_paths() -> dict[str, Any]:
    stats = _object(services={"type": "array", "items": _ANY_OBJECT}, at={"type": "number"})
    text = {"text/plain": {"schema": _STR}}
    return {
        "/metrics": {"get": _op("metrics", "observability", "Prometheus metrics",
                                {"200": {"description": "the text format", "content": text}})},
        "/api/v1/stats": {"get": _op("all_stats", "observability",
                                     "Calls, errors and latency of every service",
                                     {**_ok(stats)})},
        "/api/v1/services/{name}/stats": {"parameters": [NAME], "get": _op(
            "service_stats", "observability", "One service's calls, errors and latency",
            {**_ok(_ANY_OBJECT), **_errors(404, 422)},
            parameters=[_query("series", _int(0, 300), "a point per this many seconds")])},
        "/api/v1/services/{name}/logs": {"parameters": [NAME], "get": _op(
            "service_logs", "observability", "The replicas' output or the access log "
            "(`follow=true` streams new lines until the client leaves)",
            {"200": {"description": "lines", "content": {**text, "application/x-ndjson": {
                "schema": _STR}}}, **_errors(404, 422)},
            parameters=[_query("kind", {"type": "string", "enum": ["app", "access", "error"]}),
                        _query("replica", _STR), _query("since", _STR, "10m, an ISO time or "
                                                        "unix seconds"),
                        _query("tail", _int()),
                        _query("format", {"type": "string", "enum": ["text", "json"]})])},
        "/api/v1/models/{model}/versions/{number}/events": {
            "parameters": [_path("model", "model name"),
                           _path("number", "version number", _int(1))],
            "get": _op("version_events", "observability", "One model version's events",
                       {**_ok(_object(events={"type": "array", "items": _ANY_OBJECT})),
                        **_errors(404, 422)}, parameters=[_query("limit", _int())])},
        "/api/v1/platform/components": {"get": _op(
            "platform_components", "platform", "What `modelport up` supervises: state, pid, "
            "restarts, last crashes (admin)", {**_ok(_ANY_OBJECT), **_errors(401, 403)})},
    }


def auth_paths() -> dict[str, Any]:
    login = _json_body(_object(("username", "password"), username=_STR, password=_STR,
                               name=_STR, ttl_s={"type": "number", "minimum": 0}))
    user = {"$ref": REF + "User"}
    key = {"$ref": REF + "ApiKey"}
    principal = _object(user=_STR, role=_STR, key_id=_STR, kind=_STR,
                        scopes={"type": "array", "items": _STR})
    auth = _errors(401, 403)
    return {
        "/api/v1/auth/login": {"post": _op(
            "login", "auth", "Console login: a session cookie and csrf_token",
            {**_ok(principal), **_errors(401, 422, 429)}, requestBody=login)},
        "/api/v1/auth/token": {"post": _op(
            "login_token", "auth", "CLI login: a token",
            {**_ok(principal), **_errors(401, 422, 429)}, requestBody=login)},
        "/api/v1/auth/register": {"post": _op(
            "register", "auth", "A member account, when registration is on",
            {**_ok(user, 201), **_errors(403, 409, 422, 429)},
            requestBody=_json_body(_object(("username", "password"), username=_STR,
                                           password=_STR)))},
        "/api/v1/auth/logout": {"post": _op("logout", "auth", "End this session or login "
                                            "token", {**_ok(_ANY_OBJECT), **auth})},
        "/api/v1/auth/whoami": {"get": _op("whoami", "auth", "The caller",
                                           {**_ok(principal), **auth})},
        "/api/v1/keys": {
            "get": _op("list_keys", "auth", "API keys (an admin: any user's)",
                       {**_ok(_object(keys={"type": "array", "items": key})), **auth},
                       parameters=[_query("user", _STR), _query("all", {
                           "type": "string", "enum": ["1", "true"]}),
                           _query("revoked", {"type": "string", "enum": ["1", "true"]})]),
            "post": _op("create_key", "auth", "A key (its token is shown once)",
                        {**_ok(key, 201), **auth, **_errors(404, 422)},
                        requestBody=_json_body(_object(
                            name=_STR, user=_STR, ttl_s={"type": "number", "minimum": 0},
                            rate_limit={"type": "number", "minimum": 0},
                            scopes={"type": "array", "items": _STR})))},
        "/api/v1/keys/{id}": {"parameters": [_path("id", "key id")], "delete": _op(
            "revoke_key", "auth", "Revoke a key", {**_ok(key), **auth, **_errors(404)})},
        "/api/v1/users": {
            "get": _op("list_users", "auth", "Users (admin)",
                       {**_ok(_object(users={"type": "array", "items": user})), **auth}),
            "post": _op("create_user", "auth", "A user (admin)",
                        {**_ok(user, 201), **auth, **_errors(409, 422)},
                        requestBody=_json_body(_object(
                            ("username", "password"), username=_STR, password=_STR,
                            role={"type": "string", "enum": ["member", "admin"]})))},
        "/api/v1/users/{username}": {"parameters": [_path("username", "user name")],
                                     "delete": _op("delete_user", "auth", "Disable a user and "
                                                   "revoke their keys (admin)",
                                                   {**_ok(user), **auth, **_errors(404, 409)})},
        "/api/v1/users/{username}/password": {
            "parameters": [_path("username", "user name")],
            "put": _op("set_password", "auth", "A new password (one's own, or an admin)",
                       {**_ok(user), **auth, **_errors(404, 422)},
                       requestBody=_json_body(_object(("password",), password=_STR)))},
        "/api/v1/audit": {"get": _op(
            "list_audit", "auth", "The audit log, newest first (admin)",
            {**_ok(_object(entries={"type": "array", "items": _ANY_OBJECT})), **auth,
             **_errors(422)},
            parameters=[_query("limit", _int()), _query("user", _STR),
                        _query("since", {"type": "number"}),
                        _query("before_id", _int(0, INT64_MAX))])},
    }


def batch_paths() -> dict[str, Any]:
    job = {"$ref": REF + "Batch"}
    archive = {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "application/zip": {"schema": {"type": "string", "format": "binary"}}}}
    return {
        "/api/v1/batches": {
            "post": _op("create_batch", "batch", "A batch job over an input archive (zip of "
                        "files, or items.jsonl)", {**_ok(job, 201), **_errors(404, 413, 422)},
                        parameters=[_query("service", _STR), _query("concurrency", _int(1)),
                                    _query("input_kind", {"type": "string",
                                                          "enum": ["jsonl", "files"]})],
                        requestBody=archive),
            "get": _op("list_batches", "batch", "Batch jobs, newest first",
                       {**_ok(_object(batches={"type": "array", "items": job}))},
                       parameters=[_query("service", _STR), _query("limit", _int())])},
        "/api/v1/batches/{id}": {"parameters": [ID], "get": _op(
            "get_batch", "batch", "A job's state and counts", {**_ok(job), **_errors(404)})},
        "/api/v1/batches/{id}/cancel": {"parameters": [ID], "post": _op(
            "cancel_batch", "batch", "Cancel a job", {**_ok(job), **_errors(404, 409)})},
        "/api/v1/batches/{id}/logs": {"parameters": [ID], "get": _op(
            "get_batch_log", "batch", "A job's log",
            {"200": {"description": "text", "content": {"text/plain": {"schema": _STR}}},
             **_errors(404)})},
        "/api/v1/batches/{id}/results": {"parameters": [ID], "get": _op(
            "get_batch_results", "batch", "The results as a zip (ModelArts' layout)",
            {"200": {"description": "a zip", "content": {"application/zip": {
                "schema": {"type": "string", "format": "binary"}}}}, **_errors(404, 409)})},
    }


def route_paths() -> dict[str, Any]:
    return {**console_paths(), **task_paths(), **modelarts_paths(), **service_paths(),
            **gitops_paths(), **observability_paths(), **auth_paths(), **batch_paths(),
            **forward_paths()}


def route_schemas() -> dict[str, Any]:
    """The component schemas the operations above refer to."""
    return {
        "Task": _object(task_id=_STR, service=_STR, status=_STR, url=_STR, result_url=_STR,
                        request_id=_STR, created_at={"type": "number"},
                        attempts={"type": "integer"}),
        "User": _object(username=_STR, role=_STR, created_at={"type": "number"},
                        disabled={"type": "boolean"}, has_password={"type": "boolean"}),
        "ApiKey": _object(id=_STR, user=_STR, name=_STR, kind=_STR,
                          scopes={"type": "array", "items": _STR}),
        "Batch": _object(id=_STR, status=_STR, service=_STR),
    }
