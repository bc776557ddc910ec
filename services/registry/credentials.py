"""Credentials: issuing API keys and sessions, and checking tokens and AK/SK signatures.

The registry is the only component that sees a credential's stored form:

- a token is ``mp_<id>.<secret>``; the database keeps the SHA-256 of the secret, compared
  in constant time, never the secret;
- an AK/SK pair is ``<id>`` / ``<secret>``; the secret is HMAC-SHA256(signing key, salt),
  so the registry can check a signature by re-deriving it, while the database alone
  (without ``<home>/auth.key``, mode 0600) reveals nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path

from modelport import signing
from modelport.errors import ModelportError, invalid, unauthenticated
from modelport.v1 import auth_pb2
from services.registry.store.accounts import AuthStore, KeyRecord

TOKEN_RE = re.compile(r"^mp_([0-9a-f]{16})\.([A-Za-z0-9_-]{20,128})$")
#: key kinds whose scopes follow the user's role instead of being stored with the key
KINDS_FROM_ROLE = ("login", "session")
#: last_used_at is written at most this often per key
TOUCH_EVERY_S = 30.0


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
    """Signatures seen inside their date window; a second use is a replay.

    Kept in the registry's database, not in memory, so a registry restarted inside a
    signature's 15-minute window still refuses its replay (an attacker who captured a
    signed request cannot wait for a restart). One statement per check: the insert wins
    only for a signature never seen or seen with an expired window.
    """

    SCHEMA = ("CREATE TABLE IF NOT EXISTS seen_signatures (signature TEXT PRIMARY KEY, "
              "expires_at REAL NOT NULL)")
    #: checks between sweeps of expired rows
    SWEEP_EVERY = 1000

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.execute(self.SCHEMA)
        self._checks = 0

    def first_use(self, sig: str, expires_at: float, now: float) -> bool:
        self._checks += 1
        if self._checks % self.SWEEP_EVERY == 0:
            self.db.execute("DELETE FROM seen_signatures WHERE expires_at <= ?", (now,))
        cur = self.db.execute(
            "INSERT INTO seen_signatures (signature, expires_at) VALUES (?, ?) "
            "ON CONFLICT(signature) DO UPDATE SET expires_at = excluded.expires_at "
            "WHERE seen_signatures.expires_at <= ?", (sig, max(expires_at, now + 1.0), now))
        return cur.rowcount > 0


class Credentials:
    """Makes keys and turns a presented token or signed request into a principal."""

    def __init__(self, auth: AuthStore, signing_key: bytes, clock: Callable[[], float]) -> None:
        self.auth = auth
        self.signing_key = signing_key
        self.clock = clock
        self.replays = ReplayCache(auth.db)

    def _derive(self, salt: str) -> str:
        raw = hmac.new(self.signing_key, bytes.fromhex(salt), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def issue(self, user: str, name: str, scopes: list[str], kind: str, ttl_s: float,
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

    def principal(self, k: KeyRecord) -> auth_pb2.Principal:
        """Who holds key ``k`` and what they may do; refused when revoked, expired or the
        user is gone."""
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

    def check_token(self, token: str) -> auth_pb2.Principal:
        m = TOKEN_RE.match(token.strip())
        k = self.auth.get_key(m.group(1)) if m else None
        presented = _sha256(m.group(2)) if m else _sha256(token)
        stored = k.secret_hash if k is not None else _sha256("no such key")
        if not hmac.compare_digest(presented, stored) or k is None:
            raise _bad_credential()
        return self.principal(k)

    def check_signature(self, s: auth_pb2.SignedRequest) -> auth_pb2.Principal:
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
        principal = self.principal(k)
        if not self.replays.first_use(s.signature.lower(), s.expires_at, self.clock()):
            raise unauthenticated("auth.replayed", "this signed request was already used",
                                  "sign every request afresh (a new X-Sdk-Date)")
        return principal
