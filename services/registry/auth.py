"""Who may do what: users, API keys, sessions, ownership and the audit log (modelport.v1.Auth).

The registry is the only component that sees a credential's stored form:

- a token is ``mp_<id>.<secret>``; the database keeps the SHA-256 of the secret, compared
  in constant time, never the secret;
- an AK/SK pair is ``<id>`` / ``<secret>``; the secret is HMAC-SHA256(signing key, salt),
  so the registry can check a signature by re-deriving it, while the database alone
  (without ``<home>/auth.key``, mode 0600) reveals nothing;
- passwords are argon2id hashes (argon2-cffi).

``OwnershipInterceptor`` keeps members to their own services and models on the Registry
RPCs: the gateway names the caller in the ``modelport-user``/``modelport-role`` metadata
(the registry's socket is reachable only by the platform's own user, see
docs/security.md); calls without it are the platform's own (controller, watcher sync).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from modelport import signing
from modelport.errors import (
    ModelportError,
    conflict,
    forbidden,
    invalid,
    not_found,
    unauthenticated,
)
from modelport.v1 import auth_pb2, auth_pb2_grpc, registry_pb2
from services.registry.store.auth import AuditRecord, AuthStore, KeyRecord, UserRecord
from services.registry.store.base import Store
from services.rpc.errors import abort, translate_errors

TOKEN_RE = re.compile(r"^mp_([0-9a-f]{16})\.([A-Za-z0-9_-]{20,128})$")
USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
SCOPE_RE = re.compile(r"^(admin|deploy|read|invoke:\*|invoke:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$")
ROLES = ("admin", "member")
KINDS_FROM_ROLE = ("login", "session")
MIN_PASSWORD = 8
SESSION_TTL_S = 12 * 3600.0
LOGIN_TTL_S = 30 * 86400.0
#: last_used_at is written at most this often per key
TOUCH_EVERY_S = 30.0
USER_KEY = "modelport-user"
ROLE_KEY = "modelport-role"


def role_scopes(role: str) -> list[str]:
    """What a login token or session of this role may do."""
    return ["admin"] if role == "admin" else ["deploy", "read", "invoke:*"]


def load_signing_key(path: Path) -> bytes:
    """32 random bytes in a 0600 file next to the database, made on first start."""
    try:
        data = path.read_bytes()
        if len(data) == 32:
            return data
    except FileNotFoundError:
        pass
    data = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return data


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _bad_credential() -> ModelportError:
    return unauthenticated("auth.invalid", "the credential is not valid",
                           "check the token or key (`modelport keys list`), or log in again "
                           "with `modelport login`")


class ReplayCache:
    """Signatures seen inside their date window; a second use is a replay."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def first_use(self, sig: str, expires_at: float, now: float) -> bool:
        if len(self._seen) > 10_000:
            self._seen = {s: e for s, e in self._seen.items() if e > now}
        if self._seen.get(sig, 0.0) > now:
            return False
        self._seen[sig] = max(expires_at, now + 1.0)
        return True


class AuthServicer(auth_pb2_grpc.AuthServicer):
    def __init__(self, auth: AuthStore, store: Store, signing_key: bytes,
                 clock: Callable[[], float] = time.time) -> None:
        from argon2 import PasswordHasher

        self.auth = auth
        self.store = store
        self.signing_key = signing_key
        self.clock = clock
        self.hasher = PasswordHasher()
        self.replays = ReplayCache()
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    # credentials ---------------------------------------------------------------------
    def _derive(self, salt: str) -> str:
        raw = hmac.new(self.signing_key, bytes.fromhex(salt), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def _new_key(self, user: str, name: str, scopes: list[str], kind: str, ttl_s: float,
                 rate_limit: float = 0.0, token: str = "") -> tuple[KeyRecord, str, str]:
        """A stored key and its (token, secret); ``token`` adopts a given one."""
        now = self.clock()
        if token:
            m = TOKEN_RE.match(token)
            if not m:
                raise invalid("auth.token_format", "the admin token must look like "
                              "mp_<16 hex>.<secret of 20+ URL-safe characters>",
                              "unset MODELPORT_ADMIN_TOKEN to have one made")
            key_id, secret, salt = m.group(1), m.group(2), ""
        else:
            key_id, salt = secrets.token_hex(8), secrets.token_hex(32)
            secret = self._derive(salt)
        rec = KeyRecord(id=key_id, user=user, name=name, scopes=scopes, kind=kind,
                        secret_hash=_sha256(secret), salt=salt, created_at=now,
                        expires_at=now + ttl_s if ttl_s > 0 else 0.0, rate_limit=rate_limit)
        self.auth.add_key(rec)
        return rec, f"mp_{key_id}.{secret}", secret

    def _principal(self, k: KeyRecord) -> auth_pb2.Principal:
        now = self.clock()
        if k.revoked_at:
            raise unauthenticated("auth.revoked", f"key {k.id} was revoked",
                                  "create a new key with `modelport keys create`")
        if k.expires_at and k.expires_at <= now:
            raise unauthenticated("auth.expired", f"credential {k.id} expired",
                                  "log in again (`modelport login`) or create a new key")
        user = self.auth.get_user(k.user)
        if user is None or user.disabled:
            raise _bad_credential()
        if now - k.last_used_at > TOUCH_EVERY_S:
            self.auth.touch_key(k.id, now)
        scopes = role_scopes(user.role) if k.kind in KINDS_FROM_ROLE else k.scopes
        return auth_pb2.Principal(user=user.username, role=user.role, key_id=k.id, kind=k.kind,
                                  scopes=scopes, rate_limit=k.rate_limit,
                                  expires_at=k.expires_at)

    def _check_token(self, token: str) -> auth_pb2.Principal:
        m = TOKEN_RE.match(token.strip())
        k = self.auth.get_key(m.group(1)) if m else None
        presented = _sha256(m.group(2)) if m else _sha256(token)
        stored = k.secret_hash if k is not None else _sha256("no such key")
        if not hmac.compare_digest(presented, stored) or k is None:
            raise _bad_credential()
        return self._principal(k)

    def _check_signature(self, s: auth_pb2.SignedRequest) -> auth_pb2.Principal:
        k = self.auth.get_key(s.access_key)
        if k is None or not k.salt:
            raise unauthenticated("auth.access_key", f"unknown access key {s.access_key!r}",
                                  "sign with the access_key / secret_key pair that "
                                  "`modelport keys create` printed")
        want = signing.signature(self._derive(k.salt), s.string_to_sign)
        if not hmac.compare_digest(want, s.signature.lower()):
            raise unauthenticated("auth.signature_mismatch",
                                  "the request signature does not match",
                                  "sign exactly the method, path, query, signed headers and "
                                  "body that are sent, with the key's secret_key")
        principal = self._principal(k)
        if not self.replays.first_use(s.signature.lower(), s.expires_at, self.clock()):
            raise unauthenticated("auth.replayed", "this signed request was already used",
                                  "sign every request afresh (a new X-Sdk-Date)")
        return principal

    # RPCs -----------------------------------------------------------------------------
    @translate_errors
    async def Bootstrap(self, request: auth_pb2.BootstrapRequest,
                        context: grpc.aio.ServicerContext) -> auth_pb2.BootstrapResponse:
        if self.auth.count_admins() or self.auth.get_user("admin") is not None:
            return auth_pb2.BootstrapResponse(created=False)
        self.auth.add_user(UserRecord("admin", "admin", created_at=self.clock()))
        _, token, _ = self._new_key("admin", "bootstrap (modelport up)", ["admin"],
                                    "bootstrap", 0.0, token=request.token)
        return auth_pb2.BootstrapResponse(created=True, token=token)

    @translate_errors
    async def Authenticate(self, request: auth_pb2.AuthenticateRequest,
                           context: grpc.aio.ServicerContext) -> auth_pb2.Principal:
        if request.HasField("signed"):
            return self._check_signature(request.signed)
        return self._check_token(request.token)

    @translate_errors
    async def Login(self, request: auth_pb2.LoginRequest,
                    context: grpc.aio.ServicerContext) -> auth_pb2.LoginResponse:
        from argon2.exceptions import VerificationError, VerifyMismatchError

        user = self.auth.get_user(request.username)
        stored = user.password_hash if user is not None and user.password_hash else ""
        try:
            await asyncio.to_thread(self.hasher.verify, stored or self._dummy_hash,
                                    request.password)
            ok = bool(stored) and not user.disabled  # type: ignore[union-attr]
        except (VerifyMismatchError, VerificationError):
            ok = False
        if not ok or user is None:
            raise unauthenticated("auth.login_failed", "wrong username or password",
                                  "check both; an admin can reset a password with "
                                  "`modelport users passwd NAME`")
        kind = request.kind if request.kind in KINDS_FROM_ROLE else "login"
        ttl = request.ttl_s or (SESSION_TTL_S if kind == "session" else LOGIN_TTL_S)
        rec, token, _ = self._new_key(user.username, request.name or kind, [], kind, ttl)
        return auth_pb2.LoginResponse(token=token, principal=self._principal(rec),
                                      expires_at=rec.expires_at)

    @translate_errors
    async def Logout(self, request: auth_pb2.LogoutRequest,
                     context: grpc.aio.ServicerContext) -> auth_pb2.AuthEmpty:
        self.auth.revoke_key(request.key_id, self.clock())
        return auth_pb2.AuthEmpty()

    @translate_errors
    async def CreateKey(self, request: auth_pb2.CreateKeyRequest,
                        context: grpc.aio.ServicerContext) -> auth_pb2.CreatedKey:
        user = self._user_or_404(request.user)
        scopes = sorted(set(request.scopes))
        bad = [s for s in scopes if not SCOPE_RE.match(s)]
        if bad or not scopes:
            raise invalid("key.scope_invalid", f"unknown scope(s) {', '.join(bad) or '(none)'}",
                          "use admin, deploy, read, invoke:* or invoke:<service>")
        if "admin" in scopes and user.role != "admin":
            raise forbidden("key.scope_forbidden", f"{user.username} is a member and cannot "
                            "hold the admin scope", "ask an admin for admin rights")
        if request.ttl_s < 0 or request.rate_limit < 0:
            raise invalid("key.invalid", "ttl and rate limit must not be negative",
                          "leave them out for no expiry and no limit")
        rec, token, secret = self._new_key(user.username, request.name or "key", scopes, "key",
                                           request.ttl_s, request.rate_limit)
        return auth_pb2.CreatedKey(key=_key_proto(rec), token=token, access_key=rec.id,
                                   secret_key=secret)

    @translate_errors
    async def ListKeys(self, request: auth_pb2.ListKeysRequest,
                       context: grpc.aio.ServicerContext) -> auth_pb2.ListKeysResponse:
        keys = self.auth.list_keys(request.user, request.include_revoked)
        return auth_pb2.ListKeysResponse(keys=[_key_proto(k) for k in keys])

    @translate_errors
    async def RevokeKey(self, request: auth_pb2.RevokeKeyRequest,
                        context: grpc.aio.ServicerContext) -> auth_pb2.ApiKey:
        k = self.auth.get_key(request.id)
        if k is None or (request.user and k.user != request.user):
            raise not_found("key.not_found", f"no key {request.id!r}",
                            "list keys with `modelport keys list`")
        self.auth.revoke_key(k.id, self.clock())
        return _key_proto(self.auth.get_key(k.id) or k)

    def _user_or_404(self, username: str) -> UserRecord:
        user = self.auth.get_user(username)
        if user is None or user.disabled:
            raise not_found("user.not_found", f"no user {username!r}",
                            "list users with `modelport users list`")
        return user

    def _password(self, password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise invalid("user.password_short", f"the password has fewer than {MIN_PASSWORD} "
                          "characters", f"choose one of {MIN_PASSWORD} or more characters")
        return self.hasher.hash(password)

    @translate_errors
    async def CreateUser(self, request: auth_pb2.CreateUserRequest,
                         context: grpc.aio.ServicerContext) -> auth_pb2.User:
        if not USERNAME_RE.match(request.username):
            raise invalid("user.name_invalid", f"username {request.username!r} is not usable",
                          "use 2-32 lowercase letters, digits, '.', '_' or '-', starting "
                          "with a letter")
        role = request.role or "member"
        if role not in ROLES:
            raise invalid("user.role_invalid", f"unknown role {role!r}", "use admin or member")
        hashed = await asyncio.to_thread(self._password, request.password)
        if not self.auth.add_user(UserRecord(request.username, role, hashed, self.clock())):
            raise conflict("user.exists", f"user {request.username!r} exists",
                           "choose another name")
        return _user_proto(self._user_or_404(request.username))

    @translate_errors
    async def ListUsers(self, request: auth_pb2.ListUsersRequest,
                        context: grpc.aio.ServicerContext) -> auth_pb2.ListUsersResponse:
        return auth_pb2.ListUsersResponse(users=[_user_proto(u) for u in self.auth.list_users()])

    @translate_errors
    async def DeleteUser(self, request: auth_pb2.UserRequest,
                         context: grpc.aio.ServicerContext) -> auth_pb2.User:
        user = self._user_or_404(request.username)
        if user.role == "admin" and self.auth.count_admins() <= 1:
            raise conflict("user.last_admin", "the last admin cannot be removed",
                           "create another admin first")
        self.auth.update_user(user.username, disabled=1)
        self.auth.revoke_user_keys(user.username, self.clock())
        return _user_proto(self.auth.get_user(user.username) or user)

    @translate_errors
    async def SetPassword(self, request: auth_pb2.SetPasswordRequest,
                          context: grpc.aio.ServicerContext) -> auth_pb2.User:
        user = self._user_or_404(request.username)
        hashed = await asyncio.to_thread(self._password, request.password)
        self.auth.update_user(user.username, password_hash=hashed)
        now = self.clock()
        for k in self.auth.list_keys(user.username):  # other sessions end with the old password
            if k.kind in KINDS_FROM_ROLE:
                self.auth.revoke_key(k.id, now)
        return _user_proto(self._user_or_404(user.username))

    @translate_errors
    async def GetPolicy(self, request: auth_pb2.PolicyRequest,
                        context: grpc.aio.ServicerContext) -> auth_pb2.Policy:
        out = auth_pb2.Policy()
        if request.service:
            svc = self.store.get_service(request.service)
            if svc is not None:
                out.service_exists = True
                out.service_owner = self.auth.owner("service", svc.name) or ""
                out.auth_required = bool((svc.spec.get("auth") or {}).get("required"))
                limit = svc.spec.get("rate_limit") or {}
                out.rate_limit = float(limit.get("rps") or 0.0)
                out.burst = int(limit.get("burst") or 0)
        if request.model:
            out.model_exists = bool(self.store.list_versions(request.model))
            out.model_owner = self.auth.owner("model", request.model) or ""
        return out

    @translate_errors
    async def RecordAudit(self, request: auth_pb2.AuditEntry,
                          context: grpc.aio.ServicerContext) -> auth_pb2.AuthEmpty:
        self.auth.add_audit(AuditRecord(
            ts=request.ts or self.clock(), user=request.user, key_id=request.key_id,
            action=request.action[:300], target=request.target[:300], status=request.status,
            remote=request.remote[:100], detail=request.detail[:1000]))
        return auth_pb2.AuthEmpty()

    @translate_errors
    async def ListAudit(self, request: auth_pb2.ListAuditRequest,
                        context: grpc.aio.ServicerContext) -> auth_pb2.ListAuditResponse:
        rows = self.auth.list_audit(min(request.limit or 100, 1000), request.user,
                                    request.since, request.before_id)
        return auth_pb2.ListAuditResponse(entries=[auth_pb2.AuditEntry(
            id=a.id, ts=a.ts, user=a.user, key_id=a.key_id, action=a.action, target=a.target,
            status=a.status, remote=a.remote, detail=a.detail) for a in rows])


def _key_proto(k: KeyRecord) -> auth_pb2.ApiKey:
    return auth_pb2.ApiKey(id=k.id, user=k.user, name=k.name, scopes=k.scopes, kind=k.kind,
                           created_at=k.created_at, expires_at=k.expires_at,
                           last_used_at=k.last_used_at, revoked_at=k.revoked_at,
                           rate_limit=k.rate_limit)


def _user_proto(u: UserRecord) -> auth_pb2.User:
    return auth_pb2.User(username=u.username, role=u.role, created_at=u.created_at,
                         disabled=bool(u.disabled), has_password=bool(u.password_hash))


# ------------------------------------------------------------------- member isolation


def _caller(context: grpc.aio.ServicerContext) -> tuple[str, str] | None:
    meta = dict(context.invocation_metadata() or ())
    user = meta.get(USER_KEY)
    return (user, meta.get(ROLE_KEY, "member")) if user else None


class OwnershipInterceptor(grpc.aio.ServerInterceptor):
    """Records who created a service (and its model) and keeps members to what they own.

    Members get NOT_FOUND for others' services and models (they cannot tell them from
    missing ones) and see only their own in ListServices.
    """

    _PREFIX = "/modelport.v1.Registry/"

    def __init__(self, auth: AuthStore) -> None:
        self.auth = auth

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        if handler is None or not method.startswith(self._PREFIX):
            return handler
        name = method[len(self._PREFIX):]
        check = getattr(self, f"_{name}", None)
        if check is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            caller = _caller(context)
            try:
                return await check(caller, request, lambda: inner(request, context))
            except ModelportError as err:
                await abort(context, err)

        return grpc.unary_unary_rpc_method_handler(
            guarded, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)

    # helpers ---------------------------------------------------------------------------
    def _mine(self, kind: str, name: str, caller: tuple[str, str] | None) -> bool:
        if caller is None or caller[1] == "admin":
            return True
        return self.auth.owner(kind, name) == caller[0]

    def _require(self, kind: str, name: str, caller: tuple[str, str] | None) -> None:
        if not self._mine(kind, name, caller):
            raise not_found(f"{kind}.not_found", f"{kind} {name!r} not found",
                            "list yours with `modelport list`")

    def _model_free(self, model: str, caller: tuple[str, str] | None) -> None:
        """A member may use a model they own or one nobody owns yet (a new name)."""
        if caller is None or caller[1] == "admin" or not model:
            return
        owner = self.auth.owner("model", model)
        if owner is not None and owner != caller[0]:
            raise forbidden("model.not_yours", f"model {model!r} belongs to another user",
                            "choose another service name, or deploy your own package")

    # per RPC: (caller, request, call) -> response --------------------------------------
    async def _CreateService(self, caller: Any, request: registry_pb2.CreateServiceRequest,
                             call: Any) -> Any:
        self._model_free(request.spec.model or request.name, caller)
        svc = await call()
        if caller is not None:
            self.auth.set_owner("service", svc.name, caller[0])
            model = svc.spec.model or svc.name
            if self.auth.owner("model", model) is None:
                self.auth.set_owner("model", model, caller[0])
        return svc

    async def _UpdateService(self, caller: Any, request: registry_pb2.UpdateServiceRequest,
                             call: Any) -> Any:
        self._require("service", request.name, caller)
        if request.HasField("spec"):
            self._model_free(request.spec.model or request.name, caller)
        return await call()

    async def _GetService(self, caller: Any, request: Any, call: Any) -> Any:
        self._require("service", request.name, caller)
        return await call()

    async def _DeleteService(self, caller: Any, request: Any, call: Any) -> Any:
        self._require("service", request.name, caller)
        return await call()

    # start / stop / restart (services/registry/serving.py): the owner's, like delete
    _StartService = _StopService = _RestartService = _DeleteService

    async def _ListServices(self, caller: Any, request: Any, call: Any) -> Any:
        resp = await call()
        if caller is None or caller[1] == "admin":
            return resp
        mine = self.auth.owned("service", caller[0])
        return registry_pb2.ListServicesResponse(
            services=[s for s in resp.services if s.name in mine])

    async def _ListVersions(self, caller: Any, request: Any, call: Any) -> Any:
        self._require("model", request.model, caller)
        return await call()

    async def _GetVersion(self, caller: Any, request: Any, call: Any) -> Any:
        self._require("model", request.model, caller)
        return await call()

    async def _GetBuildLog(self, caller: Any, request: Any, call: Any) -> Any:
        self._require("model", request.model, caller)
        return await call()

    async def _ListEvents(self, caller: Any, request: Any, call: Any) -> Any:
        if request.service:
            self._require("service", request.service, caller)
        else:
            self._require("model", request.model, caller)
        return await call()


def identity_metadata(user: str, role: str) -> tuple[tuple[str, str], ...]:
    return ((USER_KEY, user), (ROLE_KEY, role))


__all__ = ["AuthServicer", "OwnershipInterceptor", "ReplayCache", "identity_metadata",
           "load_signing_key", "role_scopes"]
