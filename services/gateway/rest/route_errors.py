"""Answers for requests no route takes: an unknown path (404, naming the closest routes) or
a method the path does not take (405, with ``Allow``), in the error envelope of the API the
path belongs to, so that Starlette's plain-text ``Not Found`` never reaches a client."""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route, WebSocketRoute

from modelport.errors import Kind, ModelportError, invalid
from services.gateway.rest import errors, modelarts_infer, oip_routes

#: paths answered in the Open Inference Protocol's ``{"error": "..."}`` shape (oip_routes.py)
OIP_PREFIXES = ("/v2/", "/v1/models/")
#: paths answered in ModelArts' ``{"error_code", "error_msg"}`` shape (modelarts_infer.py)
MODELARTS_PREFIX = "/v1/infers/"
#: at most this many routes are suggested for an unknown path
SUGGESTIONS = 3
_PARAM = re.compile(r"\{[^}]*\}")


def templates(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    """(methods, template) of each route, e.g. ``("GET|PUT", "/api/v1/services/{name}")``:
    routes sharing a template are one entry, HEAD (implied by GET) left out."""
    methods: dict[str, set[str]] = {}
    for route in routes:
        if getattr(route, "catch_all", False):  # custom images' paths (rest/forward.py)
            continue
        if isinstance(route, Route):
            methods.setdefault(route.path, set()).update((route.methods or set()) - {"HEAD"})
        elif isinstance(route, WebSocketRoute):
            methods.setdefault(route.path, set()).add("WEBSOCKET")
    return [("|".join(sorted(m)), path) for path, m in methods.items()]


def _filled(template: str, path: str) -> str:
    """``template`` with each parameter segment replaced by ``path``'s segment at the same
    place, so ``/v1/services/{name}/infer`` compares to ``/v1/services/iris/infr`` by its
    fixed parts only."""
    given = path.split("/")
    out = []
    for i, seg in enumerate(template.split("/")):
        out.append(given[i] if _PARAM.fullmatch(seg) and i < len(given) else seg)
    return "/".join(out)


def closest(path: str, routes: Iterable[BaseRoute]) -> list[str]:
    """The routes most like ``path`` (difflib's ratio, best first), as ``METHOD template``."""
    scored = []
    for methods, template in templates(routes):
        ratio = difflib.SequenceMatcher(None, path, _filled(template, path)).ratio()
        if ratio >= 0.6:
            scored.append((-ratio, template, methods))
    return [f"{methods} {template}" for _, template, methods in sorted(scored)[:SUGGESTIONS]]


def allowed_methods(scope: dict, routes: Iterable[BaseRoute]) -> list[str]:
    """Every method some route takes at this path (Starlette's own 405 names only the first
    route's, though GET and DELETE of one path are separate routes here)."""
    methods: set[str] = set()
    for route in routes:
        if getattr(route, "catch_all", False):
            continue
        if isinstance(route, Route) and route.matches(scope)[0] is not Match.NONE:
            methods.update(route.methods or ())
    return sorted(methods)


def route_error(request: Request, status: int) -> tuple[ModelportError, dict[str, str]]:
    """The error (and extra headers) for a request the router did not take with
    ``status`` 404 or 405."""
    method, path = request.method, request.url.path
    routes = request.app.routes
    if status == 405:
        allow = allowed_methods(request.scope, routes)
        shown = [m for m in allow if m != "HEAD"]
        return ModelportError(
            Kind.METHOD_NOT_ALLOWED, "route.method_not_allowed",
            f"{method} is not a method of {path}; it takes {', '.join(shown)}",
            f"send {' or '.join(shown)} {path} (the API: GET /openapi.json)",
            details={"allow": shown}), {"Allow": ", ".join(allow)}
    near = closest(path, routes)
    fix = ("did you mean " + "; ".join(near) + "?") if near else ""
    fix += (" " if fix else "") + "every route is listed at GET /openapi.json (docs/api.md)"
    return ModelportError(Kind.NOT_FOUND, "route.not_found",
                          f"no route {method} {path}", fix,
                          details={"closest": near} if near else {}), {}


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's HTTPException (the router's 404 and 405, a malformed form's 400) as the
    error envelope; the exception handler of the gateway's app (server.py)."""
    assert isinstance(exc, HTTPException)
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex
    headers: dict[str, str] = {}
    if exc.status_code in (404, 405):
        err, headers = route_error(request, exc.status_code)
    else:
        err = invalid("request.malformed", f"the request could not be read: {exc.detail}",
                      "check the body against its Content-Type")
    path = request.url.path
    if path == "/v2" or path.startswith(OIP_PREFIXES):
        resp = oip_routes.error_response(err, rid)
    elif path.startswith(MODELARTS_PREFIX):
        resp = modelarts_infer.modelarts_error(err, rid)
    else:
        return errors.error_response(err, rid, headers)
    resp.headers.update(headers)
    return resp
