"""`modelport up`: run registry, builder, runtime and gateway as supervised processes.

Each component is its own process (`python -m services.<name>`), reached over a unix
socket under the home's run dir; the gateway alone listens on loopback TCP. A
component that dies is restarted with backoff; SIGTERM/SIGINT stops all of them,
gateway first, so no request arrives at a component that is already gone.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelport.home import HomeLayout
from services.grpc_server import channel
from services.runtime.containment import contained_by_default, secure_home

START_ORDER = ("builder", "runtime", "registry", "gateway")
READY_TIMEOUT_S = 60.0


def _die_with_parent(umask: int | None = None) -> None:
    """Children get SIGTERM if the launcher is killed, so no component outlives it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setsid()
    if umask is not None:
        os.umask(umask)


@dataclass
class Component:
    name: str
    argv: list[str]
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff: float = field(default=1.0)


class Platform:
    def __init__(self, home: Path, host: str = "127.0.0.1", port: int = 8000,
                 grpc_port: int = 0, config: Path | None = None, auth: bool = True) -> None:
        self.layout = HomeLayout(home)
        self.auth = auth  # False: `up --no-auth`, loopback only (checked by the CLI)
        #: the admin token, when this start created it (shown once)
        self.new_admin_token = ""
        self.config = config  # GitOps: a watcher keeps the platform in sync with this YAML
        self.host = host
        self.port = port
        self.grpc_port = grpc_port
        self.http_port = 0
        self.bound_grpc_port = 0
        self.components: dict[str, Component] = {}
        self._stopping = False
        self._watchers: list[asyncio.Task[None]] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def _argv(self, name: str) -> list[str]:
        if name == "watcher":  # a client of the gateway, like the CLI
            return [sys.executable, "-m", "services.watcher", str(self.config), "--url",
                    self.url]
        argv = [sys.executable, "-m", f"services.{name}", "--home", str(self.layout.root)]
        if name == "gateway":
            argv += ["--host", self.host, "--port", str(self.port), "--grpc-port",
                     str(self.grpc_port), "--port-file", str(self.port_file)]
        else:
            argv += ["--listen", self.layout.socket(name)]
        return argv

    @property
    def port_file(self) -> Path:
        return self.layout.run / "gateway.ports.json"

    async def _spawn(self, comp: Component) -> None:
        comp.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = comp.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                    else "")
        # credentials go only where they are used: the watcher is a client of the gateway
        env.pop("MODELPORT_ADMIN_TOKEN", None)
        if comp.name == "watcher":
            env.setdefault("MODELPORT_HOME", str(self.layout.root))  # its admin.token
        else:
            env.pop("MODELPORT_TOKEN", None)
        if comp.name == "gateway" and not self.auth:
            env["MODELPORT_GATEWAY_AUTH"] = "false"
        # when workers run as users of their own (docs/security.md) the platform's files are
        # private; built environments are not (workers run them)
        umask = (0o022 if comp.name == "builder" else 0o077) if contained_by_default() \
            else None
        comp.proc = await asyncio.create_subprocess_exec(
            *comp.argv, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL, env=env,
            preexec_fn=functools.partial(_die_with_parent, umask))
        log.close()
        comp.started_at = time.monotonic()

    async def _wait_grpc(self, comp: Component, address: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with channel(address) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            while True:
                self._check_alive(comp)
                try:
                    resp = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if resp.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{comp.name} did not become healthy; see {comp.log_path}")
                await asyncio.sleep(0.05)

    async def _wait_gateway(self, comp: Component) -> None:
        import httpx

        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.port_file.exists():
            self._check_alive(comp)
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start; see {comp.log_path}")
            await asyncio.sleep(0.05)
        ports = json.loads(self.port_file.read_text())
        self.http_port, self.bound_grpc_port = ports["http_port"], ports["grpc_port"]
        # a restarted gateway must come back on the same ports
        self.port, self.grpc_port = self.http_port, self.bound_grpc_port
        comp.argv = self._argv("gateway")
        async with httpx.AsyncClient() as client:
            while True:
                self._check_alive(comp)
                try:
                    if (await client.get(f"{self.url}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gateway /health did not answer; see {comp.log_path}")
                await asyncio.sleep(0.05)

    def _check_alive(self, comp: Component) -> None:
        if comp.proc is not None and comp.proc.returncode is not None:
            tail = comp.log_path.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"{comp.name} exited with code {comp.proc.returncode}:\n"
                               + "\n".join(tail))

    async def _start_one(self, name: str) -> None:
        comp = self.components[name]
        if name == "gateway":
            self.port_file.unlink(missing_ok=True)
        await self._spawn(comp)
        if name == "gateway":
            await self._wait_gateway(comp)
        elif name != "watcher":
            await self._wait_grpc(comp, self.layout.socket(name))

    async def start(self) -> None:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        self.layout.run.mkdir(parents=True, exist_ok=True)
        secure_home(self.layout.root)
        if contained_by_default():
            os.umask(0o077)  # what the launcher writes (component logs) is private too
        os.chmod(self.layout.run, 0o700)
        for name in START_ORDER:
            self.components[name] = Component(name, self._argv(name),
                                              self.layout.logs / f"{name}.log")
        if self.config is not None:
            from services.watcher.source import GitSource

            try:
                GitSource.local(self.config)  # a wrong --config fails `up` now, not in a loop
            except Exception as exc:
                raise RuntimeError(f"--config {self.config}: {exc}") from None
        try:
            for name in START_ORDER:
                await self._start_one(name)
            await self._bootstrap()
            if self.config is not None:
                self.components["watcher"] = Component("watcher", self._argv("watcher"),
                                                       self.layout.logs / "watcher.log")
                await self._start_one("watcher")
        except BaseException:
            await self.stop()
            raise
        self._watchers = [asyncio.create_task(self._supervise(c))
                          for c in self.components.values()]

    async def _bootstrap(self) -> None:
        """On first start: the admin user and its token (only the hash is stored; the token
        goes to <home>/admin.token, 0600, and is shown once). MODELPORT_ADMIN_TOKEN, when
        set, is adopted instead of a new one (CI, scripted setups)."""
        from modelport.v1 import auth_pb2, auth_pb2_grpc

        async with channel(self.layout.socket("registry")) as ch:
            resp = await auth_pb2_grpc.AuthStub(ch).Bootstrap(auth_pb2.BootstrapRequest(
                token=os.environ.get("MODELPORT_ADMIN_TOKEN", "")), timeout=30)
        if not resp.created:
            return
        path = self.layout.admin_token
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(resp.token + "\n")
        os.replace(tmp, path)
        self.new_admin_token = resp.token

    async def _supervise(self, comp: Component) -> None:
        """Restart a component that exits on its own, with backoff reset after a healthy minute."""
        while not self._stopping:
            assert comp.proc is not None
            code = await comp.proc.wait()
            if self._stopping:
                return
            if time.monotonic() - comp.started_at > 60:
                comp.backoff = 1.0
            print(f"modelport: {comp.name} exited with code {code}; restarting in "
                  f"{comp.backoff:g}s (log: {comp.log_path})", file=sys.stderr, flush=True)
            await asyncio.sleep(comp.backoff)
            comp.backoff = min(comp.backoff * 2, 30.0)
            comp.restarts += 1
            try:
                await self._start_one(comp.name)
            except RuntimeError as exc:
                print(f"modelport: {comp.name} failed to restart: {exc}", file=sys.stderr)

    async def stop(self, timeout: float = 15.0) -> None:
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        for name in ("watcher", *reversed(START_ORDER)):
            comp = self.components.get(name)
            if comp is None or comp.proc is None or comp.proc.returncode is not None:
                continue
            comp.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(comp.proc.wait(), timeout)
            except TimeoutError:
                comp.proc.kill()
                await comp.proc.wait()
