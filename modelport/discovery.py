"""Which platform a client talks to, and with which credential, without anyone typing them.

The URL, first found wins:

1. given: ``--url`` on the command line, ``Client(url)`` in Python;
2. ``MODELPORT_URL``;
3. the running platform of the current home (``--home`` / ``MODELPORT_HOME`` / the default
   home): ``<run dir>/platform.json``, which `modelport up` writes once it serves;
4. the per-user pointer to the platform `modelport up` started last
   (``$XDG_STATE_HOME/modelport/current.json``, default ``~/.local/state/...``), so a second
   terminal with nothing exported finds a platform of any home on any port;
5. ``http://127.0.0.1:8000``.

A record counts only while the `up` that wrote it is alive (its pid runs `modelport`), so a
stopped or killed platform is never "found". The credential: ``--token`` / ``Client(token=)``,
else ``MODELPORT_TOKEN``, else the `modelport login` token stored for the URL, else the
``admin.token`` of the home the URL belongs to. Standard library only: the launcher writes
the records and stays slim (modelport/launcher.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.home import HomeLayout, resolve_home

DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Found:
    """A platform to talk to: its URL, the home whose admin token applies, and how."""

    url: str
    #: given | MODELPORT_URL | home | pointer | default
    how: str
    home: Path
    #: how it was found, in words (`modelport where`, error messages)
    detail: str
    #: the `modelport up` serving it, when a record named one (0: not known)
    pid: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "how": self.how, "home": str(self.home),
                "detail": self.detail, "pid": self.pid}


def credentials_file() -> Path:
    """Where `modelport login` keeps tokens, one per gateway URL (0600)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "modelport" / "credentials.json"


def pointer_file() -> Path:
    """The per-user pointer to the platform `modelport up` started last."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "modelport" / "current.json"


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live `modelport up` (its command line names modelport, so a
    reused pid does not count)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive; its cmdline may still be readable
        pass
    try:
        return b"modelport" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return not Path("/proc/self").exists()  # no /proc to ask: trust the signal check


def _live_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path`` when its platform is still running, else None."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(data, dict) and isinstance(data.get("url"), str)
            and isinstance(data.get("home"), str) and isinstance(data.get("pid"), int)):
        return None
    return data if _alive(data["pid"]) else None


def running(home: Path) -> dict[str, Any] | None:
    """``{"url", "home", "pid"}`` of the platform running on ``home``, or None."""
    return _live_record(HomeLayout(home).platform_file)


def pointed() -> dict[str, Any] | None:
    """The platform the pointer names, when it still runs."""
    return _live_record(pointer_file())


def client_url(host: str, port: int) -> str:
    """The URL a local client uses for a gateway bound to ``host``: a wildcard bind is
    reached on loopback."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _write(path: Path, data: dict[str, Any]) -> None:
    """Atomically: a reader sees the old record or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def record(home: Path, url: str, pid: int) -> None:
    """`modelport up` serves: say so in its home and in the per-user pointer."""
    data = {"url": url, "home": str(home), "pid": pid}
    _write(HomeLayout(home).platform_file, data)
    try:
        _write(pointer_file(), data)
    except OSError:  # no writable state dir: the home's record still works
        pass


def forget(home: Path, pid: int) -> None:
    """`modelport up` stops: remove its records (the pointer only while it still names this
    platform; a later `up` may have taken it over)."""
    for path in (HomeLayout(home).platform_file, pointer_file()):
        try:
            if json.loads(path.read_text()).get("pid") == pid:
                path.unlink()
        except (OSError, ValueError, AttributeError):
            pass


def _normal(url: str) -> str:
    """``127.0.0.1:8000`` (what people type) as ``http://127.0.0.1:8000``; no trailing /."""
    return (url if "://" in url else f"http://{url}").rstrip("/")


def _home_of(url: str, home: Path) -> Path:
    """The home a URL belongs to (for its admin token): that of a running platform with
    this URL, else ``home``; a home passed in explicitly is used as it is."""
    for rec in (running(home), pointed()):
        if rec is not None and rec["url"].rstrip("/") == url:
            return Path(rec["home"])
    return home


def find(url: str | None = None, home: str | os.PathLike[str] | None = None) -> Found:
    """The platform to talk to (the order is in this module's docstring)."""
    root = resolve_home(home)
    if url:
        url = _normal(url)
        return Found(url, "given", root if home else _home_of(url, root),
                     "given (--url or Client(url))")
    if env := os.environ.get("MODELPORT_URL"):
        env = _normal(env)
        return Found(env, "MODELPORT_URL", root if home else _home_of(env, root),
                     "MODELPORT_URL")
    which = "MODELPORT_HOME" if home is None and os.environ.get("MODELPORT_HOME") else (
        "--home" if home is not None else "the default home")
    if rec := running(root):
        return Found(rec["url"].rstrip("/"), "home", root,
                     f"the platform running on {which} {root}", rec["pid"])
    if rec := pointed():
        return Found(rec["url"].rstrip("/"), "pointer", Path(rec["home"]),
                     f"the platform `modelport up` started last ({pointer_file()})",
                     rec["pid"])
    return Found(DEFAULT_URL, "default", root,
                 f"the default URL: nothing runs on {which} {root} and no `modelport up` is "
                 "running for this user")


def find_token(found: Found, token: str | None = None) -> tuple[str, str]:
    """``(credential, where it came from)``; ``("", "none")`` when there is none."""
    if token:
        return token, "given (--token or Client(token=))"
    if env := os.environ.get("MODELPORT_TOKEN"):
        return env, "MODELPORT_TOKEN"
    path = credentials_file()
    try:
        stored = json.loads(path.read_text()).get(found.url)
        if isinstance(stored, str) and stored:
            return stored, f"the `modelport login` token in {path}"
    except (OSError, ValueError, AttributeError):
        pass
    admin = HomeLayout(found.home).admin_token
    try:
        if text := admin.read_text().strip():
            return text, str(admin)
    except OSError:
        pass
    return "", "none"
