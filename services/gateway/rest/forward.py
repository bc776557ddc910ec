"""``ANY /v1/services/{name}/{path...}``: a custom image's own HTTP paths.

A service whose package is a custom image (config.json ``"model_type": "Image"``) answers
HTTP itself: the request goes to the container as ``/{path...}`` (``/v1/services/x/infer``
-> ``/infer``) with its method, query, body and headers, and the container's response
comes back as it is (status, headers, body; a streamed one streams). The data plane's
stages are those of every call: auth and limits (``dataplane.route``), the route table
(``X-Model-Version`` pin, canary split), then the runtime's ``ForwardHttp``; only the
call differs.

Headers: hop-by-hop ones are dropped both ways, and so are the platform's credentials
(``Authorization``, ``apikey``, the AppCode headers, the session cookie), which the
container has no use for; it gets ``X-Request-ID``, ``X-Forwarded-For``/``-Proto``/``-Host``
and ``X-Forwarded-Prefix`` (``/v1/services/NAME``, for links it writes). The answer
carries ``X-Request-ID`` and ``X-Model-Version`` besides the container's own headers.

For a service that is not a custom image the route is not there: the router's 404 or 405
answers, as before it existed (``route_errors.py`` leaves this route out of its lists).
``POST /v1/services/{name}/infer`` and ModelArts' ``/v1/infers/{name}[/path]`` reach the
container too when the service is a custom image (``rest/infer.py``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from http.cookies import SimpleCookie

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from modelport.errors import ModelportError, invalid
from modelport.v1 import runtime_pb2
from services.gateway.auth.principal import SESSION_COOKIE
from services.gateway.dataplane import DataPlane, Forwarded, ForwardRequest
from services.gateway.dataplane import Route as ServiceRoute
from services.gateway.rest.errors import error_response
from services.gateway.rest.infer import body_too_large, check_declared_length
from services.gateway.routing import VERSION_HEADER, pinned_version
from services.telemetry import logs, tracing

PATH = "/v1/services/{name}/{path:path}"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: never sent on to the container: hop-by-hop headers and the platform's credentials
DROPPED = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                     "transfer-encoding", "upgrade", "proxy-authorization", "content-length",
                     "authorization", "apikey", "x-apig-appcode", "x-api-appcode",
                     "x-request-id", "x-forwarded-for", "x-forwarded-proto",
                     "x-forwarded-host", "x-forwarded-prefix"})

Fail = Callable[[ModelportError, str], Response]
log = logging.getLogger(__name__)


class ForwardRoute(Route):
    """The custom images' catch-all: ``catch_all`` keeps it out of the router's 404/405
    lists (``route_errors.py``), which name the routes every service has."""

    catch_all = True


def target_of(raw_path: str, query: bytes) -> str:
    """``/v1/services/x/infer?a=1`` (or ``/v1/infers/x/infer``) -> ``/infer?a=1``; the path
    as the client sent it (percent-encoding kept)."""
    rest = raw_path.split("/", 4)
    path = "/" + (rest[4] if len(rest) > 4 else "")
    return path + ("?" + query.decode("latin-1") if query else "")


def forwarded_headers(request: Request, service: str, rid: str) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for key, value in request.scope.get("headers", []):
        name = key.decode("latin-1").lower()
        if name in DROPPED:
            continue
        if name == "cookie":
            value = _without_session(value)
            if not value:
                continue
        out.append((name, value))
    client = request.scope.get("client")
    out += [("x-request-id", rid.encode("latin-1")),
            ("x-forwarded-proto", request.url.scheme.encode("latin-1")),
            ("x-forwarded-prefix", f"/v1/services/{service}".encode())]
    if client:
        out.append(("x-forwarded-for", str(client[0]).encode("latin-1")))
    if host := request.headers.get("host"):
        out.append(("x-forwarded-host", host.encode("latin-1")))
    carried = tracing.carrier()  # the container may join the trace
    if carried:
        out = [(k, v) for k, v in out if k not in carried] + [
            (k, str(v).encode("latin-1")) for k, v in carried.items()]
    return out


def _without_session(value: bytes) -> bytes:
    """A Cookie header without the platform's session cookie."""
    text = value.decode("latin-1")
    if SESSION_COOKIE not in text:
        return value
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(text)
    except Exception:  # noqa: BLE001 - unreadable: send none of it
        return b""
    kept = [f"{k}={m.value}" for k, m in jar.items() if k != SESSION_COOKIE]
    return "; ".join(kept).encode("latin-1")


class ForwardEndpoint:
    """Forwards requests for custom image services to their containers."""

    def __init__(self, dataplane: DataPlane, max_body: int) -> None:
        self.dataplane = dataplane
        self.max_body = max_body

    def routes(self) -> list[Route]:
        return [ForwardRoute(PATH, self.handle, methods=METHODS)]

    async def handle(self, request: Request) -> Response:
        """The catch-all: a custom image's path, else the router's own 404/405."""
        name = request.path_params["name"]
        if not await self.dataplane.serves_http(name):
            from services.gateway.rest.route_errors import allowed_methods

            raise HTTPException(405 if allowed_methods(request.scope, request.app.routes)
                                else 404)
        return await self.respond(request)

    async def respond(self, request: Request, route: ServiceRoute | None = None,
                      rid: str = "", fail: Fail | None = None) -> Response:
        """Forward ``request`` (``route``: already chosen, its auth stage passed) and answer
        with the container's response; errors in ``fail``'s shape."""
        fail = fail or error_response
        rid = rid or request.headers.get("x-request-id") or uuid.uuid4().hex
        name = request.path_params["name"]
        try:
            pin = pinned_version(request.headers.get(VERSION_HEADER))
            route = route or await self.dataplane.route(name, pin)
            if route.interface.get("kind") != "image":
                raise invalid("request.not_an_image",
                              f"version {route.version} of {name!r} is not a custom image; "
                              "only those answer their own paths",
                              f"call it at POST /v1/services/{name}/infer")
            check_declared_length(request.headers.get("content-length"), self.max_body)
            body = await _read(request, self.max_body)
            req = ForwardRequest(name, rid, request.method,
                                 target_of(request.scope.get("raw_path", b"").decode(
                                     "latin-1") or request.url.path,
                                     request.scope.get("query_string", b"")),
                                 forwarded_headers(request, name, rid), body, version=pin)
            answer = await self.dataplane.forward(req, route)
        except ModelportError as err:
            return fail(err, rid)
        return _response(answer, rid)


async def _read(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _headers(first: runtime_pb2.HttpResponsePart, rid: str) -> list[tuple[bytes, bytes]]:
    out = [(h.name.encode("latin-1"), h.value) for h in first.headers
           if h.name not in ("x-request-id", "x-model-version")]
    return out + [(b"x-request-id", rid.encode("latin-1")),
                  (b"x-model-version", str(first.version).encode())]


def _response(answer: Forwarded, rid: str) -> Response:
    first = answer.first
    headers = _headers(first, rid)
    if answer.rest is None:
        resp = Response(first.body, status_code=first.status)
        if not any(k == b"content-length" for k, _ in headers):
            headers.append((b"content-length", str(len(first.body)).encode()))
        resp.raw_headers = headers
        return resp
    resp = StreamingResponse(_body(first, answer.rest, rid), status_code=first.status)
    resp.raw_headers = headers
    return resp


async def _body(first: runtime_pb2.HttpResponsePart,
                rest: AsyncIterator[runtime_pb2.HttpResponsePart], rid: str
                ) -> AsyncIterator[bytes]:
    """The body as the parts come; a failure midway ends it (the status is sent)."""
    if first.body:
        yield first.body
    try:
        async for part in rest:
            if part.body:
                yield part.body
    except ModelportError as err:
        token = logs.bind_request_id(rid)
        try:
            log.warning("the answer of a custom image broke off: %s: %s", err.code,
                        err.message)
        finally:
            logs.REQUEST_ID.reset(token)
    finally:
        await rest.aclose()  # type: ignore[attr-defined]
