"""Shared fixtures: a real `modelport up` in a subprocess on a temporary home."""

from __future__ import annotations

import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXAMPLES = ROOT / "examples"

# Management needs a credential (docs/security.md). Every platform a test starts adopts
# this admin token on its first start, and clients (modelport.Client, CLI subprocesses)
# send it; raw HTTP helpers add AUTH_HEADERS.
TEST_TOKEN = os.environ.setdefault(
    "MODELPORT_ADMIN_TOKEN", f"mp_{secrets.token_hex(8)}.{secrets.token_urlsafe(32)}")
os.environ.setdefault("MODELPORT_TOKEN", TEST_TOKEN)
AUTH_HEADERS = {"Authorization": f"Bearer {TEST_TOKEN}"}


def open_to_workers(path: Path) -> Path:
    """Let model workers (users of their own when tests run as root, docs/security.md)
    write and read files a test hands them by path: ``path`` 0777, its parents o+x."""
    from services.runtime.containment import ensure_traversable

    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)
    ensure_traversable(path)
    return path


@dataclass
class RunningPlatform:
    """A `modelport up` process and what it printed."""

    proc: subprocess.Popen[str]
    home: Path
    url: str = ""
    grpc_port: int = 0
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def wait_for(self, pattern: str, timeout: float = 240) -> re.Match[str]:
        """Block until a line of output matches; fail with everything printed so far."""
        rx = re.compile(pattern)
        for line in self.lines:
            if m := rx.search(line):
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if m := rx.search(line):
                return m
        raise AssertionError(f"no line matching {pattern!r}; output:\n" + "".join(self.lines)
                             + self.component_logs())

    def component_logs(self) -> str:
        logs = self.home / "logs"
        text = ""
        for p in sorted(logs.glob("*.log")) if logs.exists() else []:
            text += f"\n--- {p.name} ---\n" + "\n".join(p.read_text(errors="replace")
                                                       .splitlines()[-40:])
        return text

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the whole group: `make up` too
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def start_platform(home: Path, *args: str, env: dict[str, str] | None = None,
                   argv: list[str] | None = None) -> RunningPlatform:
    cmd = argv or [str(BIN / "modelport"), "up", "--home", str(home), "--port", "0",
                   "--grpc-port", "0", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, **(env or {})},
                            start_new_session=True)
    plat = RunningPlatform(proc, home)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            plat._queue.put(line)
        plat._queue.put(None)

    threading.Thread(target=pump, daemon=True).start()
    m = plat.wait_for(r"ready: (http://\S+)", timeout=120)
    plat.url = m.group(1)
    plat.grpc_port = int(plat.wait_for(r"grpc: \S+:(\d+)").group(1))
    return plat


def _runs(component: str, cmdline: str) -> bool:
    """Whether ``cmdline`` is the launcher's ``component``: ``services.NAME``; a gateway
    (``gateway``, ``gateway-1``, ... of `up --gateways N`) by its own port file; Envoy by
    the bootstrap the launcher wrote (modelport/edge.py)."""
    if component == "envoy":
        return "/run/envoy.json" in cmdline and "--admin-address-path" in cmdline
    if component.startswith("gateway"):
        return "services.gateway" in cmdline and f"/{component}.ports.json" in cmdline
    return f"services.{component}" in cmdline


def component_pid(launcher: int, component: str) -> int | None:
    """The live process of ``component`` (registry, builder, runtime, gateway, gateway-1,
    xds, envoy) under the launcher ``launcher``, or None while there is none (dead, or not
    yet restarted)."""
    import psutil

    for child in psutil.Process(launcher).children(recursive=True):
        try:
            if _runs(component, " ".join(child.cmdline())) and \
                    child.status() != psutil.STATUS_ZOMBIE:
                return child.pid
        except psutil.Error:  # gone, or a zombie the launcher has not reaped yet
            continue
    return None


def kill_component(plat: RunningPlatform, component: str, timeout: float = 60) -> None:
    """SIGKILL ``component`` and wait until the launcher has started it again."""
    old = component_pid(plat.proc.pid, component)
    assert old is not None, f"no {component} process under the launcher"
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while component_pid(plat.proc.pid, component) in (None, old):
        assert time.monotonic() < deadline, f"the launcher did not restart the {component}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """One platform per test module; tests create their own services on it."""
    plat = start_platform(tmp_path_factory.mktemp("home"))
    yield plat
    plat.stop()


@pytest.fixture
def client(platform: RunningPlatform):  # noqa: ANN201
    import modelport

    with modelport.Client(platform.url) as c:
        yield c
