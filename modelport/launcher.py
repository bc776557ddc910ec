"""`modelport up`: run registry, builder, runtime and gateway as supervised processes.

Each component is its own process (`python -m services.<name>`), reached over a unix
socket under the home's run dir; the gateway alone listens on loopback TCP. A
component that dies is restarted with backoff; SIGTERM/SIGINT stops all of them,
gateway first, so no request arrives at a component that is already gone.

`--gateways N` runs N gateway processes (``gateway``, ``gateway-1``, ...), each on HTTP and
gRPC ports of its own, listed in ``<run>/gateways.json``; `--envoy-port` puts Envoy in
front of them (modelport/edge.py, configured by the xDS server; docs/xds.md). Envoy is
stopped first.

`modelport up` checks its options and then execs `python -m modelport.launcher up ...`
(same pid), because the supervisor lives as long as the platform and the CLI's imports
(typer, rich, httpx, grpc: about 45 MB) would stay resident in it for nothing. So this
module imports only the standard library and small modelport modules: a component says
it is ready through a pipe (MODELPORT_READY_FD, written by services/rpc/server.py once
it serves) rather than a gRPC health check, the gateway's /health is one plain HTTP
request, and the two things that need the SDK run in short-lived children of their own:
the admin bootstrap (`python -m modelport.launcher bootstrap`, a gRPC call) and
`--deploy` (`python -m modelport.launcher deploy`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from modelport import discovery
from modelport.edge import Edge, connect_host, find_binary
from modelport.home import HomeLayout
from modelport.supervision import record as record_component
from services.runtime.containment import contained_by_default, secure_home

START_ORDER = ("builder", "runtime", "registry", "gateway")
#: the components that write no "ready" to a pipe (the launcher checks them itself)
NO_READY_PIPE = ("watcher", "envoy")
READY_TIMEOUT_S = 60.0
#: the environment variable naming the pipe a component writes "ready" to (services/rpc/server.py)
READY_FD_ENV = "MODELPORT_READY_FD"


def _die_with_parent(umask: int | None = None) -> None:
    """Children get SIGTERM if the launcher is killed, so no component outlives it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setsid()
    if umask is not None:
        os.umask(umask)


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on (host, port), inheritable by the gateway processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def free_port(host: str) -> int:
    """A TCP port free on ``host`` now (for a listener another process binds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def is_gateway(name: str) -> bool:
    """``gateway`` and the further ones of `--gateways N`: ``gateway-1``, ``gateway-2``, ..."""
    return name == "gateway" or name.startswith("gateway-")


@dataclass
class GatewaySlot:
    """One gateway process's ports: an HTTP socket the launcher owns (bound once, handed to
    each start, so connections made during a restart wait in its backlog) and a gRPC port
    of its own (0 until its first start binds one; restarts come back on it)."""
    name: str
    grpc_port: int
    socket: socket.socket | None = None
    http_port: int = 0
    bound_grpc_port: int = 0


@dataclass
class Component:
    name: str
    argv: list[str]
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    #: read end of the pipe the component writes "ready" to (not the gateway, not the watcher)
    ready_fd: int = -1
    restarts: int = 0
    started_at: float = 0.0
    backoff: float = field(default=1.0)
    #: where this start's output begins in its log (an earlier start's stays above)
    log_offset: int = 0


class Platform:
    def __init__(self, home: Path, host: str = "127.0.0.1", port: int = 8000,
                 grpc_port: int = 0, config: Path | None = None, auth: bool = True,
                 ray_address: str = "", xds_port: int = -1, envoy_port: int = -1,
                 gateways: int = 1) -> None:
        self.layout = HomeLayout(home)
        #: `up --envoy-port PORT` (0: a free one; -1: no Envoy): Envoy in front of the
        #: gateways, configured by the xDS server, which it implies (modelport/edge.py)
        self.envoy_port = envoy_port
        self.edge: Edge | None = None
        if envoy_port >= 0 and xds_port < 0:
            xds_port = 0
        #: `up --xds-port PORT` (0: a free one; -1: no xDS server): the ADS server for Envoy
        #: and proxyless gRPC clients (services/xds, docs/xds.md); the bound port once up
        self.xds_port = xds_port
        #: `up --gateways N`: gateway processes, each restarted on its own
        self.gateway_count = max(1, gateways)
        self._gateways_written: list[dict[str, object]] | None = None
        #: `up --ray ADDRESS`: the runtime component is a fleet of runtimes on the Ray
        #: cluster's nodes (services/runtime/ray_fleet.py), not one runtime here
        self.ray_address = ray_address
        self.auth = auth  # False: `up --no-auth`, loopback only (checked by the CLI)
        #: the admin token, when this start created it (shown once)
        self.new_admin_token = ""
        self.config = config  # GitOps: a watcher keeps the platform in sync with this YAML
        self.host = host
        self.port = port
        self.grpc_port = grpc_port
        #: per gateway process, its ports. Each HTTP port is bound here and handed to each
        #: start of that gateway: while one restarts, new connections wait in its socket's
        #: backlog instead of being refused (as systemd's socket activation does)
        self.slots: dict[str, GatewaySlot] = {
            name: GatewaySlot(name, grpc_port if name == "gateway" else 0)
            for name in self.gateway_names}
        self.components: dict[str, Component] = {}
        self._stopping = False
        self._watchers: list[asyncio.Task[None]] = []

    @property
    def gateway_names(self) -> list[str]:
        return ["gateway", *(f"gateway-{i}" for i in range(1, self.gateway_count))]

    @property
    def http_port(self) -> int:
        """The (first) gateway's bound HTTP port."""
        return self.slots["gateway"].http_port

    @property
    def bound_grpc_port(self) -> int:
        return self.slots["gateway"].bound_grpc_port

    @property
    def http_socket(self) -> socket.socket | None:
        return self.slots["gateway"].socket

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def envoy_url(self) -> str:
        return f"http://{self.host}:{self.envoy_port}"

    def _argv(self, name: str) -> list[str]:
        if name == "watcher":  # a client of the gateway, like the CLI
            return [sys.executable, "-m", "services.watcher", str(self.config), "--url",
                    self.url]
        if name == "xds":
            argv = [sys.executable, "-m", "services.xds", "--home", str(self.layout.root),
                    "--listen", f"{self.host}:{self.xds_port}", "--port-file",
                    str(self.layout.run / "xds.ports.json")]
            if self.envoy_port > 0:  # the edge listener and the gateways as its upstreams
                argv += ["--envoy-port", str(self.envoy_port)]
            return argv
        if name == "envoy":
            assert self.edge is not None
            return self.edge.argv()
        if name == "runtime" and self.ray_address:
            return [sys.executable, "-m", "services.runtime.ray_fleet", "--home",
                    str(self.layout.root), "--address", self.ray_address, "--registry",
                    self.layout.socket("registry")]
        if is_gateway(name):
            slot = self.slots[name]
            return [sys.executable, "-m", "services.gateway", "--home", str(self.layout.root),
                    "--host", self.host, "--port", str(slot.http_port), "--grpc-port",
                    str(slot.bound_grpc_port or slot.grpc_port), "--port-file",
                    str(self.ports_file(name))]
        return [sys.executable, "-m", f"services.{name}", "--home", str(self.layout.root),
                "--listen", self.layout.socket(name)]

    @property
    def port_file(self) -> Path:
        return self.ports_file("gateway")

    def ports_file(self, gateway: str) -> Path:
        """Where gateway process ``gateway`` writes the ports it bound."""
        return self.layout.run / f"{gateway}.ports.json"

    def _write_gateways(self) -> None:
        """``<run>/gateways.json``: the gateway processes' ports, for the xDS server's edge
        upstreams (services/xds/platform_state.py), written whole and renamed into place
        when the set or a port changed."""
        entries: list[dict[str, object]] = [
            {"host": connect_host(self.host), "http_port": s.http_port,
             "grpc_port": s.bound_grpc_port}
            for s in self.slots.values() if s.http_port and s.bound_grpc_port]
        if entries == self._gateways_written:
            return
        path = self.layout.run / "gateways.json"
        tmp = path.with_name(f".gateways.json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries, indent=1))
        os.replace(tmp, path)
        self._gateways_written = entries

    async def _spawn(self, comp: Component) -> None:
        comp.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = comp.log_path.open("ab")
        comp.log_offset = log.tell()
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
        if comp.name == "registry" and self.ray_address:
            env["MODELPORT_REGISTRY_RUNTIME_ADDRESS"] = "none"  # the Ray nodes' agents only
        if is_gateway(comp.name) and not self.auth:
            env["MODELPORT_GATEWAY_AUTH"] = "false"
        if comp.name == "xds":  # the edge listener binds where the gateways do
            env["MODELPORT_XDS_ENVOY_HOST"] = self.host
        if comp.name == "runtime" and not self.auth:  # its proxyless ports (docs/xds.md)
            env["MODELPORT_RUNTIME_DIRECT_AUTH"] = "false"
        inherited: tuple[int, ...] = ()
        sock = self.slots[comp.name].socket if is_gateway(comp.name) else None
        if sock is not None:
            inherited = (sock.fileno(),)  # stays open here: the next one gets it
            env["MODELPORT_GATEWAY_HTTP_FD"] = str(inherited[0])
        # when workers run as users of their own (docs/security.md) the platform's files are
        # private; built environments are not (workers run them)
        umask = (0o022 if comp.name == "builder" else 0o077) if contained_by_default() \
            else None
        pass_fds: tuple[int, ...] = ()
        self._close_ready(comp)
        if not is_gateway(comp.name) and comp.name not in NO_READY_PIPE:
            comp.ready_fd, write_fd = os.pipe()
            os.set_blocking(comp.ready_fd, False)
            env[READY_FD_ENV] = str(write_fd)
            pass_fds = (write_fd,)
        try:
            comp.proc = await asyncio.create_subprocess_exec(
                *comp.argv, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL, env=env,
                pass_fds=pass_fds + inherited,
                preexec_fn=functools.partial(_die_with_parent, umask))
        finally:
            log.close()
            for fd in pass_fds:  # the child's copy is the only write end left
                os.close(fd)
        comp.started_at = time.monotonic()

    @staticmethod
    def _close_ready(comp: Component) -> None:
        if comp.ready_fd >= 0:
            os.close(comp.ready_fd)
            comp.ready_fd = -1

    async def _wait_ready(self, comp: Component) -> None:
        """Until the component writes "ready" to its pipe: its gRPC server is bound and its
        health service says SERVING (what a health check would see, without grpc here)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        seen = b""
        try:
            while True:
                try:
                    chunk = os.read(comp.ready_fd, 64)
                except BlockingIOError:
                    chunk = None
                if chunk is not None:
                    seen += chunk
                    if b"ready" in seen:
                        return
                    if chunk == b"":  # closed without a word: it is exiting
                        await self._exited(comp, deadline)
                self._check_alive(comp)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{comp.name} did not become healthy; see {comp.log_path}")
                await asyncio.sleep(0.05)
        finally:
            self._close_ready(comp)

    async def _exited(self, comp: Component, deadline: float) -> None:
        """The ready pipe closed early; report the exit code once the process is gone."""
        assert comp.proc is not None
        try:
            await asyncio.wait_for(comp.proc.wait(), max(deadline - time.monotonic(), 0.1))
        except TimeoutError:
            raise RuntimeError(f"{comp.name} closed its ready pipe without serving; see "
                               f"{comp.log_path}") from None
        self._check_alive(comp)

    async def _wait_gateway(self, comp: Component) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        slot, port_file = self.slots[comp.name], self.ports_file(comp.name)
        while True:  # it writes the file once it serves (not in one step: read it whole)
            try:
                ports = json.loads(port_file.read_text())
                break
            except (OSError, ValueError):
                pass
            self._check_alive(comp)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{comp.name} did not start; see {comp.log_path}")
            await asyncio.sleep(0.05)
        # a restarted gateway must come back on the same ports
        slot.http_port, slot.bound_grpc_port = ports["http_port"], ports["grpc_port"]
        comp.argv = self._argv(comp.name)
        while True:
            self._check_alive(comp)
            if await http_status(connect_host(self.host), slot.http_port, "/health") == 200:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{comp.name} /health did not answer; see {comp.log_path}")
            await asyncio.sleep(0.05)
        self._write_gateways()

    async def _xds_bound_port(self, comp: Component) -> int:
        """The port the xDS server bound, from its port file: written just after it said
        ready (services/xds/server.py), so it may not be there, or be whole, at once."""
        path = self.layout.run / "xds.ports.json"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                return int(json.loads(path.read_text())["port"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
            self._check_alive(comp)
            if time.monotonic() > deadline:
                raise RuntimeError(f"xds did not write {path}; see {comp.log_path}")
            await asyncio.sleep(0.05)

    async def _wait_envoy(self, comp: Component) -> None:
        """Until Envoy's admin /ready answers 200 (its first config from the xDS server is
        in force) and the edge listener accepts connections."""
        assert self.edge is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            self._check_alive(comp)
            admin = self.edge.admin_address()
            if admin is not None and await http_status(*admin, "/ready") == 200 \
                    and await self.edge.accepting():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"envoy did not become ready (admin /ready and a listener "
                                   f"on {self.host}:{self.envoy_port}); see {comp.log_path} "
                                   f"and {self.layout.logs / 'xds.log'}")
            await asyncio.sleep(0.1)

    def _check_alive(self, comp: Component) -> None:
        if comp.proc is not None and comp.proc.returncode is not None:
            raise RuntimeError(f"{comp.name} exited with code {comp.proc.returncode}: "
                               f"{_first_error(comp)} (its log: {comp.log_path})")

    async def _start_one(self, name: str) -> None:
        comp = self.components[name]
        if is_gateway(name):
            self.ports_file(name).unlink(missing_ok=True)
        if name == "xds" and not self.xds_port:  # an earlier `up`'s port is not this one's
            (self.layout.run / "xds.ports.json").unlink(missing_ok=True)
        if name == "envoy":
            assert self.edge is not None
            self.edge.admin_address_path.unlink(missing_ok=True)  # the last start's
            self.edge.write_bootstrap(f"{connect_host(self.host)}:{self.xds_port}")
        await self._spawn(comp)
        if is_gateway(name):
            await self._wait_gateway(comp)
        elif name == "envoy":
            await self._wait_envoy(comp)
        elif name != "watcher":
            await self._wait_ready(comp)
        if name == "xds" and not self.xds_port:  # restarts come back on the same port
            self.xds_port = await self._xds_bound_port(comp)
            comp.argv = self._argv("xds")

    async def start(self) -> None:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        self.layout.run.mkdir(parents=True, exist_ok=True)
        secure_home(self.layout.root)
        if contained_by_default():
            os.umask(0o077)  # what the launcher writes (component logs) is private too
        os.chmod(self.layout.run, 0o700)
        if self.envoy_port >= 0:  # no binary: fail before anything starts, naming the fix
            self.edge = Edge(self.layout, find_binary(), self.host,
                             self.envoy_port or free_port(self.host))
            self.envoy_port = self.edge.port
        for name, slot in self.slots.items():
            slot.socket = listening_socket(self.host, self.port if name == "gateway" else 0)
            slot.http_port = slot.socket.getsockname()[1]
        self.port = self.http_port
        for name in (*START_ORDER, *self.gateway_names[1:]):
            self.components[name] = Component(name, self._argv(name),
                                              self.layout.logs / f"{name}.log")
        if self.config is not None:
            from services.watcher.source import GitSource

            try:
                GitSource.local(self.config)  # a wrong --config fails `up` now, not in a loop
            except Exception as exc:
                raise RuntimeError(f"--config {self.config}: {exc}") from None
        bootstrap: asyncio.Task[None] | None = None
        try:
            for name in (*START_ORDER, *self.gateway_names[1:]):
                await self._start_one(name)
                if name == "registry":  # a child process; it runs while the gateway starts
                    bootstrap = asyncio.create_task(self._bootstrap())
            assert bootstrap is not None
            await bootstrap
            if self.xds_port >= 0:
                self.components["xds"] = Component("xds", self._argv("xds"),
                                                   self.layout.logs / "xds.log")
                await self._start_one("xds")
            if self.edge is not None:
                self.components["envoy"] = Component("envoy", self._argv("envoy"),
                                                     self.edge.log_path)
                await self._start_one("envoy")
            if self.config is not None:
                self.components["watcher"] = Component("watcher", self._argv("watcher"),
                                                       self.layout.logs / "watcher.log")
                await self._start_one("watcher")
        except BaseException:
            if bootstrap is not None and not bootstrap.done():
                bootstrap.cancel()
                with contextlib.suppress(BaseException):
                    await bootstrap
            await self.stop()
            raise
        for comp in self.components.values():
            self._record(comp, "running")
        self._watchers = [asyncio.create_task(self._supervise(c))
                          for c in self.components.values()]

    async def _bootstrap(self) -> None:
        """On first start: the admin user and its token (only the hash is stored; the token
        goes to <home>/admin.token, 0600, and is shown once). MODELPORT_ADMIN_TOKEN, when
        set, is adopted instead of a new one (CI, scripted setups).

        The gRPC call runs in a child (`bootstrap` below), so grpc is never imported here."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "modelport.launcher", "bootstrap",
            self.layout.socket("registry"), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self._child_env(), preexec_fn=_die_with_parent)
        try:
            out, errs = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        try:
            resp = json.loads(out) if proc.returncode == 0 else None
        except ValueError:
            resp = None
        if not isinstance(resp, dict):
            raise RuntimeError("creating the admin token failed (registry Auth.Bootstrap): "
                               + (errs.decode(errors="replace").strip().splitlines()
                                  or [f"exit code {proc.returncode}"])[-1]
                               + f"; see {self.layout.logs / 'registry.log'}")
        if not resp["created"]:
            return
        path = self.layout.admin_token
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(resp["token"] + "\n")
        os.replace(tmp, path)
        self.new_admin_token = resp["token"]

    @staticmethod
    def _child_env() -> dict[str, str]:
        """The environment of the launcher's helper children: this interpreter's modelport."""
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                    else "")
        return env

    async def _supervise(self, comp: Component) -> None:
        """Restart a component that exits on its own, with backoff reset after a healthy minute."""
        while not self._stopping:
            assert comp.proc is not None
            code = await comp.proc.wait()
            if self._stopping:
                return
            if time.monotonic() - comp.started_at > 60:
                comp.backoff = 1.0
            self._record(comp, "exited")
            print(f"modelport: {comp.name} exited with code {code}; restarting in "
                  f"{comp.backoff:g}s (log: {comp.log_path})", file=sys.stderr, flush=True)
            await asyncio.sleep(comp.backoff)
            comp.backoff = min(comp.backoff * 2, 30.0)
            comp.restarts += 1
            try:
                await self._start_one(comp.name)
            except RuntimeError as exc:
                print(f"modelport: {comp.name} failed to restart: {exc}", file=sys.stderr)
                self._record(comp, "failed", str(exc))
            else:
                self._record(comp, "running")

    def _record(self, comp: Component, event: str, detail: str = "") -> None:
        """Note a start, an exit or a failed restart of ``comp`` in <run>/components.json
        (modelport/supervision.py), which `modelport status` shows."""
        proc = comp.proc
        record_component(self.layout.run, comp.name, event, pid=proc.pid if proc else 0,
                         restarts=comp.restarts, code=proc.returncode if proc else None,
                         uptime_s=time.monotonic() - comp.started_at, log=comp.log_path,
                         log_offset=comp.log_offset, retry_in_s=comp.backoff, detail=detail)

    async def stop(self, timeout: float = 15.0) -> None:
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        # Envoy first (no new request reaches a gateway that is going), then the gateways
        for name in ("envoy", "watcher", "xds", *reversed(self.gateway_names[1:]),
                     *reversed(START_ORDER)):
            comp = self.components.get(name)
            if comp is None or comp.proc is None or comp.proc.returncode is not None:
                continue
            comp.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(comp.proc.wait(), timeout)
            except TimeoutError:
                comp.proc.kill()
                await comp.proc.wait()
        for comp in self.components.values():
            self._close_ready(comp)
        for slot in self.slots.values():
            if slot.socket is not None:
                slot.socket.close()
                slot.socket = None


def _first_error(comp: Component) -> str:
    """Why a component died, in one line: the first error its JSON log has since it
    started (a port in use, a bad home; what follows is fallout), else its last line."""
    try:
        with comp.log_path.open("rb") as f:
            f.seek(comp.log_offset)
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return "no log"
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
            return (str(entry.get("message", "")).splitlines() or ["an error"])[0]
    return next((line for line in reversed(lines) if line.strip()), "no output")


async def http_status(host: str, port: int, path: str, timeout: float = 1.0) -> int:
    """The status code of one plain HTTP/1.1 GET, 0 when nothing answers: enough to see the
    gateway's /health without an HTTP client library resident in the launcher."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return 0
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     "Connection: close\r\n\r\n".encode())
        parts = (await asyncio.wait_for(reader.readline(), timeout)).split()
        return int(parts[1]) if len(parts) >= 2 and parts[0].startswith(b"HTTP/") else 0
    except (OSError, TimeoutError, ValueError):
        return 0
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def up(platform: Platform, deploy: list[Path], no_auth: bool, as_json: bool) -> int:
    """Start the platform, print where it is (the admin token once), deploy the packages
    given, and run until SIGTERM/SIGINT; 1 with the reason on stderr when it cannot start."""

    async def serve(stop: asyncio.Event) -> None:
        """Say where it is, deploy what was asked, and wait for a signal."""
        host = platform.host
        print(f"ready: {platform.url}", flush=True)
        print(f"grpc: {host}:{platform.bound_grpc_port}  home: {platform.layout.root}", flush=True)
        if platform.new_admin_token:  # first start only; <home>/admin.token keeps it (0600)
            print(f"token: {platform.new_admin_token}", flush=True)
        if no_auth:
            print("auth: off (--no-auth): anyone on this machine can deploy and call models",
                  flush=True)
        print(f"metrics: {platform.url}/metrics  runtime: {_runtime_metrics(platform)}",
              flush=True)
        print(f"console: {platform.url}/console", flush=True)
        if platform.xds_port >= 0:
            print(f"xds: {host}:{platform.xds_port}", flush=True)
        if platform.gateway_count > 1:
            print("gateways: " + "  ".join(
                f"{name} http://{host}:{s.http_port} grpc {host}:{s.bound_grpc_port}"
                for name, s in platform.slots.items()), flush=True)
        if platform.edge is not None:
            print(f"envoy: {platform.envoy_url}", flush=True)
        if as_json:
            doc = {"ready": platform.url, "grpc": f"{host}:{platform.bound_grpc_port}",
                   "home": str(platform.layout.root)}
            if platform.edge is not None:
                doc["envoy"] = platform.envoy_url
            print(json.dumps(doc), flush=True)
        for pkg in deploy:
            # a child with the SDK; it prints what it deployed and how to call it
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "modelport.launcher", "deploy", platform.url, str(pkg),
                str(platform.layout.root), stdin=asyncio.subprocess.DEVNULL,
                env=platform._child_env(), preexec_fn=_die_with_parent)
            await proc.wait()
        await stop.wait()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await platform.start()
        # client commands and modelport.Client() find it from here (modelport/discovery.py)
        discovery.record(platform.layout.root,
                         discovery.client_url(platform.host, platform.http_port), os.getpid())
        try:
            await serve(stop)
        finally:
            discovery.forget(platform.layout.root, os.getpid())
            print("stopping...", flush=True)
            await platform.stop()

    try:
        asyncio.run(main())
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def _runtime_metrics(platform: Platform) -> str:
    """The runtime's /metrics URL (services/runtime/metrics.py publishes it)."""
    try:
        return json.loads((platform.layout.run / "runtime-metrics.json").read_text())["url"]
    except (OSError, ValueError, KeyError):
        return "off"


def _bootstrap_main(address: str) -> int:
    """`bootstrap ADDRESS`: call the registry's Auth.Bootstrap, print {"created", "token"}."""
    from modelport.v1 import auth_pb2, auth_pb2_grpc
    from services.rpc.server import channel

    async def call() -> auth_pb2.BootstrapResponse:
        async with channel(address) as ch:
            return await auth_pb2_grpc.AuthStub(ch).Bootstrap(auth_pb2.BootstrapRequest(
                token=os.environ.get("MODELPORT_ADMIN_TOKEN", "")), timeout=30)

    resp = asyncio.run(call())
    print(json.dumps({"created": resp.created, "token": resp.token}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The launcher's own entry points (`modelport up` execs `up`; the others are its
    helper children). Options arrive checked by the CLI."""
    parser = argparse.ArgumentParser(prog="python -m modelport.launcher")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="run the platform (what `modelport up` execs)")
    p.add_argument("--home", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=0)
    p.add_argument("--config", default=None)
    p.add_argument("--deploy", action="append", default=[])
    p.add_argument("--no-auth", action="store_true")
    p.add_argument("--ray", default="")
    p.add_argument("--xds-port", type=int, default=-1)
    p.add_argument("--envoy-port", type=int, default=-1)
    p.add_argument("--gateways", type=int, default=1)
    p.add_argument("--json", dest="as_json", action="store_true")
    p = sub.add_parser("bootstrap", help="create the admin token (a child of `up`)")
    p.add_argument("address")
    p = sub.add_parser("deploy", help="deploy one package and show a call (a child of `up`)")
    p.add_argument("url")
    p.add_argument("package")
    p.add_argument("home")
    args = parser.parse_args(argv)
    if args.command == "bootstrap":
        return _bootstrap_main(args.address)
    if args.command == "deploy":
        from modelport.cli.main import _deploy_example

        _deploy_example(args.url, Path(args.package), Path(args.home))
        return 0
    platform = Platform(Path(args.home), args.host, args.port, args.grpc_port,
                        config=Path(args.config) if args.config else None,
                        auth=not args.no_auth, ray_address=args.ray,
                        xds_port=args.xds_port, envoy_port=args.envoy_port,
                        gateways=args.gateways)
    return up(platform, [Path(d) for d in args.deploy], args.no_auth, args.as_json)


if __name__ == "__main__":
    sys.exit(main())
