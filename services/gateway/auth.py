"""Authentication and authorization at the edge: one data-plane stage, one management gate.

- ``AuthMiddleware`` (ASGI, outermost but telemetry) records each request's credentials
  (``Authorization: Bearer``, ``apikey``, ``X-Apig-AppCode``, the console's session cookie,
  or an ``SDK-HMAC-SHA256`` signature, see modelport/signing.py) in a context variable,
  and is the single gate of the management API: every route under ``/api/v1`` except
  login needs a credential (401) with the scope the route needs (403); members reach only
  their own services and models. Mutations and refusals go to the audit log.
- ``InferenceGate`` is the data plane's first stage (``DataPlane.route``): a service whose
  spec says ``auth.required`` needs ``invoke:<service>`` / ``invoke:*`` (401/403), then
  the service's and the key's token buckets apply (429). Protocol adapters never look at
  credentials: REST, SSE, WebSocket, OIP, KServe and gRPC (``GrpcCredentialsInterceptor``)
  all pass through here.
- ``IdentityInterceptor`` names the caller to the registry (``modelport-user``), which
  keeps members to their own services (services/registry/auth.py).

The registry holds users, keys and the audit log; this module caches a token's principal
for ``auth_cache_s`` (revocations through this gateway take effect at once).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import grpc
from starlette.routing import BaseRoute, Match

from modelport import signing
from modelport.errors import ModelportError, forbidden, not_found, too_large, unauthenticated
from modelport.v1 import auth_pb2, auth_pb2_grpc
from services.gateway.limits import Limits
from services.gateway.rest.errors import error_response
from services.gateway.single_flight import SingleFlight
from services.registry.auth import identity_metadata
from services.rpc.errors import from_rpc_error

log = logging.getLogger(__name__)

SESSION_COOKIE = "modelport_session"
CSRF_COOKIE = "modelport_csrf"
CSRF_HEADER = "x-csrf-token"
#: management routes anyone may call (they take a password, or check their own signature)
PUBLIC_ROUTES = {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/token"),
                 ("POST", "/api/v1/auth/register")}
MANAGEMENT_PREFIX = "/api/v1"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: derived, so the gateway keeps no state for it."""
    return hashlib.sha256(b"modelport-csrf:" + session_token.encode()).hexdigest()


# ------------------------------------------------------------------------ credentials


@dataclass
class Credentials:
    """What a request presented, as the middleware or the gRPC interceptor saw it."""

    headers: dict[str, str]
    method: str = "POST"
    path: str = "/"
    query: str = ""
    remote: str = ""
    cookies: dict[str, str] = field(default_factory=dict)
    #: SHA-256 of the body, for signed requests (None: not read)
    body_sha256: str | None = None
    #: the principal once established (a WebSocket's messages reuse the handshake's)
    principal: Principal | None = None

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")

    @property
    def signed(self) -> bool:
        return signing.is_signed(self.authorization)

    def token(self) -> tuple[str, str]:
        """(token, where it came from); ("", "") when none."""
        auth = self.authorization.strip()
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip(), "bearer"
        for header in ("apikey", "x-apig-appcode", "x-api-appcode"):
            if value := self.headers.get(header, "").strip():
                return value, header
        if session := self.cookies.get(SESSION_COOKIE):
            return session, "session"
        return "", ""

    @property
    def present(self) -> bool:
        return bool(self.signed or self.token()[0])


#: the current request's credentials; None (no request seen: nothing presented) or
#: INTERNAL (the gateway's own task runner, running tasks admitted when submitted)
CREDENTIALS: contextvars.ContextVar[Credentials | None] = contextvars.ContextVar(
    "modelport_credentials", default=None)
INTERNAL = Credentials({}, "INTERNAL")
#: the authenticated caller of a management request (named to the registry)
PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "modelport_principal", default=None)


@dataclass(frozen=True)
class Principal:
    user: str
    role: str
    key_id: str
    kind: str
    scopes: tuple[str, ...]
    rate_limit: float = 0.0

    @classmethod
    def from_proto(cls, p: auth_pb2.Principal) -> Principal:
        return cls(p.user, p.role, p.key_id, p.kind, tuple(p.scopes), p.rate_limit)

    @property
    def admin(self) -> bool:
        return self.role == "admin" and "admin" in self.scopes

    def can(self, need: str) -> bool:
        """``need``: admin | deploy | read | session | any."""
        if need == "any":
            return True
        if need == "session":
            return self.kind in ("login", "session")
        if self.admin:
            return True
        if need == "deploy":
            return "deploy" in self.scopes
        if need == "read":
            return "deploy" in self.scopes or "read" in self.scopes
        return False

    def can_invoke(self, service: str, owner: str) -> bool:
        if self.admin:
            return True
        if "invoke:*" not in self.scopes and f"invoke:{service}" not in self.scopes:
            return False
        return self.role == "admin" or owner == self.user

    def owns(self, owner: str) -> bool:
        return self.role == "admin" or owner == self.user


ANONYMOUS_ADMIN = Principal("admin", "admin", "", "no-auth", ("admin",))


class Authenticator:
    """Credentials -> Principal, through the registry's Auth service, with a short cache."""

    def __init__(self, registry: auth_pb2_grpc.AuthStub, cache_s: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.cache_s = cache_s
        self.clock = clock
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lookups: SingleFlight[Principal] = SingleFlight()

    def forget_all(self) -> None:
        """After a revoke, password change or user removal through this gateway."""
        self._cache.clear()
        self._lookups.forget()  # a check already running may predate the change

    async def authenticate(self, creds: Credentials) -> Principal:
        if creds.principal is not None:
            return creds.principal
        if creds.signed:
            principal = await self._signed(creds)
        else:
            token, source = creds.token()
            if not token:
                raise unauthenticated(
                    "auth.required", "this needs a credential",
                    "send 'Authorization: Bearer <token>' (the admin token is in "
                    "<home>/admin.token; `modelport keys create` makes API keys), an "
                    "'apikey' or 'X-Apig-AppCode' header, or an AK/SK signature")
            if source == "session" and creds.method in _UNSAFE and not hmac.compare_digest(
                    creds.headers.get(CSRF_HEADER, ""), csrf_token(token)):
                raise forbidden("auth.csrf", "the session cookie needs the X-CSRF-Token header "
                                "on this request", "send the csrf_token from the login answer "
                                "(or the modelport_csrf cookie) as X-CSRF-Token")
            principal = await self._token(token)
        creds.principal = principal
        return principal

    async def _token(self, token: str) -> Principal:
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        p = await self._lookups.run(key, lambda: self._check_token(token))
        if len(self._cache) > 10_000:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
        self._cache[key] = (p, now + self.cache_s)
        return p

    async def _check_token(self, token: str) -> Principal:
        return Principal.from_proto(await self._call(auth_pb2.AuthenticateRequest(token=token)))

    async def _signed(self, creds: Credentials) -> Principal:
        try:
            auth = signing.parse_authorization(creds.authorization)
        except ValueError as exc:
            raise unauthenticated("auth.signature_malformed",
                                  f"the Authorization header is not a valid signature: {exc}",
                                  "sign with modelport.signing or the APIG signer SDK") from None
        if signing.DATE_HEADER not in auth.signed_headers:
            raise unauthenticated("auth.signature_date", "x-sdk-date is not a signed header",
                                  "sign the X-Sdk-Date header")
        missing = [h for h in auth.signed_headers if h not in creds.headers]
        if missing:
            raise unauthenticated("auth.signature_headers", f"signed header(s) "
                                  f"{', '.join(missing)} are not in the request",
                                  "send every header listed in SignedHeaders")
        date_text = creds.headers[signing.DATE_HEADER]
        try:
            date = signing.parse_date(date_text)
        except ValueError:
            raise unauthenticated("auth.signature_date", f"X-Sdk-Date {date_text!r} is not "
                                  "YYYYMMDDTHHMMSSZ", "send the UTC time, e.g. "
                                  "20250101T120000Z") from None
        skew = self.clock() - date
        if abs(skew) > signing.MAX_SKEW_S:
            raise unauthenticated("auth.signature_expired", f"X-Sdk-Date is {abs(skew) / 60:.0f} "
                                  "minutes off the gateway's clock (15 allowed)",
                                  "sign each request when it is sent, with a synchronised clock")
        payload = creds.headers.get(signing.CONTENT_SHA256_HEADER, "")
        if payload == signing.UNSIGNED_PAYLOAD:
            if not creds.headers.get("content-type", "").startswith("multipart/form-data"):
                raise unauthenticated("auth.unsigned_payload", "UNSIGNED-PAYLOAD is accepted "
                                      "for multipart/form-data bodies only",
                                      "sign the body's SHA-256 instead")
        elif payload:
            if creds.body_sha256 is None or not hmac.compare_digest(payload.lower(),
                                                                      creds.body_sha256):
                raise unauthenticated("auth.signature_mismatch", "the body does not match "
                                      "x-sdk-content-sha256", "sign the body that is sent")
        else:
            payload = creds.body_sha256 or signing.body_hash(b"")
        canonical = signing.canonical_request(creds.method, creds.path, creds.query,
                                              creds.headers, auth.signed_headers, payload)
        to_sign = signing.string_to_sign(canonical, date_text)
        return Principal.from_proto(await self._call(auth_pb2.AuthenticateRequest(
            signed=auth_pb2.SignedRequest(access_key=auth.access_key, string_to_sign=to_sign,
                                          signature=auth.signature,
                                          expires_at=date + signing.MAX_SKEW_S))))

    async def _call(self, request: auth_pb2.AuthenticateRequest) -> auth_pb2.Principal:
        try:
            return await self.registry.Authenticate(request, timeout=10)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, "registry") from None


# ------------------------------------------------------------------------ data plane


@dataclass
class _Policy:
    exists: bool
    owner: str
    required: bool
    rate: float
    burst: int
    expires: float


class InferenceGate:
    """auth -> limits, the first stage of every inference call (services/gateway/dataplane.py)."""

    def __init__(self, registry: auth_pb2_grpc.AuthStub, authenticator: Authenticator,
                 limits: Limits | None = None, enabled: bool = True,
                 policy_ttl_s: float = 1.0) -> None:
        self.registry = registry
        self.authenticator = authenticator
        self.limits = limits or Limits()
        self.enabled = enabled
        self.policy_ttl_s = policy_ttl_s
        self._policies: dict[str, _Policy] = {}
        self._lookups: SingleFlight[_Policy] = SingleFlight()

    def forget(self, service: str) -> None:
        self._policies.pop(service, None)
        self._lookups.forget(service)

    async def policy(self, service: str) -> _Policy:
        now = time.monotonic()
        hit = self._policies.get(service)
        if hit is not None and hit.expires > now:
            return hit
        return await self._lookups.run(service, lambda: self._fetch_policy(service, now))

    async def _fetch_policy(self, service: str, now: float) -> _Policy:
        try:
            p = await self.registry.GetPolicy(auth_pb2.PolicyRequest(service=service), timeout=10)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, "registry") from None
        pol = _Policy(p.service_exists, p.service_owner, p.auth_required, p.rate_limit, p.burst,
                      now + self.policy_ttl_s)
        if len(self._policies) > 10_000:
            self._policies.clear()
        self._policies[service] = pol
        return pol

    async def admit(self, service: str, *, limit: bool = True, strict: bool = False) -> None:
        """Raise 401/403/429 unless this request may call ``service`` now.

        ``strict``: a service that does not exist (any more) needs a credential too (its
        tasks' results); otherwise an unknown name is left to routing (404).
        """
        creds = CREDENTIALS.get()
        if creds is INTERNAL:
            return  # the gateway's own call (an admitted async task running)
        creds = creds or Credentials({})  # fail closed: an unseen caller presented nothing
        pol = await self.policy(service)
        if not pol.exists and not strict:
            return
        principal: Principal | None = None
        if self.enabled and (pol.required or not pol.exists):
            principal = await self.authenticator.authenticate(creds)
            if not principal.can_invoke(service, pol.owner):
                raise forbidden("auth.scope", f"this credential ({_describe(principal)}) may "
                                f"not call service {service!r}",
                                f"use a key with scope invoke:{service} or invoke:* "
                                f"(`modelport keys create --scope invoke:{service}`)")
        if limit:
            self.limits.check_service(service, pol.rate, pol.burst)
            if principal is not None and principal.rate_limit > 0:
                self.limits.check_key(principal.key_id, principal.rate_limit)


def _describe(p: Principal) -> str:
    return f"user {p.user}, scopes {', '.join(p.scopes) or 'none'}"


# ------------------------------------------------------------------------ management gate


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
    if template.startswith(("/api/v1/users", "/api/v1/audit", "/api/v1/gitops")):
        return "admin"
    if template.startswith(("/api/v1/keys", "/api/v1/auth")):
        return "deploy" if method in _UNSAFE else "read"
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


class AuthMiddleware:
    """ASGI: credentials for every request; the management API's one gate and audit."""

    def __init__(self, app: Any, *, gate: InferenceGate, routes: list[BaseRoute],
                 audit: Callable[[auth_pb2.AuditEntry], Awaitable[None]] | None = None,
                 enabled: bool = True, webhook_secret: bool = False,
                 max_signed_body: int = 12 * 1024 * 1024) -> None:
        self.app = app
        self.gate = gate
        self.routes = routes
        self.audit = audit
        self.enabled = enabled
        self.webhook_secret = webhook_secret
        self.max_signed_body = max_signed_body
        self._pending: set[asyncio.Task[None]] = set()

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
        if self.audit is not None and (method in _UNSAFE or status in (401, 403)):
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
            raise forbidden("auth.scope", f"{method} {template or 'this path'} needs {what}; "
                            f"this credential has {_describe(p)}",
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


# ------------------------------------------------------------------------ gRPC


class GrpcCredentialsInterceptor(grpc.aio.ServerInterceptor):
    """Public gRPC: the call's metadata are its credentials (authorization, apikey,
    x-apig-appcode), checked by the data plane like REST headers."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method.decode() if isinstance(details.method, bytes) else details.method

        def creds(context: grpc.aio.ServicerContext) -> Credentials:
            meta = {k.lower(): v for k, v in (context.invocation_metadata() or ())
                    if isinstance(v, str)}
            return Credentials(meta, "POST", method, "", context.peer() or "")

        kinds = {(False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
                 (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
                 (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
                 (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler)}
        attr, make = kinds[(handler.request_streaming, handler.response_streaming)]
        inner = getattr(handler, attr)
        if handler.response_streaming:
            async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
                token = CREDENTIALS.set(creds(context))
                try:
                    async for item in inner(request, context):
                        yield item
                finally:
                    CREDENTIALS.reset(token)

            wrapped: Any = streaming
        else:
            async def single(request: Any, context: grpc.aio.ServicerContext) -> Any:
                token = CREDENTIALS.set(creds(context))
                try:
                    return await inner(request, context)
                finally:
                    CREDENTIALS.reset(token)

            wrapped = single
        return make(wrapped, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)


def _with_identity(details: Any) -> Any:
    principal = PRINCIPAL.get()
    if principal is None:
        return details
    metadata = grpc.aio.Metadata(*(details.metadata or ()),
                                 *identity_metadata(principal.user, principal.role))
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata,
                                      details.credentials, details.wait_for_ready)


class _IdentityUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_identity(details), request)


class _IdentityStreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any,
                                     request_iterator: Any) -> Any:
        return await continuation(_with_identity(details), request_iterator)


class _IdentityUnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any,
                                     request: Any) -> Any:
        return await continuation(_with_identity(details), request)


def identity_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """For the gateway's registry channel: name the management caller to the registry."""
    return [_IdentityUnary(), _IdentityStreamUnary(), _IdentityUnaryStream()]


def principal_json(p: Principal) -> dict[str, Any]:
    return {"user": p.user, "role": p.role, "key_id": p.key_id, "kind": p.kind,
            "scopes": list(p.scopes), "rate_limit": p.rate_limit}


__all__ = ["AuthMiddleware", "Authenticator", "CREDENTIALS", "Credentials",
           "GrpcCredentialsInterceptor", "INTERNAL", "InferenceGate", "PRINCIPAL", "Principal",
           "csrf_token", "identity_interceptors", "principal_json", "route_need"]
