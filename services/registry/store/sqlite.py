"""SQLite (WAL) implementation of the Store; one connection, used from the event loop thread."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from modelport.errors import conflict
from services.registry.service_spec import ServiceSpec
from services.registry.store.base import EventRecord, ServiceRecord, VersionRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
  model TEXT NOT NULL, number INTEGER NOT NULL, digest TEXT NOT NULL, kind TEXT NOT NULL,
  config_json TEXT NOT NULL, interface_json TEXT NOT NULL, requirements TEXT NOT NULL,
  python TEXT NOT NULL, package_dir TEXT NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL,
  build_id TEXT NOT NULL, artifact TEXT NOT NULL, created_at REAL NOT NULL,
  PRIMARY KEY (model, number));
CREATE TABLE IF NOT EXISTS services (
  name TEXT PRIMARY KEY, spec_json TEXT NOT NULL, status_json TEXT NOT NULL,
  generation INTEGER NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, service TEXT NOT NULL,
  model TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL,
  message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_service ON events (service, id);
CREATE INDEX IF NOT EXISTS events_model ON events (model, version, id);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS gitops_sources (id TEXT PRIMARY KEY, data_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gitops_services (
  service TEXT PRIMARY KEY, source TEXT NOT NULL, data_json TEXT NOT NULL);
"""

_VERSION_COLUMNS = [f.name for f in fields(VersionRecord)]


class SqliteStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)
        self._depth = 0  # open transaction() blocks

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The block's writes as one SQLite transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK
        when it raises); a block inside another joins the outer one, so the outermost block
        decides. A process killed inside the block leaves nothing of it (the WAL holds no
        commit record for it). Only the event loop's thread uses the connection, and a
        block never awaits, so no other request's writes land in between."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
            self._depth = 0
            self.db.execute("COMMIT")
        except BaseException:
            self._depth = 0
            if self.db.in_transaction:  # also when COMMIT itself failed (a full disk)
                self.db.execute("ROLLBACK")
            raise

    # versions -------------------------------------------------------------------------
    def add_version(self, v: VersionRecord) -> VersionRecord:
        """Insert with the next free number (v.number is ignored) in one transaction."""
        with self.transaction():
            row = self.db.execute("SELECT MAX(number) FROM versions WHERE model=?",
                                  (v.model,)).fetchone()
            v.number = (row[0] or 0) + 1
            v.created_at = v.created_at or time.time()
            cols = ",".join(_VERSION_COLUMNS)
            marks = ",".join("?" * len(_VERSION_COLUMNS))
            self.db.execute(f"INSERT INTO versions ({cols}) VALUES ({marks})",
                            [getattr(v, c) for c in _VERSION_COLUMNS])
        return v

    def find_version_by_digest(self, model: str, digest: str) -> VersionRecord | None:
        row = self.db.execute(
            "SELECT * FROM versions WHERE model=? AND digest=? ORDER BY number DESC LIMIT 1",
            (model, digest)).fetchone()
        return VersionRecord(**dict(row)) if row else None

    def get_version(self, model: str, number: int) -> VersionRecord | None:
        row = self.db.execute("SELECT * FROM versions WHERE model=? AND number=?",
                              (model, number)).fetchone()
        return VersionRecord(**dict(row)) if row else None

    def list_versions(self, model: str) -> list[VersionRecord]:
        rows = self.db.execute("SELECT * FROM versions WHERE model=? ORDER BY number", (model,))
        return [VersionRecord(**dict(r)) for r in rows]

    def update_version(self, model: str, number: int, **values: Any) -> None:
        unknown = set(values) - set(_VERSION_COLUMNS)
        if unknown:
            raise ValueError(f"unknown version fields {unknown}")
        sets = ",".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE versions SET {sets} WHERE model=? AND number=?",
                        [*values.values(), model, number])

    # services -------------------------------------------------------------------------
    def add_service(self, s: ServiceRecord) -> None:
        now = time.time()
        try:
            self.db.execute(
                "INSERT INTO services (name, spec_json, status_json, generation, created_at,"
                " updated_at) VALUES (?,?,?,?,?,?)",
                (s.name, json.dumps(s.spec.to_json()), json.dumps(s.status), s.generation, now,
                 now))
        except sqlite3.IntegrityError:
            raise conflict("service.exists", f"a service named {s.name!r} already exists",
                           "choose another --name, or `modelport update` the existing one"
                           ) from None
        s.created_at = s.updated_at = now

    def _service(self, row: sqlite3.Row) -> ServiceRecord:
        """A stored row; its spec is parsed here, where it leaves the database."""
        spec = ServiceSpec.load(json.loads(row["spec_json"]), f"service {row['name']!r}")
        return ServiceRecord(name=row["name"], spec=spec,
                             status=json.loads(row["status_json"]), generation=row["generation"],
                             created_at=row["created_at"], updated_at=row["updated_at"])

    def get_service(self, name: str) -> ServiceRecord | None:
        row = self.db.execute("SELECT * FROM services WHERE name=?", (name,)).fetchone()
        return self._service(row) if row else None

    def list_services(self) -> list[ServiceRecord]:
        return [self._service(r) for r in self.db.execute("SELECT * FROM services ORDER BY name")]

    def update_spec(self, name: str, spec: ServiceSpec) -> ServiceRecord:
        self.db.execute("UPDATE services SET spec_json=?, generation=generation+1, updated_at=?"
                        " WHERE name=?", (json.dumps(spec.to_json()), time.time(), name))
        rec = self.get_service(name)
        assert rec is not None
        return rec

    def update_status(self, name: str, status: dict[str, Any]) -> None:
        self.db.execute("UPDATE services SET status_json=?, updated_at=? WHERE name=?",
                        (json.dumps(status), time.time(), name))

    def delete_service(self, name: str) -> bool:
        return self.db.execute("DELETE FROM services WHERE name=?", (name,)).rowcount > 0

    # events ---------------------------------------------------------------------------
    def add_event(self, e: EventRecord) -> None:
        d = asdict(e)
        d.pop("id")
        self.db.execute(f"INSERT INTO events ({','.join(d)}) VALUES ({','.join('?' * len(d))})",
                        list(d.values()))

    def list_events(self, service: str, limit: int = 100,
                    version: int = 0) -> list[EventRecord]:
        """The newest ``limit`` events of a service (of one version when given), oldest
        first."""
        where, args = "service=?", [service]
        if version:
            where, args = where + " AND version=?", [*args, version]
        rows = self.db.execute(f"SELECT * FROM events WHERE {where} ORDER BY id DESC LIMIT ?",
                               (*args, limit)).fetchall()
        return [EventRecord(**dict(r)) for r in reversed(rows)]

    def list_model_events(self, model: str, version: int = 0,
                          limit: int = 100) -> list[EventRecord]:
        """A model's (version's) events, whichever service recorded them, oldest first."""
        where, args = "model=?", [model]
        if version:
            where, args = where + " AND version=?", [*args, version]
        rows = self.db.execute(f"SELECT * FROM events WHERE {where} ORDER BY id DESC LIMIT ?",
                               (*args, limit)).fetchall()
        return [EventRecord(**dict(r)) for r in reversed(rows)]

    def prune_events(self, before: float) -> int:
        """Delete events older than ``before`` (unix time); returns how many went."""
        return self.db.execute("DELETE FROM events WHERE ts < ?", (before,)).rowcount

    # gitops ---------------------------------------------------------------------------
    def put_gitops_source(self, source: dict[str, Any]) -> None:
        self.db.execute("INSERT OR REPLACE INTO gitops_sources (id, data_json) VALUES (?,?)",
                        (source["id"], json.dumps(source)))

    def list_gitops_sources(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT data_json FROM gitops_sources ORDER BY id")
        return [json.loads(r[0]) for r in rows]

    def replace_gitops_services(self, source: str, rows: list[dict[str, Any]]) -> None:
        """One transaction: a source's statuses are replaced whole, never half-written."""
        with self.transaction():
            self.db.execute("DELETE FROM gitops_services WHERE source=?", (source,))
            self.db.executemany(
                "INSERT OR REPLACE INTO gitops_services (service, source, data_json)"
                " VALUES (?,?,?)", [(r["service"], source, json.dumps(r)) for r in rows])

    def list_gitops_services(self, source: str = "") -> list[dict[str, Any]]:
        sql, args = "SELECT data_json FROM gitops_services", ()
        if source:
            sql, args = sql + " WHERE source=?", (source,)
        return [json.loads(r[0]) for r in self.db.execute(sql + " ORDER BY service", args)]

    def close(self) -> None:
        self.db.close()
