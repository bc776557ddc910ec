"""Process trees from /proc, and the processes the bench starts and must always stop.

A benchmark's figures are per process tree: ``modelport up`` and everything under it
(launcher, registry, builder, runtime, gateway, the replicas' workers), or uvicorn and its
workers. /proc gives each process's parent, argv, CPU ticks and RSS (Linux only). A
process is identified by its pid *and* its start time, so a pid the kernel hands out again
is never mistaken for one the bench saw (or killed in its place).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.paths import ROOT

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Proc:
    pid: int
    start: int  # /proc/<pid>/stat starttime: tells a live process from a reused pid
    label: str
    argv: tuple[str, ...]


def stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def label(argv: tuple[str, ...]) -> str:
    """What a process runs: gateway, runtime, registry, builder (the components), worker
    (a model's process), launcher (`modelport up`), uvicorn, else the program's name."""
    if "modelport_worker.shim" in argv:
        return "worker"
    if "-m" in argv and argv.index("-m") + 1 < len(argv):
        mod = argv[argv.index("-m") + 1]
        if mod.startswith("services."):
            return mod.split(".", 1)[1]
        if mod == "modelport.launcher":  # what `modelport up` execs into
            return "launcher"
        if "worker" in mod:
            return "worker"
        if mod == "uvicorn":
            return "uvicorn"
    if "up" in argv and any(a.endswith("modelport") for a in argv[:2]):
        return "launcher"
    if any("multiprocessing" in a for a in argv) or any(a.endswith("uvicorn") for a in argv[:2]):
        return "uvicorn"
    return Path(argv[0]).name if argv else "?"


def process_tree(root: int) -> list[Proc]:
    """``root`` and every process below it (Linux /proc; empty elsewhere)."""
    if not Path("/proc").is_dir():
        return []
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (st := stat(int(d.name))) is not None:
            parents[int(d.name)] = int(st[1])
    found, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parents.items():
            if ppid == pid and child not in found:
                found.add(child)
                frontier.append(child)
    out = []
    for pid in sorted(found):
        st = stat(pid)
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if st is None:
            continue
        argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        out.append(Proc(pid, int(st[19]), label(argv), argv))
    return out


def _ticks(p: Proc) -> int | None:
    """User + system clock ticks of ``p`` so far; None when it is gone (or its pid reused)."""
    st = stat(p.pid)
    if st is None or int(st[19]) != p.start:
        return None
    return int(st[11]) + int(st[12])  # utime, stime: fields 14 and 15 of stat


def cpu_seconds(procs: list[Proc]) -> float:
    """User + system CPU seconds the given (live) processes have used so far."""
    return sum(t for p in procs if (t := _ticks(p)) is not None) / TICK


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def kill_leftovers(procs: list[Proc]) -> None:
    """SIGKILL any process of an earlier snapshot that is still alive (same pid and start)."""
    for p in procs:
        if _ticks(p) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)


class TreeWatch:
    """The tree below one process, remembering every process ever seen in it, so that
    children a parent leaves behind when it stops can be reaped (``reap``)."""

    def __init__(self) -> None:
        self.root: int | None = None
        self._seen: list[Proc] = []

    def tree(self) -> list[Proc]:
        if self.root is None:
            return []
        procs = process_tree(self.root)
        known = {(p.pid, p.start) for p in self._seen}
        self._seen += [p for p in procs if (p.pid, p.start) not in known]
        return procs

    def reap(self) -> None:
        kill_leftovers(self._seen)


class CpuProbe:
    """CPU seconds (user + system) by process label, for this process ("bench", the client)
    and every process under ``root_pid``, between ``start()`` and ``stop()``.

    Linux only (/proc); elsewhere it measures only this process.
    """

    def __init__(self, root_pid: int | None) -> None:
        self.root_pid = root_pid
        self._before: dict[str, float] = {}

    def snapshot(self) -> dict[str, float]:
        cpu: dict[str, float] = {}
        for p in process_tree(self.root_pid) if self.root_pid is not None else []:
            if (ticks := _ticks(p)) is not None:
                cpu[p.label] = cpu.get(p.label, 0.0) + ticks / TICK
        t = os.times()
        cpu["bench"] = t.user + t.system
        return cpu

    def start(self) -> None:
        self._before = self.snapshot()

    def stop(self) -> dict[str, float]:
        after = self.snapshot()
        return {k: v - self._before.get(k, 0.0) for k, v in after.items()}



def start_session(argv: list[str], log: Path, env: dict[str, str] | None = None
                  ) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own (stdout and stderr to ``log``, cwd the
    checkout): Ctrl-C reaches only the bench, which then stops it with ``stop_session``."""
    with log.open("wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)


def stop_session(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM to the process group ``start_session`` made; SIGKILL after ``timeout`` s."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def raise_on_sigterm(interrupt: bool = False) -> None:
    """Make SIGTERM raise in the main thread, so every ``finally`` stops what the bench
    started: ``SystemExit(128 + SIGTERM)``, or ``KeyboardInterrupt`` with ``interrupt``
    (for a script whose Ctrl-C path is the way out). SIGINT raises KeyboardInterrupt too:
    a background job of a non-interactive shell inherits SIGINT ignored."""

    def on_term(signum: int, frame: object) -> None:
        if interrupt:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
