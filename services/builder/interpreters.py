"""Which installed Python builds a package's environment, and what to say when it differs.

Packages name old interpreters (ModelArts' `runtime: python3.6`); a host rarely has them
on PATH. The answer must come in seconds, so a request is resolved against every
interpreter this host has (the builder's own, PATH, uv-managed ones, pyenv's versions even
when not active) and, when none provides it, the nearest usable one is chosen with a
warning that names both (or, with `strict`, the request fails at once with the reason).

"Usable" means the worker shim can run in it: `modelport/worker/` supports Python >= 3.8.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

#: the oldest Python the worker shim (modelport/worker/, copied into each env) runs on
WORKER_MIN_PYTHON = (3, 8)
#: minor versions probed on PATH as pythonX.Y when looking for a substitute
_PATH_MINORS = range(8, 16)


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # as the interpreter reports it, e.g. "3.11.7"

    @property
    def major_minor(self) -> tuple[int, int]:
        parts = self.version.split(".")
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0

    @property
    def usable(self) -> bool:
        return self.major_minor >= WORKER_MIN_PYTHON


@dataclass(frozen=True)
class Choice:
    """The interpreter a build uses; `warning` is set when it is not the one asked for."""

    interpreter: Interpreter
    warning: str = ""


def matches(version: str, request: str) -> bool:
    return version == request or version.startswith(request + ".")


def requested_major_minor(request: str) -> tuple[int, int]:
    parts = request.split(".")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0


def nearest(request: str, found: list[Interpreter]) -> Interpreter | None:
    """The usable interpreter closest to the request: same major, least minor distance,
    the newer one on a tie (it is more likely to still install the package's wheels)."""
    want = requested_major_minor(request)
    usable = [i for i in found if i.usable and i.major_minor[0] == want[0]]
    if not usable:
        return None
    return min(usable, key=lambda i: (abs(i.major_minor[1] - want[1]), -i.major_minor[1]))


def pyenv_pythons(environ: Mapping[str, str]) -> list[str]:
    """Every pyenv version's python, active or not ($PYENV_ROOT, default ~/.pyenv)."""
    root = Path(environ.get("PYENV_ROOT") or Path(environ.get("HOME", "~")).expanduser()
                / ".pyenv")
    found = []
    versions = root / "versions"
    if versions.is_dir():
        for entry in sorted(versions.iterdir()):
            python = entry / "bin" / "python3"
            if python.exists():
                found.append(str(python))
    return found


def path_pythons(environ: Mapping[str, str]) -> list[str]:
    """pythonX.Y on PATH for the minors the worker supports (pyenv shims are skipped: a
    shim of an inactive version only prints an error)."""
    found = []
    for minor in _PATH_MINORS:
        path = shutil.which(f"python3.{minor}", path=environ.get("PATH"))
        if path and "/shims/" not in path:
            found.append(path)
    return found


def uv_listing(text: str) -> list[str]:
    """Interpreter paths from `uv python list --only-installed --output-format json`."""
    try:
        entries = json.loads(text)
    except ValueError:
        return []
    return [e["path"] for e in entries if isinstance(e, dict) and isinstance(e.get("path"), str)
            and e.get("implementation", "cpython") == "cpython" and "/shims/" not in e["path"]]


Probe = Callable[[str], Awaitable[str]]


async def installed(candidates: list[str], probe: Probe) -> list[Interpreter]:
    """Each candidate that runs and reports its version, once per real file."""
    seen: set[str] = set()
    out = []
    for path in candidates:
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        try:
            version = await probe(path)
        except OSError:
            continue
        out.append(Interpreter(path, version))
    return out


def substitution_warning(request: str, chosen: Interpreter, found: list[Interpreter]) -> str:
    same = [i for i in found if matches(i.version, request)]
    why = (f"Python {same[0].version} is installed but the worker needs Python >= "
           f"{WORKER_MIN_PYTHON[0]}.{WORKER_MIN_PYTHON[1]}" if same
           else f"no installed interpreter provides Python {request}")
    return (f"the package asks for Python {request}; {why}, so it is built with Python "
            f"{chosen.version} ({chosen.path}), the nearest available. Set "
            f'"python_strict": true in config.json to fail instead')
