"""The platform under test: ``modelport up`` on a fresh home, from its ready line to a stop
that leaves nothing behind.

``modelport up --port 0 --grpc-port 0`` picks free ports and prints where it is
(``ready: http://127.0.0.1:PORT``, then ``grpc: HOST:PORT  home: ...``); auth stays on (the
default), so management calls carry the admin token it writes to ``<home>/admin.token``.
It runs in a session of its own: Ctrl-C reaches the bench, which stops it with SIGTERM and
then kills whatever its tree left behind.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import modelport
from harness.paths import ROOT
from harness.processes import CpuProbe, Proc, TreeWatch

READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0


class Platform:
    """`modelport up` in a subprocess on ``<workdir>/home``; stop() takes the whole tree down."""

    def __init__(self, workdir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        #: more `modelport up` options (e.g. --xds-port 0 for bench/xds.py)
        self.extra_args = extra_args
        self.home = workdir / "home"
        self.log_path = workdir / "up.log"
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.grpc_port = 0
        self.token = ""
        self.stdout_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._watch = TreeWatch()

    def start(self) -> str:
        """Start it and wait for its ``ready:`` and ``grpc:`` lines; returns the URL."""
        exe = Path(sys.executable).parent / "modelport"
        if not exe.exists():
            raise SystemExit(f"bench: {exe} not found; run `make venv` first")
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [str(exe), "up", "--home", str(self.home), "--port", "0", "--grpc-port", "0",
                 *self.extra_args],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                text=True, bufsize=1, start_new_session=True)
        self._watch.root = self.proc.pid
        threading.Thread(target=self._pump, name="modelport-up-stdout", daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (self.url and self.grpc_port):
            if (left := deadline - time.monotonic()) <= 0:
                raise RuntimeError(f"`modelport up` printed no ready line in {READY_TIMEOUT_S:g}s")
            try:
                line = self._lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"`modelport up` exited early (code {self.proc.wait()})")
            if line.startswith("ready: "):
                self.url = line.split("ready: ", 1)[1].strip()
            elif line.startswith("grpc: "):  # "grpc: HOST:PORT  home: ..."
                self.grpc_port = int(line.split()[1].rsplit(":", 1)[1])
        with contextlib.suppress(OSError):  # absent with auth off
            self.token = (self.home / "admin.token").read_text().strip()
        return self.url

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    def client(self, timeout: float = 120.0) -> modelport.Client:
        """The SDK's client for this platform, with the admin token."""
        return modelport.Client(self.url, timeout, token=self.token or None, home=self.home)

    def deploy(self, package: Path, name: str, timeout: float = 900.0, **create: Any) -> dict:
        """``Client.create`` of ``package`` as ``name``, waiting up to ``timeout`` s."""
        with self.client() as client:
            return client.create(package, name=name, timeout=timeout, **create)

    def cpu_probe(self) -> CpuProbe:
        """CPU by process of this bench and of the platform's tree."""
        return CpuProbe(self.proc.pid if self.proc else None)

    def tree(self) -> list[Proc]:
        """Every process under `modelport up` now (and remembered, for stop())."""
        return self._watch.tree()

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL after STOP_TIMEOUT_S; then kill what its tree left behind.
        Returns the launcher's exit code (None when it never started)."""
        if self.proc is None:
            return None
        self.tree()  # remember the latest children, to reap any the launcher leaves behind
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print(f"bench: `modelport up` ignored SIGTERM for {STOP_TIMEOUT_S:g}s; killing "
                      "it", file=sys.stderr)
                self.proc.kill()
                self.proc.wait()
        self._watch.reap()
        return self.proc.returncode

    def diagnostics(self, lines: int = 30) -> str:
        """Tail of the launcher's stderr and each component log, for a failed run."""
        parts = []
        for path in [self.log_path, *sorted((self.home / "logs").glob("**/*.log"))]:
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                if tail:
                    parts.append(f"--- {path} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(parts)


@contextlib.contextmanager
def running(workdir: Path, extra_args: tuple[str, ...] = ()) -> Iterator[Platform]:
    """A started Platform on ``workdir``; if the body fails, the logs' tails go to stderr;
    stopped in every case."""
    plat = Platform(workdir, extra_args)
    try:
        plat.start()
        yield plat
    except BaseException:
        print(plat.diagnostics(), file=sys.stderr)
        raise
    finally:
        plat.stop()
