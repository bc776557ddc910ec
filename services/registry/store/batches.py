"""Batch jobs in SQLite: one row per job, one per item, each item's result beside it.

An item is a row from the job's creation on, so the final manifest has every item exactly
once by construction: a rerun item overwrites its own row. Items are claimed under a
lease like async tasks, but with the opposite rule when a runner dies: a batch item is
run again (ModelArts batch semantics; an item is one input, reprocessing it is harmless
and expected), up to ``MAX_ATTEMPTS`` times. Every change is one statement guarded by
the state it expects, on the registry's shared connection (one writer, WAL).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields

SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_jobs (
  id TEXT PRIMARY KEY, service TEXT NOT NULL, state TEXT NOT NULL,
  total INTEGER NOT NULL, concurrency INTEGER NOT NULL, input_kind TEXT NOT NULL,
  archive TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL, started_at REAL NOT NULL DEFAULT 0,
  finished_at REAL NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS batch_items (
  batch TEXT NOT NULL, idx INTEGER NOT NULL, source TEXT NOT NULL,
  inputs_json TEXT NOT NULL, files_json TEXT NOT NULL DEFAULT '{}',
  state TEXT NOT NULL DEFAULT 'queued', runner TEXT NOT NULL DEFAULT '',
  lease_until REAL NOT NULL DEFAULT 0, not_before REAL NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0, retried INTEGER NOT NULL DEFAULT 0,
  finished_at REAL NOT NULL DEFAULT 0,
  output_kind TEXT NOT NULL DEFAULT '', output BLOB, error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (batch, idx));
CREATE INDEX IF NOT EXISTS batch_items_by_state ON batch_items (state, batch);
"""

#: a job's states; an item's are queued | running | succeeded | failed | cancelled
JOB_TERMINAL = ("succeeded", "failed", "cancelled")
#: runs of one item whose runner died before it was recorded, before it fails for good
MAX_ATTEMPTS = 3


@dataclass
class BatchRecord:
    id: str
    service: str
    state: str
    total: int
    concurrency: int
    input_kind: str
    archive: str  # path of the uploaded input archive
    created_at: float
    owner: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    error: str = ""


@dataclass
class ItemRecord:
    batch: str
    idx: int
    source: str
    inputs_json: str
    files_json: str = "{}"
    state: str = "queued"
    runner: str = ""
    lease_until: float = 0.0
    not_before: float = 0.0
    attempts: int = 0
    retried: int = 0
    finished_at: float = 0.0
    output_kind: str = ""  # "" | json | data
    output: bytes | None = None
    error: str = ""


@dataclass
class Counts:
    total: int = 0
    done: int = 0
    failed: int = 0
    running: int = 0
    retried: int = 0


_JOB_COLUMNS = [f.name for f in fields(BatchRecord)]
_ITEM_COLUMNS = [f.name for f in fields(ItemRecord)]


class SqliteBatchStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)

    def add(self, job: BatchRecord, items: list[ItemRecord]) -> None:
        """The job and all its items, in one transaction: a job is whole or absent."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                f"INSERT INTO batch_jobs ({','.join(_JOB_COLUMNS)}) VALUES "
                f"({','.join('?' * len(_JOB_COLUMNS))})",
                [getattr(job, c) for c in _JOB_COLUMNS])
            self.db.executemany(
                "INSERT INTO batch_items (batch, idx, source, inputs_json, files_json) "
                "VALUES (?,?,?,?,?)",
                [(job.id, i.idx, i.source, i.inputs_json, i.files_json) for i in items])

    def get(self, batch_id: str) -> BatchRecord | None:
        row = self.db.execute(f"SELECT {','.join(_JOB_COLUMNS)} FROM batch_jobs WHERE id=?",
                              (batch_id,)).fetchone()
        return BatchRecord(**dict(row)) if row is not None else None

    def list(self, service: str = "", owner: str = "", limit: int = 50) -> list[BatchRecord]:
        sql = f"SELECT {','.join(_JOB_COLUMNS)} FROM batch_jobs WHERE 1=1"
        args: list[object] = []
        for column, value in (("service", service), ("owner", owner)):
            if value:
                sql += f" AND {column}=?"
                args.append(value)
        rows = self.db.execute(sql + " ORDER BY created_at DESC LIMIT ?", [*args, limit])
        return [BatchRecord(**dict(r)) for r in rows]

    def counts(self, batch_id: str) -> Counts:
        row = self.db.execute(
            "SELECT COUNT(*), SUM(state IN ('succeeded','failed')), SUM(state='failed'), "
            "SUM(state='running'), SUM(retried) FROM batch_items WHERE batch=?",
            (batch_id,)).fetchone()
        return Counts(*(int(v or 0) for v in row))

    def has_open_items(self, batch_id: str) -> bool:
        """Whether any item is still queued or running (one index probe, not a count: it
        is asked after every finished item)."""
        return self.db.execute(
            "SELECT 1 FROM batch_items WHERE state IN ('queued','running') AND batch=? "
            "LIMIT 1", (batch_id,)).fetchone() is not None

    def items(self, batch_id: str) -> list[ItemRecord]:
        """Every item with its result, in input order (for the output manifest)."""
        rows = self.db.execute(f"SELECT {','.join(_ITEM_COLUMNS)} FROM batch_items "
                               "WHERE batch=? ORDER BY idx", (batch_id,))
        return [ItemRecord(**dict(r)) for r in rows]

    def set_job(self, batch_id: str, expect: tuple[str, ...], **values: object) -> bool:
        sets = ",".join(f"{k}=?" for k in values)
        marks = ",".join("?" * len(expect))
        cur = self.db.execute(f"UPDATE batch_jobs SET {sets} WHERE id=? AND state IN "
                              f"({marks})", [*values.values(), batch_id, *expect])
        return cur.rowcount > 0

    def active_jobs(self) -> list[BatchRecord]:
        rows = self.db.execute(f"SELECT {','.join(_JOB_COLUMNS)} FROM batch_jobs WHERE state "
                               "IN ('queued','running') ORDER BY created_at")
        return [BatchRecord(**dict(r)) for r in rows]

    def claim(self, runner: str, limit: int, now: float, lease_s: float) -> list[ItemRecord]:
        """Due queued items of active jobs, oldest job first, each job's running items
        kept at most at its concurrency; now running under ``runner``'s lease."""
        claimed: list[tuple[str, int]] = []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for job in self.active_jobs():
                if len(claimed) >= limit:
                    break
                running = self.db.execute(
                    "SELECT COUNT(*) FROM batch_items WHERE batch=? AND state='running'",
                    (job.id,)).fetchone()[0]
                room = min(job.concurrency - running, limit - len(claimed))
                if room <= 0:
                    continue
                rows = self.db.execute(
                    "SELECT idx FROM batch_items WHERE batch=? AND state='queued' AND "
                    "not_before<=? ORDER BY idx LIMIT ?", (job.id, now, room)).fetchall()
                for (idx,) in rows:
                    self.db.execute(
                        "UPDATE batch_items SET state='running', runner=?, lease_until=?, "
                        "attempts=attempts+1 WHERE batch=? AND idx=?",
                        (runner, now + lease_s, job.id, idx))
                    claimed.append((job.id, idx))
                if rows and job.state == "queued":
                    self.db.execute("UPDATE batch_jobs SET state='running', started_at=? "
                                    "WHERE id=? AND state='queued'", (now, job.id))
        return [self.item(b, i) for b, i in claimed]

    def item(self, batch_id: str, idx: int) -> ItemRecord:
        row = self.db.execute(f"SELECT {','.join(_ITEM_COLUMNS)} FROM batch_items WHERE "
                              "batch=? AND idx=?", (batch_id, idx)).fetchone()
        return ItemRecord(**dict(row))

    def renew(self, runner: str, refs: list[tuple[str, int]], until: float) -> None:
        self.db.executemany("UPDATE batch_items SET lease_until=? WHERE batch=? AND idx=? "
                            "AND runner=? AND state='running'",
                            [(until, b, i, runner) for b, i in refs])

    def not_running(self, refs: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """Which of these items (running on a runner) are no longer running: cancelled."""
        out = []
        for b, i in refs:
            row = self.db.execute("SELECT state FROM batch_items WHERE batch=? AND idx=?",
                                  (b, i)).fetchone()
            if row is None or row[0] != "running":
                out.append((b, i))
        return out

    def finish(self, batch_id: str, idx: int, runner: str, **values: object) -> bool:
        """running (under ``runner``) -> its outcome; False when it was not (cancelled,
        or its lease ran out and it went back to the queue)."""
        sets = ",".join(f"{k}=?" for k in values)
        cur = self.db.execute(f"UPDATE batch_items SET {sets}, runner='', lease_until=0 "
                              "WHERE batch=? AND idx=? AND runner=? AND state='running'",
                              [*values.values(), batch_id, idx, runner])
        return cur.rowcount > 0

    def requeue_lost(self, now: float) -> list[ItemRecord]:
        """Running items whose lease ran out (their runner died): queued again, or failed
        after MAX_ATTEMPTS runs. Returns them as they were."""
        rows = self.db.execute(f"SELECT {','.join(_ITEM_COLUMNS)} FROM batch_items WHERE "
                               "state='running' AND lease_until<?", (now,)).fetchall()
        lost = [ItemRecord(**dict(r)) for r in rows]
        for item in lost:
            if item.attempts >= MAX_ATTEMPTS:
                self.db.execute(
                    "UPDATE batch_items SET state='failed', runner='', finished_at=?, error=? "
                    "WHERE batch=? AND idx=? AND state='running' AND lease_until<?",
                    (now, f"interrupted {item.attempts} times (its runner stopped each time)",
                     item.batch, item.idx, now))
            else:
                self.db.execute(
                    "UPDATE batch_items SET state='queued', runner='', lease_until=0, "
                    "retried=retried+1 WHERE batch=? AND idx=? AND state='running' AND "
                    "lease_until<?", (item.batch, item.idx, now))
        return lost

    def cancel_items(self, batch_id: str, now: float) -> int:
        cur = self.db.execute(
            "UPDATE batch_items SET state='cancelled', runner='', finished_at=? "
            "WHERE batch=? AND state IN ('queued','running')", (now, batch_id))
        return cur.rowcount
