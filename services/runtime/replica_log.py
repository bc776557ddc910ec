"""A replica's log: the worker's stdout/stderr and the supervisor's notes, one file per
replica, each line timestamped, rotated by size.

The process backend pipes the worker's output through the runtime (``pump``) rather
than handing the child the file, so the runtime stamps each line and rotates the file
when it grows past ``max_bytes`` (``MODELPORT_RUNTIME_REPLICA_LOG_MAX_BYTES``), keeping
``backups`` older files. Supervisor notes go through the same writer, so they never
interleave mid-line with the model's output.

Each replica directory also holds ``replica.json`` (service, version), so its logs can be
found by service after the runtime restarted and forgot the replica.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from services.telemetry import logfiles

LOG_NAME = "replica.log"
META_NAME = "replica.json"
#: a line longer than this is cut into pieces (a model printing a huge blob)
MAX_LINE_BYTES = 64 * 1024

_settings = {"max_bytes": logfiles.DEFAULT_MAX_BYTES, "backups": logfiles.DEFAULT_BACKUPS}
_writers: dict[Path, logfiles.RotatingWriter] = {}


#: lines of a replica's log quoted in an error about its exit
TAIL_LINES = 15


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log (its last 16 KiB read), "" when it is unreadable."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def configure(max_bytes: int, backups: int) -> None:
    """Rotation for writers opened from now on (the runtime calls this at start)."""
    _settings.update(max_bytes=max_bytes, backups=backups)


def writer(replica_dir: Path) -> logfiles.RotatingWriter:
    """The one writer of ``<replica_dir>/replica.log`` in this process."""
    path = Path(replica_dir) / LOG_NAME
    w = _writers.get(path)
    if w is None:
        w = _writers[path] = logfiles.RotatingWriter(path, _settings["max_bytes"],
                                                     _settings["backups"])
    return w


def release(replica_dir: Path) -> None:
    """Close the replica's log (it stopped); a later write opens it again."""
    w = _writers.pop(Path(replica_dir) / LOG_NAME, None)
    if w is not None:
        w.close()


def note(replica_dir: Path, text: str) -> None:
    """A supervisor line between the model's own: ``=== modelport: text ===``."""
    writer(replica_dir).write_line(f"=== modelport: {text} ===")


def write_meta(replica_dir: Path, meta: dict[str, Any]) -> None:
    (Path(replica_dir) / META_NAME).write_text(json.dumps(meta))


def read_meta(replica_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(replica_dir) / META_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


async def pump(stream: asyncio.StreamReader, replica_dir: Path) -> None:
    """Copy a child's output into the replica log, a timestamped line at a time, until EOF."""
    w = writer(replica_dir)
    partial = b""
    while True:
        data = await stream.read(65536)
        if not data:
            break
        *lines, partial = (partial + data).split(b"\n")
        if len(partial) > MAX_LINE_BYTES:
            lines.append(partial)
            partial = b""
        if lines:
            stamp = logfiles.stamp().encode()
            w.write(b"".join(stamp + b" " + line.rstrip(b"\r") + b"\n" for line in lines))
    if partial:
        w.write(logfiles.stamp().encode() + b" " + partial + b"\n")


# ---------------------------------------------------------------------- reading


Source = tuple[str, int, Path]  # (replica id, version, replica dir)


def sources(work_dir: Path, service: str = "", replica_id: str = "") -> list[Source]:
    """Replica directories under ``work_dir/replicas`` of one replica or one service."""
    root = Path(work_dir) / "replicas"
    out: list[Source] = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if not d.is_dir():
            continue
        meta = read_meta(d)
        rid = str(meta.get("replica_id") or d.name)
        if (replica_id and rid == replica_id) or (
                not replica_id and service and meta.get("service") == service):
            out.append((rid, int(meta.get("version") or 0), d))
    return out


def read_many(srcs: list[Source], since: float | None = None,
              tail: int | None = None) -> list[tuple[float, str, int, str]]:
    """``(time, replica id, version, line)`` of several replicas, merged by time."""
    merged: list[tuple[float, str, int, str]] = []
    for rid, version, d in srcs:
        last = 0.0
        for line in logfiles.read(d / LOG_NAME, since, tail):
            t = logfiles.line_time(line)
            last = t if t is not None else last
            merged.append((last, rid, version, line))
    merged.sort(key=lambda item: item[0])
    return merged[-tail:] if tail and tail > 0 else merged


async def follow_many(find: Callable[[], list[Source]], known: list[Source],
                      rescan_s: float = 1.0) -> AsyncIterator[tuple[str, int, str]]:
    """New lines of every replica ``find`` returns, including replicas that appear later
    (read from their start), until cancelled."""
    queue: asyncio.Queue[tuple[str, int, str]] = asyncio.Queue(maxsize=10_000)
    tasks: dict[Path, asyncio.Task[None]] = {}
    initial = {d for _, _, d in known}

    async def one(rid: str, version: int, d: Path) -> None:
        async for line in logfiles.follow(d / LOG_NAME, from_start=d not in initial):
            await queue.put((rid, version, line))

    loop = asyncio.get_running_loop()
    next_scan = 0.0
    try:
        while True:
            if loop.time() >= next_scan:
                for rid, version, d in await asyncio.to_thread(find):
                    if d not in tasks:
                        tasks[d] = asyncio.create_task(one(rid, version, d))
                next_scan = loop.time() + rescan_s
            try:
                item = await asyncio.wait_for(queue.get(), rescan_s)
            except TimeoutError:
                continue
            yield item  # never inside a timeout: that would cancel the consumer
    finally:
        for task in tasks.values():
            task.cancel()
