"""Async tasks in SQLite: the queue, the leases of running tasks, results until they expire.

Payloads are opaque bytes here (the serialised PredictRequest and Output), so the store
knows nothing of protobuf. Every state change is one UPDATE guarded by the state it
expects, so two gateways claiming at once, or a cancel racing a finish, cannot both win.
It shares the registry's connection (one writer, WAL) and so its database file.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields
from typing import Protocol

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY, service TEXT NOT NULL, state TEXT NOT NULL,
  created_at REAL NOT NULL, started_at REAL NOT NULL DEFAULT 0,
  finished_at REAL NOT NULL DEFAULT 0, request_id TEXT NOT NULL,
  request BLOB NOT NULL, request_digest TEXT NOT NULL,
  idempotency_key TEXT NOT NULL DEFAULT '', webhook TEXT NOT NULL DEFAULT '',
  webhook_state TEXT NOT NULL DEFAULT '', webhook_attempts INTEGER NOT NULL DEFAULT 0,
  notify_until REAL NOT NULL DEFAULT 0,
  runner TEXT NOT NULL DEFAULT '', lease_until REAL NOT NULL DEFAULT 0,
  not_before REAL NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 0, duration_ms REAL NOT NULL DEFAULT 0,
  output_kind TEXT NOT NULL DEFAULT '', output BLOB, error_json TEXT NOT NULL DEFAULT '',
  expires_at REAL NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX IF NOT EXISTS tasks_idempotency ON tasks (service, idempotency_key)
  WHERE idempotency_key != '';
CREATE INDEX IF NOT EXISTS tasks_by_service ON tasks (service);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state, not_before);
"""

TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class TaskRecord:
    id: str
    service: str
    state: str  # queued | running | succeeded | failed | cancelled
    created_at: float
    request_id: str
    request: bytes = b""  # left out of listings
    request_digest: str = ""
    idempotency_key: str = ""
    webhook: str = ""
    webhook_state: str = ""  # "" | pending | delivered | failed
    webhook_attempts: int = 0
    notify_until: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    runner: str = ""
    lease_until: float = 0.0
    not_before: float = 0.0
    attempts: int = 0
    cancel_requested: int = 0
    version: int = 0
    duration_ms: float = 0.0
    output_kind: str = ""  # "" | json | data
    output: bytes | None = None
    error_json: str = ""
    expires_at: float = 0.0
    seq: int = 0  # rowid: insertion order, for paging


_COLUMNS = [f.name for f in fields(TaskRecord) if f.name != "seq"]
_LIGHT = ",".join(["rowid AS seq", *(c for c in _COLUMNS if c not in ("request", "output"))])


class TaskStore(Protocol):
    def add_task(self, t: TaskRecord) -> TaskRecord: ...
    def get_task(self, task_id: str, payloads: bool = False) -> TaskRecord | None: ...
    def find_by_key(self, service: str, key: str) -> TaskRecord | None: ...
    def list_tasks(self, service: str, limit: int, before: int = 0,
                   state: str = "") -> list[TaskRecord]: ...
    def claim(self, runner: str, limit: int, now: float, lease_s: float) -> list[TaskRecord]: ...
    def claim_notifications(self, runner: str, limit: int, now: float,
                            lease_s: float) -> list[TaskRecord]: ...
    def renew(self, runner: str, ids: list[str], until: float) -> None: ...
    def cancelled_of(self, ids: list[str]) -> list[str]: ...
    def cancel(self, task_id: str, now: float, expires_at: float,
               error_json: str) -> TaskRecord | None: ...
    def finish(self, task_id: str, runner: str, **values: object) -> bool: ...
    def requeue(self, task_id: str, runner: str, not_before: float) -> bool: ...
    def set_webhook(self, task_id: str, state: str, attempts: int) -> None: ...
    def lost(self, now: float) -> list[TaskRecord]: ...
    def next_due(self) -> float | None: ...
    def purge_expired(self, now: float) -> int: ...


class SqliteTaskStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)

    def _record(self, row: sqlite3.Row | None) -> TaskRecord | None:
        return TaskRecord(**dict(row)) if row is not None else None

    def add_task(self, t: TaskRecord) -> TaskRecord:
        """Insert; raises sqlite3.IntegrityError when (service, idempotency_key) is taken."""
        values = [getattr(t, c) for c in _COLUMNS]
        cur = self.db.execute(f"INSERT INTO tasks ({','.join(_COLUMNS)}) VALUES "
                              f"({','.join('?' * len(_COLUMNS))})", values)
        t.seq = cur.lastrowid or 0
        return t

    def get_task(self, task_id: str, payloads: bool = False) -> TaskRecord | None:
        cols = "rowid AS seq, *" if payloads else _LIGHT
        return self._record(self.db.execute(f"SELECT {cols} FROM tasks WHERE id=?",
                                            (task_id,)).fetchone())

    def find_by_key(self, service: str, key: str) -> TaskRecord | None:
        return self._record(self.db.execute(
            f"SELECT {_LIGHT} FROM tasks WHERE service=? AND idempotency_key=?",
            (service, key)).fetchone())

    def list_tasks(self, service: str, limit: int, before: int = 0,
                   state: str = "") -> list[TaskRecord]:
        """Newest first; ``before`` is the seq of the last task of the previous page."""
        sql = f"SELECT {_LIGHT} FROM tasks WHERE service=?"
        args: list[object] = [service]
        if before:
            sql += " AND rowid < ?"
            args.append(before)
        if state:
            sql += " AND state=?"
            args.append(state)
        rows = self.db.execute(sql + " ORDER BY rowid DESC LIMIT ?", [*args, limit])
        return [TaskRecord(**dict(r)) for r in rows]

    def claim(self, runner: str, limit: int, now: float, lease_s: float) -> list[TaskRecord]:
        """Oldest due queued tasks, now running under ``runner``'s lease (with payloads)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            ids = [r[0] for r in self.db.execute(
                "SELECT id FROM tasks WHERE state='queued' AND not_before<=? "
                "ORDER BY rowid LIMIT ?", (now, limit))]
            for task_id in ids:
                self.db.execute(
                    "UPDATE tasks SET state='running', runner=?, lease_until=?, "
                    "started_at=?, attempts=attempts+1 WHERE id=?",
                    (runner, now + lease_s, now, task_id))
        return [t for t in (self.get_task(i, payloads=True) for i in ids) if t is not None]

    def claim_notifications(self, runner: str, limit: int, now: float,
                            lease_s: float) -> list[TaskRecord]:
        """Finished tasks whose webhook is pending and not being delivered by anyone."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            ids = [r[0] for r in self.db.execute(
                "SELECT id FROM tasks WHERE webhook_state='pending' AND notify_until<? "
                "ORDER BY rowid LIMIT ?", (now, limit))]
            for task_id in ids:
                self.db.execute("UPDATE tasks SET notify_until=? WHERE id=?",
                                (now + lease_s, task_id))
        return [t for t in (self.get_task(i, payloads=True) for i in ids) if t is not None]

    def renew(self, runner: str, ids: list[str], until: float) -> None:
        self.db.executemany("UPDATE tasks SET lease_until=? WHERE id=? AND runner=? AND "
                            "state='running'", [(until, i, runner) for i in ids])

    def cancelled_of(self, ids: list[str]) -> list[str]:
        """Which of these (running somewhere) tasks were cancelled since they started."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return [r[0] for r in self.db.execute(
            f"SELECT id FROM tasks WHERE id IN ({marks}) AND state='cancelled'", ids)]

    def cancel(self, task_id: str, now: float, expires_at: float,
               error_json: str) -> TaskRecord | None:
        """queued/running -> cancelled; returns the task as it is afterwards."""
        self.db.execute(
            "UPDATE tasks SET state='cancelled', finished_at=?, expires_at=?, error_json=?, "
            "cancel_requested=1, webhook_state=CASE WHEN webhook!='' THEN 'pending' ELSE '' END"
            " WHERE id=? AND state IN ('queued','running')",
            (now, expires_at, error_json, task_id))
        return self.get_task(task_id)

    def finish(self, task_id: str, runner: str, **values: object) -> bool:
        """running (under ``runner``) -> a terminal state; False when it was not (cancelled)."""
        sets = ",".join(f"{k}=?" for k in values)
        cur = self.db.execute(
            f"UPDATE tasks SET {sets}, webhook_state=CASE WHEN webhook!='' THEN 'pending' "
            "ELSE '' END WHERE id=? AND runner=? AND state='running'",
            [*values.values(), task_id, runner])
        return cur.rowcount > 0

    def requeue(self, task_id: str, runner: str, not_before: float) -> bool:
        cur = self.db.execute(
            "UPDATE tasks SET state='queued', runner='', lease_until=0, started_at=0, "
            "not_before=? WHERE id=? AND runner=? AND state='running'",
            (not_before, task_id, runner))
        return cur.rowcount > 0

    def set_webhook(self, task_id: str, state: str, attempts: int) -> None:
        self.db.execute("UPDATE tasks SET webhook_state=?, webhook_attempts=?, notify_until=0 "
                        "WHERE id=?", (state, attempts, task_id))

    def lost(self, now: float) -> list[TaskRecord]:
        """Running tasks whose runner stopped renewing their lease."""
        rows = self.db.execute(f"SELECT {_LIGHT} FROM tasks WHERE state='running' AND "
                               "lease_until<?", (now,))
        return [TaskRecord(**dict(r)) for r in rows]

    def next_due(self) -> float | None:
        """When the earliest delayed queued task becomes claimable."""
        row = self.db.execute("SELECT MIN(not_before) FROM tasks WHERE state='queued'").fetchone()
        return row[0] if row and row[0] is not None else None

    def purge_expired(self, now: float) -> int:
        return self.db.execute("DELETE FROM tasks WHERE expires_at>0 AND expires_at<?",
                               (now,)).rowcount

