"""The management API's single gate (ASGI, outermost but telemetry): every route under
``/api/v1`` except login needs a credential (401) with the scope the route needs (403);
members reach only their own services and models; mutations and refusals are audited."""


from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from http.cookies import SimpleCookie
from typing import Any

from starlette.routing import BaseRoute, Match

from modelport import signing
from modelport.errors import ModelportError, forbidden, not_found, too_large
from modelport.v1 import auth_pb2
from services.gateway.auth.gate import InferenceGate
from services.gateway.auth.principal import (
    ANONYMOUS_ADMIN,
    CREDENTIALS,
    PRINCIPAL,
    UNSAFE_METHODS,
    Credentials,
    Principal,
    describe_principal,
)
from services.gateway.rest.errors import error_response

log = logging.getLogger(__name__)


PUBLIC_ROUTES = {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/token"),
                 ("POST", "/api/v1/auth/register")}
MANAGEMENT_PREFIX = "/api/v1"



def route_need(method: str, template: str, webhook_secret: bool = False) -> str:
    """What a management route needs: public | any | session | read | deploy | admin."""
    if (method, template) in PUBLIC_ROUTES:
        return "public"
    if template == "/api/v1/gitops/webhook" and webhook_secret:
        return "public"  # the git host's HMAC signature is checked by the handler
    if template == "/api/v1/auth/logout":
        return "session"
    if template == "/api/v1/users/{username}/password":
        return "read"  # one's own; the handler lets admins change anyone's
    if template.startswith(("/api/v1/users", "/api/v1/audit", "/api/v1/gitops",
                            "/api/v1/platform")):
        return "admin"
    if template.startswith(("/api/v1/keys", "/api/v1/auth")):
        return "deploy" if method in UNSAFE_METHODS else "read"
    return "read" if method in ("GET", "HEAD") else "deploy"


def _match(routes: list[BaseRoute], scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The route template and path parameters the router will pick ("" if none)."""
    partial: tuple[str, dict[str, Any]] | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return getattr(route, "path", ""), child.get("path_params", {})
        if match is Match.PARTIAL and partial is None:
            partial = getattr(route, "path", ""), child.get("path_params", {})
    return partial or ("", {})


@dataclass(eq=False)
class AuthMiddleware:
    """ASGI: credentials for every request; the management API's one gate and audit."""

    app: Any
    _: KW_ONLY
    gate: InferenceGate
    routes: list[BaseRoute]
    audit: Callable[[auth_pb2.AuditEntry], Awaitable[None]] | None = None
    enabled: bool = True
    webhook_secret: bool = False
    max_signed_body: int = 12 * 1024 * 1024
    _pending: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", []):
            name = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        cookies: dict[str, str] = {}
        if "cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(headers["cookie"])
                cookies = {k: m.value for k, m in jar.items()}
            except Exception:  # noqa: BLE001 - a malformed cookie is no credential
                cookies = {}
        client = scope.get("client")
        creds = Credentials(headers, scope.get("method", "GET"), scope["path"],
                            scope.get("query_string", b"").decode("latin-1"),
                            client[0] if client else "", cookies)
        token = CREDENTIALS.set(creds)
        try:
            if creds.signed and scope["type"] == "http":
                try:
                    receive = await self._hash_body(creds, receive)
                except ModelportError as err:
                    await error_response(err, headers.get("x-request-id", ""))(scope, receive,
                                                                               send)
                    return
            if scope["path"] == MANAGEMENT_PREFIX or scope["path"].startswith(
                    MANAGEMENT_PREFIX + "/"):
                await self._management(scope, receive, send, creds)
            else:
                await self.app(scope, receive, send)
        finally:
            CREDENTIALS.reset(token)

    async def _hash_body(self, creds: Credentials, receive: Any) -> Any:
        """Read a signed request's body once to hash it; the app then reads the copy."""
        if creds.headers.get(signing.CONTENT_SHA256_HEADER) == signing.UNSIGNED_PAYLOAD:
            return receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_signed_body:
                raise too_large("auth.signed_body_too_large", "a signed body may be at most "
                                f"{self.max_signed_body} bytes", "send large uploads as "
                                "multipart with x-sdk-content-sha256: UNSIGNED-PAYLOAD, or "
                                "authenticate with a token")
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        creds.body_sha256 = signing.body_hash(body)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _management(self, scope: dict[str, Any], receive: Any, send: Any,
                          creds: Credentials) -> None:
        template, params = _match(self.routes, scope)
        method = scope.get("method", "GET")
        need = route_need(method, template or scope["path"], self.webhook_secret)
        status = 500
        principal: Principal | None = None
        error: ModelportError | None = None

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if need != "public":
                principal = ANONYMOUS_ADMIN if not self.enabled else \
                    await self.gate.authenticator.authenticate(creds)
                await self._authorize(principal, need, method, template, params)
        except ModelportError as err:
            error = err
        if error is not None:  # 401s carry WWW-Authenticate (rest/errors.py)
            await error_response(error, creds.headers.get("x-request-id", ""))(
                scope, receive, send_status)
        else:
            scope.setdefault("state", {})["principal"] = principal
            token = PRINCIPAL.set(principal)
            try:
                await self.app(scope, receive, send_status)
            finally:
                PRINCIPAL.reset(token)
        if self.audit is not None and (method in UNSAFE_METHODS or status in (401, 403)):
            who = principal or creds.principal
            user = (scope.get("state", {}).get("audit_user") or (who.user if who else ""))
            entry = auth_pb2.AuditEntry(
                ts=time.time(), user=user, key_id=who.key_id if who else "",
                action=f"{method} {template or scope['path']}",
                target=" ".join(f"{k}={v}" for k, v in params.items()), status=status,
                remote=creds.remote, detail=error.code if error is not None else "")
            task = asyncio.ensure_future(self.audit(entry))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _authorize(self, p: Principal, need: str, method: str, template: str,
                         params: dict[str, Any]) -> None:
        if not p.can(need):
            what = {"session": "a login session or token (`modelport login`)",
                    "admin": "an admin credential"}.get(need, f"scope {need} (or admin)")
            raise forbidden("auth.scope", f"{method} {template} needs {what}; "
                            f"this credential has {describe_principal(p)}",
                            f"use a credential with {what}" + (
                                f" (`modelport keys create --scope {need}`)"
                                if need in ("read", "deploy") else ""))
        if p.role == "admin":
            return
        service, model = params.get("name"), params.get("model")
        if service or model:  # members reach only their own
            pol = await self.gate.registry.GetPolicy(auth_pb2.PolicyRequest(
                service=str(service or ""), model=str(model or "")), timeout=10)
            if service and pol.service_exists and pol.service_owner != p.user:
                raise not_found("service.not_found", f"service {service!r} not found",
                                "list yours with `modelport list`")
            if model and pol.model_exists and pol.model_owner != p.user:
                raise not_found("model.not_found", f"model {model!r} not found",
                                "list yours with `modelport list`")
