"""The one table from ModelportError to an HTTP response; nothing else builds error bodies."""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelport.errors import Kind, ModelportError, disk_full
from services.gateway.telemetry import note_error

log = logging.getLogger(__name__)


def error_response(err: ModelportError, request_id: str = "",
                   extra_headers: dict[str, str] | None = None) -> Response:
    note_error(err.code, err.message)  # for the access log
    body: dict[str, Any] = {"result": False, "error": err.to_dict()}
    if err.kind is Kind.INTERNAL:
        body["error"] = {"kind": "internal", "code": "internal",
                         "message": f"internal error; quote request id {request_id}"}
    body["metadata"] = {"request_id": request_id}
    headers = {"X-Request-ID": request_id} if request_id else {}
    if err.kind in (Kind.EXHAUSTED, Kind.UNAVAILABLE):
        wait = err.details.get("retry_after_s")  # a rate limit knows when (limits.py)
        headers["Retry-After"] = str(max(1, math.ceil(wait))) if wait else "1"
    if err.kind is Kind.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = 'Bearer realm="modelport"'
    headers.update(extra_headers or {})
    return Response(orjson.dumps(body), status_code=err.http_status, headers=headers,
                    media_type="application/json")


async def handle_modelport_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelportError)
    return error_response(exc, request.headers.get("x-request-id", ""))


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex
    if (full := disk_full(exc)) is not None:  # the operator's to fix, not a bug: say so
        log.error("%s %s: %s (%s; request id %s)", request.method, request.url.path,
                  full.message, exc, rid)
        return error_response(full, rid)
    return unexpected_response(request.method, request.url.path, rid)


def unexpected_response(method: str, path: str, rid: str) -> Response:
    """A bug: logged with its traceback (call it inside ``except``), answered as a bare 500
    that quotes the request id."""
    log.exception("unhandled error on %s %s (request id %s)", method, path, rid)
    return error_response(ModelportError(Kind.INTERNAL, "internal", "internal error"), rid)
