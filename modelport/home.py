"""Where a platform instance keeps its state: the `--home` directory and its layout.

Resolution order: an explicit `--home`, then `MODELPORT_HOME`, then the XDG data
directory (`$XDG_DATA_HOME/modelport`, default `~/.local/share/modelport`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

#: unix socket paths are limited to 107 bytes on Linux; leave room for the file name
_MAX_SOCKET_DIR = 80


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().resolve()
    if env := os.environ.get("MODELPORT_HOME"):
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return (Path(xdg) / "modelport").resolve()


@dataclass(frozen=True)
class HomeLayout:
    """Named paths under one home; components create what they own on start."""

    root: Path

    @property
    def db(self) -> Path:
        return self.root / "registry.db"

    @property
    def admin_token(self) -> Path:
        """The bootstrap admin token (0600), written by the `modelport up` that made it."""
        return self.root / "admin.token"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def packages(self) -> Path:
        return self.root / "packages"

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def batches(self) -> Path:
        """Batch jobs' input archives and logs (services/registry/batches.py)."""
        return self.root / "batches"

    @property
    def envs(self) -> Path:
        return self.root / "envs"

    @property
    def builder(self) -> Path:
        return self.root / "builder"

    @property
    def runtime(self) -> Path:
        return self.root / "runtime"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Directory for unix sockets; moved under /tmp when the home path is too long."""
        candidate = self.root / "run"
        if len(str(candidate)) <= _MAX_SOCKET_DIR:
            return candidate
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        return Path("/tmp") / f"modelport-{digest}"

    @property
    def platform_file(self) -> Path:
        """Where the running `modelport up` says its URL and pid (modelport/discovery.py)."""
        return self.run / "platform.json"

    def socket(self, component: str) -> str:
        return f"unix:{self.run / (component + '.sock')}"
