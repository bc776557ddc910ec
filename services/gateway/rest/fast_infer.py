"""The unary JSON infer route as one ASGI callable in front of the middleware stack.

Through Starlette a no-op ``POST /v1/services/{name}/infer`` cost the gateway about
0.45 ms of CPU: five layers (telemetry, error handling, auth, exceptions, router) each
wrap ``send``, the router tries its regexes, and a Request, Headers and Response are
built per call. ``FastInfer`` does the same work once, inline and in the same order:
request id and trace headers (``telemetry.py``), the caller's credentials (``auth/``;
the data plane's gate checks them), the route's handler (``rest/infer.py``), the error
envelope (``rest/errors.py``), then metrics and the access log.

It takes only the requests it answers exactly as the full app would: that path, POST, a
JSON body (or no Content-Type), tracing off, and none of a ``Prefer`` header (async
tasks), an SSE ``Accept``, a signature, a cookie, a root path or a repeated header.
Everything else falls through to the full app unchanged.
``tests/protocols/test_gateway_fastpath.py`` sends the same requests to a gateway with and
without it and compares the answers.
"""

from __future__ import annotations

import os
import time
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from modelport import signing
from modelport.errors import ModelportError
from services.gateway.auth.principal import CREDENTIALS, Credentials
from services.gateway.dataplane import DataPlane, InferenceRequest
from services.gateway.rest.errors import error_response, unexpected_response
from services.gateway.rest.infer import (
    JSON_TYPES,
    answer_body,
    body_too_large,
    check_declared_length,
    content_type,
    decode_json,
)
from services.gateway.routing import VERSION_HEADER, pinned_version
from services.gateway.stats import GatewayStats
from services.gateway.streaming.sse import MEDIA_TYPE as SSE_MEDIA_TYPE
from services.gateway.telemetry import (
    CURRENT,
    AccessLog,
    RequestScope,
    record_http,
    sane_request_id,
)
from services.telemetry import logs, tracing

PREFIX = "/v1/services/"
SUFFIX = "/infer"
#: headers whose handling lives only in the full app: async tasks, session cookies
_FALL_THROUGH = frozenset({"prefer", "cookie"})

ASGIApp = Any


def takes(scope: dict[str, Any]) -> str | None:
    """The service name when ``scope``'s method and path are the unary infer route (as
    Starlette's ``/v1/services/{name}/infer`` would match them), else None."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        return None
    name = path[len(PREFIX):-len(SUFFIX)]
    return name if name and "/" not in name else None


def plain_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str] | None:
    """The request's headers by lowercase name, or None when one of them needs the full
    app (see the module docstring): a repeated name (Starlette reads the first, the auth
    middleware joins them), ``Prefer``, ``Cookie``, an SSE ``Accept``, a non-JSON body or
    a signed ``Authorization``."""
    headers: dict[str, str] = {}
    for k, v in raw:
        name = k.decode("latin-1").lower()
        if name in headers or name in _FALL_THROUGH:
            return None
        headers[name] = v.decode("latin-1")
    if content_type(headers.get("content-type")) not in JSON_TYPES:
        return None
    if SSE_MEDIA_TYPE in headers.get("accept", "") or signing.is_signed(
            headers.get("authorization", "")):
        return None
    return headers


class FastInfer:
    """ASGI: serves what ``takes`` and ``plain_headers`` accept, hands the rest to ``app``
    (the gateway's full app, its telemetry middleware outermost)."""

    def __init__(self, app: ASGIApp, dataplane: DataPlane, max_body: int,
                 stats: GatewayStats, access_log: AccessLog | None = None,
                 forward: Any = None) -> None:
        self.app = app
        self.dataplane = dataplane
        self.max_body = max_body
        self.stats = stats
        self.access_log = access_log
        #: rest/forward.py ForwardEndpoint: a custom image's service is known only once
        #: routed; its request then goes to the container's /infer as the full app's would
        self.forward = forward

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        name = takes(scope)
        headers = plain_headers(scope["headers"]) if name is not None else None
        if headers is None or tracing.enabled():  # spans: the middleware makes them
            await self.app(scope, receive, send)
            return
        assert name is not None
        started = time.perf_counter()
        # telemetry.py: the client's request id when sane, else a new one
        rid = headers.get("x-request-id", "")
        if not sane_request_id(rid):
            rid = headers["x-request-id"] = os.urandom(16).hex()
        traceparent = headers.get("traceparent", "")
        trace_id = tracing.parse_traceparent(traceparent)[0] if traceparent else ""
        trace_header = traceparent.strip() if trace_id else ""
        req = RequestScope(rid, self.stats)
        scope_token = CURRENT.set(req)
        rid_token = logs.bind_request_id(rid)
        client = scope.get("client")
        creds_token = CREDENTIALS.set(Credentials(
            headers, "POST", scope["path"], scope.get("query_string", b"").decode("latin-1"),
            client[0] if client else "", {}))
        status = 500
        try:
            try:
                res = await self._infer(name, rid, headers, scope, receive)
                if isinstance(res, Response):  # a custom image answered as it does
                    status = res.status_code
                    if trace_id:
                        res.raw_headers += [(b"x-trace-id", trace_id.encode()),
                                            (b"traceresponse", trace_header.encode())]
                    await res(scope, receive, send)
                    return
            except ModelportError as err:
                resp = error_response(err, rid)  # it names the request id
                status, raw, body = resp.status_code, resp.raw_headers, resp.body
            else:
                body, media_type = answer_body(res, headers.get("accept"))
                status = 200
                raw = [(b"x-request-id", rid.encode()),
                       (b"x-model-version", str(res.version).encode()),
                       (b"content-length", str(len(body)).encode()),
                       (b"content-type", media_type.encode())]
        except Exception:  # a bug: Starlette's ServerErrorMiddleware would answer this 500
            resp = unexpected_response("POST", scope["path"], rid)
            status = resp.status_code
            await self._send(send, resp.status_code, resp.raw_headers, resp.body, trace_id,
                             trace_header)
            raise  # uvicorn logs it, as it does for the full app
        else:
            await self._send(send, status, raw, body, trace_id, trace_header)
        finally:
            CREDENTIALS.reset(creds_token)
            record_http(req, self.stats, self.access_log, "POST", scope["path"], status,
                        time.perf_counter() - started, trace_id)
            logs.REQUEST_ID.reset(rid_token)
            CURRENT.reset(scope_token)

    @staticmethod
    async def _send(send: Any, status: int, raw: list[tuple[bytes, bytes]], body: bytes,
                    trace_id: str, trace_header: str) -> None:
        """The response, with the headers ``TelemetryMiddleware`` adds (``raw`` already
        names the request id)."""
        if trace_id:
            raw.append((b"x-trace-id", trace_id.encode()))
            raw.append((b"traceresponse", trace_header.encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def _infer(self, name: str, rid: str, headers: dict[str, str],
                     scope: dict[str, Any], receive: Any) -> Any:
        """``InferEndpoint.handle`` for a JSON body: route (auth, limits), decode, call; a
        custom image's service: the container's response (``rest/forward.py``)."""
        pin = pinned_version(headers.get(VERSION_HEADER))
        route = await self.dataplane.route(name, pin)
        if self.forward is not None and route.interface.get("kind") == "image":
            request = Request({**scope, "path_params": {"name": name}}, receive)
            return await self.forward.respond(request, route, rid)
        check_declared_length(headers.get("content-length"), self.max_body)
        inputs = decode_json(await self._body(receive), route)
        return await self.dataplane.infer(InferenceRequest(name, rid, inputs, version=pin),
                                          route)

    async def _body(self, receive: Any) -> bytes:
        """The body, refused past ``max_body`` (``request.stream()``'s reading, with its
        ClientDisconnect when the client goes away first)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            body = message.get("body", b"")
            if body:
                size += len(body)
                if size > self.max_body:
                    raise body_too_large(self.max_body)
                chunks.append(body)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
