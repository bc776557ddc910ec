"""One build's log: a file of timestamped lines, written as they happen.

Each line is flushed at once, so GetBuildLog shows a build's progress while it runs,
and the file outlives the builder process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import time
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

#: a line longer than this is cut (and marked) so one runaway line cannot fill memory
MAX_LINE = 16 * 1024
_STAMP = re.compile(r"^\[\d\d:\d\d:\d\d\.\d{3}\] ")


class StepFailed(Exception):
    """A build step failed; `reason` is one line, e.g. "pip install failed (exit 1)"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BuildLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8", errors="replace")

    def line(self, text: str) -> None:
        if self._file.closed:
            return
        stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
        for part in text.splitlines() or [""]:
            self._file.write(f"[{stamp}] {part}\n")
        self._file.flush()

    def header(self, text: str) -> None:
        """The first line of a build: the full date, then what is being built."""
        self.line(f"{datetime.now(UTC).isoformat(timespec='seconds')} {text}")

    def step(self, number: int, total: int, title: str, argv: Sequence[str] = ()) -> None:
        command = f": {shlex.join(argv)}" if argv else ""
        self.line(f"==> [{number}/{total}] {title}{command}")

    def tail(self, lines: int = 20) -> str:
        """The last `lines` lines, without their timestamps (for a failed build's error)."""
        self._file.flush()
        with self.path.open(encoding="utf-8", errors="replace") as f:
            last = deque(f, maxlen=lines)
        return "\n".join(_STAMP.sub("", line.rstrip("\n")) for line in last)

    def close(self) -> None:
        self._file.close()

    async def run(self, title: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path,
                  timeout_s: float) -> None:
        """Run one step, streaming its stdout and stderr into the log line by line.

        Raises StepFailed when it exits non-zero or outlives `timeout_s`; the step's whole
        process group is killed on timeout and on cancellation.
        """
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=dict(env), cwd=cwd, start_new_session=True)
        except OSError as exc:
            self.line(f"{title} could not start: {exc}")
            raise StepFailed(f"{title} could not start: {exc.strerror or exc}") from None
        assert proc.stdout is not None and proc.stderr is not None
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(self._pump(proc.stdout), self._pump(proc.stderr))
                code = await proc.wait()
        except TimeoutError:
            _kill_group(proc)
            await proc.wait()
            self.line(f"{title} ran longer than {timeout_s:g}s; stopped")
            raise StepFailed(f"{title} timed out after {timeout_s:g}s") from None
        except BaseException:
            _kill_group(proc)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(proc.wait(), 5)
            raise
        took = time.monotonic() - started
        if code != 0:
            self.line(f"{title} failed with exit code {code} after {took:.1f}s")
            raise StepFailed(f"{title} failed (exit {code})")
        self.line(f"{title} finished in {took:.1f}s")

    async def _pump(self, stream: asyncio.StreamReader) -> None:
        pending = b""
        while chunk := await stream.read(64 * 1024):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self.line(_decode(raw))
            if len(pending) > MAX_LINE:
                self.line(_decode(pending) + " [line cut]")
                pending = b""
        if pending:
            self.line(_decode(pending))


def _decode(raw: bytes) -> str:
    return raw[:MAX_LINE].decode("utf-8", errors="replace").rstrip("\r")


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
