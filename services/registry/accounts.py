"""Who may do what: users, API keys, sessions and the audit log (modelport.v1.Auth).

Credentials themselves (tokens, AK/SK signatures, the signing key) are credentials.py's;
passwords are argon2id hashes (argon2-cffi). The policy the gateway applies to a call (a
service's owner, whether it needs a key, its rate limit) is read here too.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable

import grpc

from modelport.errors import conflict, forbidden, invalid, not_found, unauthenticated
from modelport.v1 import auth_pb2, auth_pb2_grpc
from services.registry.credentials import KINDS_FROM_ROLE, Credentials
from services.registry.store.accounts import AuditRecord, AuthStore, KeyRecord, UserRecord
from services.registry.store.base import Store
from services.rpc.errors import translate_errors

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
SCOPE_RE = re.compile(r"^(admin|deploy|read|invoke:\*|invoke:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$")
ROLES = ("admin", "member")
MIN_PASSWORD = 8
SESSION_TTL_S = 12 * 3600.0
LOGIN_TTL_S = 30 * 86400.0


class AuthServicer(auth_pb2_grpc.AuthServicer):
    def __init__(self, auth: AuthStore, store: Store, signing_key: bytes,
                 clock: Callable[[], float] = time.time) -> None:
        from argon2 import PasswordHasher

        self.auth = auth
        self.store = store
        self.clock = clock
        self.credentials = Credentials(auth, signing_key, clock)
        self.hasher = PasswordHasher()
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    # RPCs -----------------------------------------------------------------------------
    @translate_errors
    async def Bootstrap(self, request: auth_pb2.BootstrapRequest,
                        context: grpc.aio.ServicerContext) -> auth_pb2.BootstrapResponse:
        if self.auth.count_admins() or self.auth.get_user("admin") is not None:
            return auth_pb2.BootstrapResponse(created=False)
        self.auth.add_user(UserRecord("admin", "admin", created_at=self.clock()))
        _, token, _ = self.credentials.issue("admin", "bootstrap (modelport up)", ["admin"],
                                             "bootstrap", 0.0, token=request.token)
        return auth_pb2.BootstrapResponse(created=True, token=token)

    @translate_errors
    async def Authenticate(self, request: auth_pb2.AuthenticateRequest,
                           context: grpc.aio.ServicerContext) -> auth_pb2.Principal:
        if request.HasField("signed"):
            return self.credentials.check_signature(request.signed)
        return self.credentials.check_token(request.token)

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
        rec, token, _ = self.credentials.issue(user.username, request.name or kind, [], kind, ttl)
        return auth_pb2.LoginResponse(token=token, principal=self.credentials.principal(rec),
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
        rec, token, secret = self.credentials.issue(user.username, request.name or "key",
                                                    scopes, "key", request.ttl_s,
                                                    request.rate_limit)
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
                out.auth_required = svc.spec.auth.required
                out.rate_limit = svc.spec.rate_limit.rps
                out.burst = svc.spec.rate_limit.burst
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
