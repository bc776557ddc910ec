"""Users, logins, API keys and the audit log over REST (the registry's modelport.v1.Auth).

| method | path | who | does |
|---|---|---|---|
| POST | /api/v1/auth/login | anyone | console login: HttpOnly SameSite cookie + csrf_token |
| POST | /api/v1/auth/token | anyone | CLI login (`modelport login`): a token |
| POST | /api/v1/auth/register | anyone, when enabled | a member account |
| POST | /api/v1/auth/logout | a session/login token | ends it |
| GET | /api/v1/auth/whoami | read | the caller |
| GET, POST | /api/v1/keys | read / deploy | list / create keys (secret shown once) |
| DELETE | /api/v1/keys/{id} | deploy | revoke |
| GET, POST | /api/v1/users | admin | list / create users |
| DELETE | /api/v1/users/{username} | admin | disable a user, revoke their keys |
| PUT | /api/v1/users/{username}/password | the user or an admin | new password |
| GET | /api/v1/audit | admin | the audit log, newest first |

Who may call what is decided by services/gateway/auth/ before these handlers run; they
only add what depends on the body (a key's scopes within the caller's own).
"""

from __future__ import annotations

import time
from typing import Any

import grpc
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport.errors import forbidden, invalid
from modelport.v1 import auth_pb2, auth_pb2_grpc
from services.gateway.auth.authenticator import Authenticator
from services.gateway.auth.principal import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    csrf_token,
    principal_json,
)
from services.gateway.limits import Limits
from services.gateway.rest.params import INT64_MAX, finite_number, json_object, query_int
from services.rpc.errors import from_rpc_error

#: login attempts per second per client address (bursts of 10)
LOGIN_RATE = 2.0


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _key_view(k: auth_pb2.ApiKey) -> dict[str, Any]:
    return {"id": k.id, "user": k.user, "name": k.name, "scopes": list(k.scopes),
            "kind": k.kind, "created_at": k.created_at, "expires_at": k.expires_at or None,
            "last_used_at": k.last_used_at or None, "revoked_at": k.revoked_at or None,
            "rate_limit": k.rate_limit or None}


def _user_view(u: auth_pb2.User) -> dict[str, Any]:
    return {"username": u.username, "role": u.role, "created_at": u.created_at,
            "disabled": u.disabled, "has_password": u.has_password}


def grantable(p: Principal, scope: str) -> bool:
    """A caller hands out only what it holds itself."""
    if p.admin:
        return True
    if scope == "admin":
        return False
    if scope in ("deploy", "read"):
        return p.can(scope)
    return p.can("deploy") or "invoke:*" in p.scopes or scope in p.scopes


class AuthApi:
    def __init__(self, registry: auth_pb2_grpc.AuthStub, authenticator: Authenticator,
                 allow_registration: bool = False, limits: Limits | None = None) -> None:
        self.registry = registry
        self.authenticator = authenticator
        self.allow_registration = allow_registration
        self.limits = limits or Limits()

    async def _call(self, method: str, request: Any) -> Any:
        try:
            return await getattr(self.registry, method)(request, timeout=30)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, "registry") from None

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        return await json_object(request, fix="send application/json", empty={})

    @staticmethod
    def _principal(request: Request) -> Principal:
        p = request.scope.get("state", {}).get("principal")
        assert isinstance(p, Principal), "the auth middleware runs first"
        return p

    def _login_limit(self, request: Request) -> None:
        host = request.client.host if request.client else ""
        wait = self.limits.take(f"login:{host}", LOGIN_RATE, 10)
        if wait:
            from services.gateway.limits import rate_limited

            raise rate_limited(wait, "auth.login_rate", "too many login attempts",
                               "wait for the Retry-After seconds")

    async def _login(self, request: Request, kind: str) -> auth_pb2.LoginResponse:
        self._login_limit(request)
        body = await self._body(request)
        username, password = str(body.get("username", "")), str(body.get("password", ""))
        request.scope.setdefault("state", {})["audit_user"] = username
        return await self._call("Login", auth_pb2.LoginRequest(
            username=username, password=password, kind=kind,
            name=str(body.get("name", "")), ttl_s=finite_number(
                body.get("ttl_s") or 0, "ttl_s", code="auth.invalid",
                fix="send ttl_s as seconds, or leave it out")))

    # handlers -------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        resp = await self._login(request, "session")
        csrf = csrf_token(resp.token)
        out = _json({**principal_json(Principal.from_proto(resp.principal)),
                     "csrf_token": csrf, "expires_at": resp.expires_at})
        secure = "; Secure" if request.url.scheme == "https" else ""
        age = max(1, int(resp.expires_at - time.time())) if resp.expires_at else 0
        max_age = f"; Max-Age={age}" if age else ""
        out.headers.append("set-cookie", f"{SESSION_COOKIE}={resp.token}; HttpOnly; "
                           f"SameSite=Strict; Path=/{max_age}{secure}")
        out.headers.append("set-cookie", f"{CSRF_COOKIE}={csrf}; SameSite=Strict; "
                           f"Path=/{max_age}{secure}")
        return out

    async def token(self, request: Request) -> Response:
        resp = await self._login(request, "login")
        return _json({**principal_json(Principal.from_proto(resp.principal)),
                      "token": resp.token, "expires_at": resp.expires_at})

    async def register(self, request: Request) -> Response:
        if not self.allow_registration:
            raise forbidden("auth.registration_closed", "self-registration is off",
                            "ask an admin to create your account (`modelport users add`), "
                            "or start the gateway with MODELPORT_GATEWAY_ALLOW_REGISTRATION=1")
        self._login_limit(request)
        body = await self._body(request)
        user = await self._call("CreateUser", auth_pb2.CreateUserRequest(
            username=str(body.get("username", "")), password=str(body.get("password", "")),
            role="member"))
        request.scope.setdefault("state", {})["audit_user"] = user.username
        return _json(_user_view(user), 201)

    async def logout(self, request: Request) -> Response:
        p = self._principal(request)
        await self._call("Logout", auth_pb2.LogoutRequest(key_id=p.key_id))
        self.authenticator.forget_all()
        out = _json({"logged_out": p.user})
        out.headers.append("set-cookie", f"{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; "
                           "Path=/; Max-Age=0")
        out.headers.append("set-cookie", f"{CSRF_COOKIE}=; SameSite=Strict; Path=/; Max-Age=0")
        return out

    async def whoami(self, request: Request) -> Response:
        return _json(principal_json(self._principal(request)))

    async def list_keys(self, request: Request) -> Response:
        p = self._principal(request)
        q = request.query_params
        user = q.get("user", "") if p.admin else p.user
        if p.admin and q.get("all") not in ("1", "true") and not user:
            user = p.user
        resp = await self._call("ListKeys", auth_pb2.ListKeysRequest(
            user=user, include_revoked=q.get("revoked") in ("1", "true")))
        return _json({"keys": [_key_view(k) for k in resp.keys]})

    async def create_key(self, request: Request) -> Response:
        p = self._principal(request)
        body = await self._body(request)
        scopes = body.get("scopes") or []
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise invalid("key.scope_invalid", "scopes must be a list of strings",
                          'send e.g. {"scopes": ["invoke:iris"]}', path="$.scopes")
        denied = [s for s in scopes if not grantable(p, s)]
        if denied:
            raise forbidden("key.scope_forbidden", f"this credential cannot grant "
                            f"{', '.join(denied)}", "create such a key with a credential "
                            "that holds these scopes (an admin token holds all)")
        user = str(body.get("user") or p.user)
        if user != p.user and not p.admin:
            raise forbidden("key.user_forbidden", "only admins create keys for other users",
                            "leave out 'user'")
        fix = 'send e.g. {"ttl_s": 86400, "rate_limit": 10}'
        ttl = finite_number(body.get("ttl_s") or 0, "ttl_s", code="key.invalid", fix=fix)
        rate = finite_number(body.get("rate_limit") or 0, "rate_limit", code="key.invalid",
                             fix=fix)
        created = await self._call("CreateKey", auth_pb2.CreateKeyRequest(
            user=user, name=str(body.get("name") or "key"), scopes=scopes, ttl_s=ttl,
            rate_limit=rate))
        return _json({**_key_view(created.key), "token": created.token,
                      "access_key": created.access_key, "secret_key": created.secret_key,
                      "note": "the token and secret_key are shown once; store them now"}, 201)

    async def revoke_key(self, request: Request) -> Response:
        p = self._principal(request)
        key = await self._call("RevokeKey", auth_pb2.RevokeKeyRequest(
            id=request.path_params["id"], user="" if p.admin else p.user))
        self.authenticator.forget_all()
        return _json(_key_view(key))

    async def list_users(self, request: Request) -> Response:
        resp = await self._call("ListUsers", auth_pb2.ListUsersRequest())
        return _json({"users": [_user_view(u) for u in resp.users]})

    async def create_user(self, request: Request) -> Response:
        body = await self._body(request)
        user = await self._call("CreateUser", auth_pb2.CreateUserRequest(
            username=str(body.get("username", "")), password=str(body.get("password", "")),
            role=str(body.get("role") or "member")))
        return _json(_user_view(user), 201)

    async def delete_user(self, request: Request) -> Response:
        user = await self._call("DeleteUser", auth_pb2.UserRequest(
            username=request.path_params["username"]))
        self.authenticator.forget_all()
        return _json(_user_view(user))

    async def set_password(self, request: Request) -> Response:
        p = self._principal(request)
        username = request.path_params["username"]
        if username != p.user and not p.admin:
            raise forbidden("user.password_forbidden", "you can change only your own password",
                            "ask an admin")
        body = await self._body(request)
        user = await self._call("SetPassword", auth_pb2.SetPasswordRequest(
            username=username, password=str(body.get("password", ""))))
        self.authenticator.forget_all()
        return _json(_user_view(user))

    async def audit(self, request: Request) -> Response:
        q = request.query_params
        fix = "GET /api/v1/audit?limit=50&user=alice"
        limit = query_int(request, "limit", 100, code="audit.query_invalid", fix=fix)
        before = query_int(request, "before_id", 0, high=INT64_MAX, code="audit.query_invalid",
                           fix=fix)
        since = finite_number(q.get("since") or 0, "since", code="audit.query_invalid", fix=fix)
        resp = await self._call("ListAudit", auth_pb2.ListAuditRequest(
            limit=limit, user=q.get("user", ""), since=since, before_id=before))
        return _json({"entries": [{"id": e.id, "ts": e.ts, "user": e.user, "key_id": e.key_id,
                                   "action": e.action, "target": e.target, "status": e.status,
                                   "remote": e.remote, "detail": e.detail}
                                  for e in resp.entries]})

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/auth/login", self.login, methods=["POST"]),
            Route("/api/v1/auth/token", self.token, methods=["POST"]),
            Route("/api/v1/auth/register", self.register, methods=["POST"]),
            Route("/api/v1/auth/logout", self.logout, methods=["POST"]),
            Route("/api/v1/auth/whoami", self.whoami, methods=["GET"]),
            Route("/api/v1/keys", self.list_keys, methods=["GET"]),
            Route("/api/v1/keys", self.create_key, methods=["POST"]),
            Route("/api/v1/keys/{id}", self.revoke_key, methods=["DELETE"]),
            Route("/api/v1/users", self.list_users, methods=["GET"]),
            Route("/api/v1/users", self.create_user, methods=["POST"]),
            Route("/api/v1/users/{username}", self.delete_user, methods=["DELETE"]),
            Route("/api/v1/users/{username}/password", self.set_password, methods=["PUT"]),
            Route("/api/v1/audit", self.audit, methods=["GET"]),
        ]


__all__ = ["AuthApi", "grantable"]
