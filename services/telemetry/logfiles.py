"""Log files that rotate by size, and reading them back: tail, since, follow.

Every line starts with its time, so ``--since`` works on any of them: replica logs are
``<ISO-8601 UTC> <text>``, access logs are JSON objects whose first key is ``"ts"``.
A file rotates when the next write would take it past ``max_bytes``: ``name`` becomes
``name.1``, ``name.1`` becomes ``name.2`` ... and the oldest beyond ``backups`` is
removed. A single line longer than ``max_bytes`` is written whole.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, BinaryIO

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 3
#: how often `follow` looks for new lines
FOLLOW_POLL_S = 0.2


_second: list[Any] = [-1, ""]  # the last whole second formatted, and its text


def stamp(ts: float | None = None) -> str:
    """``2026-01-31T12:00:00.123Z`` (the seconds part is formatted once per second)."""
    ts = time.time() if ts is None else ts
    sec = int(ts)
    if sec != _second[0]:
        _second[:] = [sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))]
    return f"{_second[1]}.{int((ts - sec) * 1000):03d}Z"


def line_time(line: str) -> float | None:
    """The unix time a log line starts with (either format), or None."""
    text = line[7:] if line.startswith('{"ts":"') else line
    if len(text) < 20 or text[4] != "-" or text[10] != "T":
        return None
    try:
        base = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    frac = 0.0
    if text[19] == ".":
        digits = text[20:23]
        # ASCII only: "²".isdigit() is true but int("²") fails
        frac = int(digits) / 10 ** len(digits) if digits.isascii() and digits.isdigit() else 0.0
    return base + frac


class RotatingWriter:
    """Appends to ``path`` and rotates it by size; one writer per file per process."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES,
                 backups: int = DEFAULT_BACKUPS) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._file: BinaryIO | None = None
        self._size = 0

    def _open(self) -> BinaryIO:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open between writes
            self._size = self._file.tell()
        return self._file

    def write(self, data: bytes) -> None:
        """Append ``data`` (whole lines), rotating between lines wherever the file would
        pass ``max_bytes``."""
        self._open()
        if self.max_bytes <= 0:
            self._append(data)
            return
        while data:
            room = self.max_bytes - self._size
            if len(data) <= room:
                self._append(data)
                return
            cut = data.rfind(b"\n", 0, max(room, 0)) + 1
            if cut == 0 and self._size == 0:  # one line longer than max_bytes: whole
                cut = data.find(b"\n") + 1 or len(data)
            if cut:
                self._append(data[:cut])
                data = data[cut:]
            if data:
                self._rotate()
                self._open()

    def _append(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self._file.flush()
        self._size += len(data)

    def write_line(self, text: str, ts: float | None = None) -> None:
        self.write(f"{stamp(ts)} {text.rstrip(chr(10))}\n".encode("utf-8", "replace"))

    def _rotate(self) -> None:
        self.close()
        if self.backups <= 0:
            self.path.unlink(missing_ok=True)
            return
        oldest = rotated(self.path, self.backups)
        oldest.unlink(missing_ok=True)
        for i in range(self.backups - 1, 0, -1):
            src = rotated(self.path, i)
            if src.exists():
                os.replace(src, rotated(self.path, i + 1))
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path, rotated(self.path, 1))

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


def rotated(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


def files_oldest_first(path: Path) -> list[Path]:
    """``name.N`` ... ``name.1``, ``name``: those that exist."""
    olds = []
    i = 1
    while rotated(path, i).exists():
        olds.append(rotated(path, i))
        i += 1
    return [*reversed(olds), *([path] if path.exists() else [])]


def _lines(path: Path) -> Iterator[str]:
    try:
        with open(path, "rb") as f:
            for raw in f:
                yield raw.decode("utf-8", "replace").rstrip("\n")
    except OSError:
        return


def read(path: Path, since: float | None = None, tail: int | None = None) -> list[str]:
    """Lines of ``path`` and its rotated files, oldest first, at or after ``since``.

    A line without a time (a continuation) goes with the line before it.
    """
    out: deque[str] = deque(maxlen=tail if tail and tail > 0 else None)
    keep = since is None
    for f in files_oldest_first(path):
        for line in _lines(f):
            if since is not None:
                t = line_time(line)
                if t is not None:
                    keep = t >= since
            if keep:
                out.append(line)
    return list(out)


async def follow(path: Path, poll_s: float = FOLLOW_POLL_S,
                 from_start: bool = False) -> AsyncIterator[str]:
    """Lines appended to ``path`` from now on (or all of it, ``from_start``), across
    rotations, until cancelled."""
    pos, ino = _end(path)
    if from_start:
        pos = 0
    partial = b""
    while True:
        await asyncio.sleep(poll_s)
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if st.st_ino != ino or st.st_size < pos:
            # rotated: finish what was appended to the old file, then start the new one
            old = rotated(path, 1)
            if ino is not None and old.exists() and old.stat().st_ino == ino:
                data, _ = _read_from(old, pos)
                for line in _split(partial + data):
                    yield line
            partial, pos, ino = b"", 0, st.st_ino
        if st.st_size > pos:
            data, pos = _read_from(path, pos)
            *complete, partial = (partial + data).split(b"\n")
            for raw in complete:
                yield raw.decode("utf-8", "replace")


def _end(path: Path) -> tuple[int, int | None]:
    try:
        st = path.stat()
    except FileNotFoundError:
        return 0, None
    return st.st_size, st.st_ino


def _read_from(path: Path, pos: int) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read()
    except OSError:
        return b"", pos
    return data, pos + len(data)


def _split(data: bytes) -> list[str]:
    return [raw.decode("utf-8", "replace") for raw in data.split(b"\n") if raw]
