"""Users, API keys (hashes only), service and model ownership, and the audit log in SQLite.

It shares the registry's connection (one writer, WAL) and so its database file. Nothing
here can authenticate anyone by itself: a key row holds the SHA-256 of its secret and a
salt from which only the registry's signing key (a file outside the database) derives
the secret for AK/SK signatures. See services/registry/credentials.py.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  username TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY, user TEXT NOT NULL, name TEXT NOT NULL, scopes_json TEXT NOT NULL,
  kind TEXT NOT NULL, secret_hash TEXT NOT NULL, salt TEXT NOT NULL,
  created_at REAL NOT NULL, expires_at REAL NOT NULL DEFAULT 0,
  last_used_at REAL NOT NULL DEFAULT 0, revoked_at REAL NOT NULL DEFAULT 0,
  rate_limit REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user);
CREATE TABLE IF NOT EXISTS owners (
  kind TEXT NOT NULL, name TEXT NOT NULL, owner TEXT NOT NULL, PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, user TEXT NOT NULL,
  key_id TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, status INTEGER NOT NULL,
  remote TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts);
"""


@dataclass
class UserRecord:
    username: str
    role: str  # admin | member
    password_hash: str = ""
    created_at: float = 0.0
    disabled: int = 0


@dataclass
class KeyRecord:
    id: str
    user: str
    name: str
    scopes: list[str]
    kind: str  # key | login | session | bootstrap
    secret_hash: str
    salt: str
    created_at: float = 0.0
    expires_at: float = 0.0
    last_used_at: float = 0.0
    revoked_at: float = 0.0
    rate_limit: float = 0.0

    def active(self, now: float) -> bool:
        return not self.revoked_at and (not self.expires_at or self.expires_at > now)


@dataclass
class AuditRecord:
    ts: float
    user: str
    key_id: str
    action: str
    target: str
    status: int
    remote: str
    detail: str = ""
    id: int = 0


class AuthStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)

    # users ----------------------------------------------------------------------------
    def add_user(self, u: UserRecord) -> bool:
        """False when the name is taken."""
        try:
            self.db.execute("INSERT INTO users (username, role, password_hash, created_at,"
                            " disabled) VALUES (?,?,?,?,0)",
                            (u.username, u.role, u.password_hash, u.created_at or time.time()))
        except sqlite3.IntegrityError:
            return False
        return True

    def get_user(self, username: str) -> UserRecord | None:
        row = self.db.execute("SELECT * FROM users WHERE username=?", (username,)).fetchone()
        return UserRecord(**dict(row)) if row else None

    def list_users(self) -> list[UserRecord]:
        return [UserRecord(**dict(r)) for r in
                self.db.execute("SELECT * FROM users ORDER BY username")]

    def count_admins(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM users WHERE role='admin' AND disabled=0"
                               ).fetchone()[0]

    def update_user(self, username: str, **values: Any) -> None:
        sets = ",".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE users SET {sets} WHERE username=?", [*values.values(), username])

    # keys -----------------------------------------------------------------------------
    def add_key(self, k: KeyRecord) -> None:
        self.db.execute(
            "INSERT INTO api_keys (id, user, name, scopes_json, kind, secret_hash, salt,"
            " created_at, expires_at, rate_limit) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (k.id, k.user, k.name, json.dumps(k.scopes), k.kind, k.secret_hash, k.salt,
             k.created_at or time.time(), k.expires_at, k.rate_limit))

    @staticmethod
    def _key(row: sqlite3.Row) -> KeyRecord:
        d = dict(row)
        d["scopes"] = json.loads(d.pop("scopes_json"))
        return KeyRecord(**d)

    def get_key(self, key_id: str) -> KeyRecord | None:
        row = self.db.execute("SELECT * FROM api_keys WHERE id=?", (key_id,)).fetchone()
        return self._key(row) if row else None

    def list_keys(self, user: str = "", include_revoked: bool = False) -> list[KeyRecord]:
        sql, args = "SELECT * FROM api_keys WHERE 1=1", []
        if user:
            sql, args = sql + " AND user=?", [user]
        if not include_revoked:
            sql += " AND revoked_at=0"
        return [self._key(r) for r in self.db.execute(sql + " ORDER BY created_at", args)]

    def touch_key(self, key_id: str, now: float) -> None:
        self.db.execute("UPDATE api_keys SET last_used_at=? WHERE id=?", (now, key_id))

    def revoke_key(self, key_id: str, now: float) -> None:
        self.db.execute("UPDATE api_keys SET revoked_at=? WHERE id=? AND revoked_at=0",
                        (now, key_id))

    def revoke_user_keys(self, user: str, now: float) -> None:
        self.db.execute("UPDATE api_keys SET revoked_at=? WHERE user=? AND revoked_at=0",
                        (now, user))

    def prune_keys(self, before: float) -> int:
        """Drop expired sessions/login tokens long past their end (keys stay listed)."""
        return self.db.execute(
            "DELETE FROM api_keys WHERE kind IN ('session','login') AND ((expires_at>0 AND "
            "expires_at<?) OR (revoked_at>0 AND revoked_at<?))", (before, before)).rowcount

    # ownership ------------------------------------------------------------------------
    def owner(self, kind: str, name: str) -> str | None:
        row = self.db.execute("SELECT owner FROM owners WHERE kind=? AND name=?",
                              (kind, name)).fetchone()
        return row[0] if row else None

    def set_owner(self, kind: str, name: str, owner: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO owners (kind, name, owner) VALUES (?,?,?)",
                        (kind, name, owner))

    def owned(self, kind: str, owner: str) -> set[str]:
        return {r[0] for r in self.db.execute(
            "SELECT name FROM owners WHERE kind=? AND owner=?", (kind, owner))}

    # audit ----------------------------------------------------------------------------
    def add_audit(self, a: AuditRecord) -> None:
        self.db.execute(
            "INSERT INTO audit (ts, user, key_id, action, target, status, remote, detail)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (a.ts, a.user, a.key_id, a.action, a.target, a.status, a.remote, a.detail))

    def list_audit(self, limit: int = 100, user: str = "", since: float = 0.0,
                   before_id: int = 0) -> list[AuditRecord]:
        """Newest first."""
        sql, args = "SELECT * FROM audit WHERE ts>=?", [since]
        if user:
            sql, args = sql + " AND user=?", [*args, user]
        if before_id:
            sql, args = sql + " AND id<?", [*args, before_id]
        rows = self.db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit])
        return [AuditRecord(**dict(r)) for r in rows]
