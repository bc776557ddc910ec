"""Who is calling: the credentials a request carried, the principal they resolve to, and
the context variables that carry both through one request (REST, gRPC, internal calls)."""


from __future__ import annotations

import contextvars
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from modelport import signing
from modelport.v1 import auth_pb2

log = logging.getLogger(__name__)


SESSION_COOKIE = "modelport_session"
CSRF_COOKIE = "modelport_csrf"
CSRF_HEADER = "x-csrf-token"
#: methods that change state (the session cookie needs the CSRF header on these)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


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



def principal_json(p: Principal) -> dict[str, Any]:
    return {"user": p.user, "role": p.role, "key_id": p.key_id, "kind": p.kind,
            "scopes": list(p.scopes), "rate_limit": p.rate_limit}


def describe_principal(p: Principal) -> str:
    return f"user {p.user}, scopes {', '.join(p.scopes) or 'none'}"
