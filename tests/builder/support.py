"""Real pieces the builder tests run against: a builder process, a tiny wheel, a gated index.

The gated index is a local find-links page that holds every request until the test
opens the gate, so a test can observe a build while it is installing, deterministically.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelport.home import HomeLayout
from modelport.v1 import builder_pb2, builder_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
GATE_PACKAGE = "modelport-gate-pkg"
GATE_MODULE = "modelport_gate_pkg"
GATE_SCRIPT = "modelport-gate-hello"
#: how long a test waits for a build before it gives up (a safety net, not an assertion)
BUILD_WAIT_S = 240.0


def make_wheel(directory: Path, version: str = "1.0") -> Path:
    """A pure-Python wheel with one module and one console script."""
    dist = f"{GATE_MODULE}-{version}"
    files = {
        f"{GATE_MODULE}/__init__.py": "def main():\n    print('hello from the gate package')\n",
        f"{dist}.dist-info/METADATA":
            f"Metadata-Version: 2.1\nName: {GATE_PACKAGE}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL":
            "Wheel-Version: 1.0\nGenerator: modelport-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n",
        f"{dist}.dist-info/entry_points.txt":
            f"[console_scripts]\n{GATE_SCRIPT} = {GATE_MODULE}:main\n",
    }
    record = []
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return wheel


class GatedIndex:
    """A find-links page over HTTP that answers only once `open()` was called."""

    def __init__(self, wheel: Path) -> None:
        self.wheel = wheel
        self.gate = threading.Event()
        self.requests = 0
        self.arrived = threading.Event()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self._answer(with_body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(with_body=False)

            def _answer(self, with_body: bool) -> None:
                index.requests += 1
                index.arrived.set()
                if not index.gate.wait(BUILD_WAIT_S):
                    self.send_error(503)
                    return
                if self.path.rstrip("/") == "":
                    body = f'<html><body><a href="{wheel.name}">{wheel.name}</a></body></html>'
                    self._send(body.encode(), "text/html", with_body)
                elif self.path.lstrip("/") == wheel.name:
                    self._send(wheel.read_bytes(), "application/octet-stream", with_body)
                else:
                    self.send_error(404)

            def _send(self, body: bytes, content_type: str, with_body: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def requirements(self) -> str:
        """requirements.txt text that installs the gate package from this index only."""
        return f"--no-index\n--find-links {self.url}\n{GATE_PACKAGE}==1.0\n"

    def open(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def builder_environ(uv_cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["UV_CACHE_DIR"] = str(uv_cache)
    env["UV_HTTP_TIMEOUT"] = str(int(BUILD_WAIT_S))
    env.pop("MODELPORT_HOME", None)
    return env


class BuilderProcess:
    """`python -m services.builder` in its own process group, and a client for it."""

    def __init__(self, home: Path, uv_cache: Path) -> None:
        self.home = home
        self.address = HomeLayout(home).socket("builder")
        self.log_path = home.parent / f"{home.name}-builder.stderr"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.builder", "--home", str(home),
             "--listen", self.address],
            cwd=REPO, env=builder_environ(uv_cache), stdout=self._log, stderr=self._log,
            start_new_session=True)
        self.channel = grpc.insecure_channel(self.address)
        self.stub = builder_pb2_grpc.BuilderStub(self.channel)
        self._wait_serving()

    def _wait_serving(self) -> None:
        health = health_pb2_grpc.HealthStub(self.channel)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"builder exited ({self.proc.returncode}):\n{self.stderr()}")
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"builder did not start serving:\n{self.stderr()}")
            time.sleep(0.1)

    def stderr(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> int:
        """SIGTERM, as a supervisor stops it; returns its exit code."""
        self.channel.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the builder and everything it started (a crash)."""
        self.channel.close()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=60)
        self._log.close()

    # -- client helpers -------------------------------------------------------------------

    def start(self, requirements: str = "", **fields: str) -> builder_pb2.Build:
        request = builder_pb2.BuildRequest(target="process", requirements=requirements, **fields)
        return self.stub.StartBuild(request, timeout=60)

    def get(self, build_id: str) -> builder_pb2.Build:
        return self.stub.GetBuild(builder_pb2.GetBuildRequest(id=build_id), timeout=30)

    def log(self, build_id: str) -> builder_pb2.BuildLogText:
        return self.stub.GetBuildLog(builder_pb2.BuildLogRequest(id=build_id), timeout=30)

    def wait(self, build_id: str) -> builder_pb2.Build:
        """Poll GetBuild until the build is finished, as the registry's controller does."""
        deadline = time.monotonic() + BUILD_WAIT_S
        while True:
            build = self.get(build_id)
            if build.state in ("succeeded", "failed"):
                return build
            if time.monotonic() > deadline:
                raise AssertionError(f"build {build_id} still {build.state}:\n"
                                     f"{self.log(build_id).text}")
            time.sleep(0.1)

    def wait_until(self, build_id: str, predicate, what: str) -> None:  # noqa: ANN001
        deadline = time.monotonic() + BUILD_WAIT_S
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {what}:\n{self.log(build_id).text}")
            time.sleep(0.05)


def env_dirs(home: Path) -> list[Path]:
    """Complete and half-built environment directories under a home."""
    envs = HomeLayout(home).envs
    return sorted(p for p in envs.iterdir() if p.is_dir()) if envs.is_dir() else []


def run_python(python: str, code: str) -> str:
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()
