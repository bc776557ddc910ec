"""The web console: static files under ``/console``, served by the gateway on the API's port.

The console is a handful of framework-free ES modules (``assets/``) that call the same
REST API as the CLI, with the same credentials: a token kept in ``sessionStorage`` (sent as
``Authorization: Bearer``) or the login session cookie (HttpOnly, SameSite=Strict) with its
``X-CSRF-Token``. The files hold no data, so they need no credential; every page's data
comes from ``/api/v1``, which does. Every answer carries a Content-Security-Policy that
allows scripts, styles and connections from the platform's own origin only, and the
scripts build the page with text nodes, never HTML strings, so a model's output or an
uploaded file's name cannot run as code.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from modelport.errors import not_found
from services.gateway.rest.errors import error_response

ASSETS = Path(__file__).resolve().parent / "assets"
#: only the platform's own origin; images may also be the browser's own previews (blob:)
#: of files picked in the test form, or data: URLs of image outputs
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' blob: data:; font-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets(root: Path = ASSETS) -> dict[str, Asset]:
    """Every file under ``root`` by its path relative to it, read once at start-up: the
    set is small (tens of KiB) and fixed, and a path not in it cannot be served."""
    out: dict[str, Asset] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            body = path.read_bytes()
            kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or \
                "application/octet-stream"
            out[path.relative_to(root).as_posix()] = Asset(
                body, kind, '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
    return out


class Console:
    """``GET /console`` (the page) and ``GET /console/assets/{path}`` (its modules)."""

    def __init__(self, assets: dict[str, Asset] | None = None) -> None:
        self.assets = assets if assets is not None else load_assets()

    def _serve(self, request: Request, name: str) -> Response:
        asset = self.assets.get(name)
        if asset is None:  # the API's JSON error, as every other 404
            resp = error_response(not_found(
                "console.not_found", f"no console file {name[:120]!r}",
                "open the console at /console; its files are listed by the page"),
                request.headers.get("x-request-id", ""))
            resp.headers.update(SECURITY_HEADERS)
            return resp
        headers = {**SECURITY_HEADERS, "etag": asset.etag, "cache-control": "no-cache"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    async def page(self, request: Request) -> Response:
        return self._serve(request, "index.html")

    async def asset(self, request: Request) -> Response:
        return self._serve(request, request.path_params["path"])

    async def slash(self, request: Request) -> Response:
        return RedirectResponse("/console", status_code=308)

    def routes(self) -> list[Route]:
        return [Route("/console", self.page, methods=["GET", "HEAD"]),
                Route("/console/", self.slash, methods=["GET", "HEAD"]),
                Route("/console/assets/{path:path}", self.asset, methods=["GET", "HEAD"])]
