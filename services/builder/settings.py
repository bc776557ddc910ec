"""The builder's platform settings, read from `MODELPORT_BUILDER_*` variables.

A plain dataclass rather than a pydantic-settings model: nothing else in an idle builder
needs pydantic, and importing it (with the validation machinery it builds) costs about
12 MB of resident memory in a process that lives as long as the platform.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.home import HomeLayout, resolve_home

ENV_PREFIX = "MODELPORT_BUILDER_"
_TRUE = ("1", "true", "yes", "on", "y", "t")
_FALSE = ("0", "false", "no", "off", "n", "f")


def find_uv() -> Path | None:
    """uv next to this interpreter (installed with modelport), else on PATH, else None."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file():
        return beside
    found = shutil.which("uv")
    return Path(found) if found else None


@dataclass
class BuilderSettings:
    home: Path = field(default_factory=lambda: resolve_home())
    """The platform's home directory; environments go to `home/envs`, records and logs to
    `home/builder`."""

    listen: str = ""
    """Address to serve on: `unix:/path` or `host:port`; empty = `home/run/builder.sock`."""

    max_concurrent_builds: int = 2
    """Builds that install at the same time (at least 1); later ones wait in state
    `queued`."""

    uv: Path | None = field(default_factory=find_uv)
    """The uv executable used to create environments; empty falls back to venv + pip."""

    python: str = sys.executable
    """Interpreter for builds that ask for no particular Python version."""

    build_timeout_s: float = 1800.0
    """Longest one build step (create, install) may run before it is killed (> 0)."""

    docker_base_image: str = "python:3.11-slim"
    """Base image of docker builds whose package names no `base_image`."""

    docker_pull: bool = True
    """Pull a base image the Docker host does not have; off = fail at once, saying how to
    provide it (`docker load`, `docker import`)."""

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> BuilderSettings:
        """Settings from `MODELPORT_BUILDER_<FIELD>` variables, `overrides` (the command
        line) winning; a value that does not parse names its variable and what it wants."""
        # names match in any case, as with the pydantic-settings model this replaced
        env = {k.upper(): v for k, v in (os.environ if environ is None else environ).items()
               if k.upper().startswith(ENV_PREFIX)}
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = ENV_PREFIX + f.name.upper()
            raw = overrides[f.name] if f.name in overrides else env.get(var)
            if raw is None:
                continue
            values[f.name] = _parse(f.name, var, raw)
        return cls(**values)

    def __post_init__(self) -> None:
        self.home = resolve_home(self.home)
        if not self.listen:
            self.listen = HomeLayout(self.home).socket("builder")
        if self.max_concurrent_builds < 1:
            raise ValueError(f"{ENV_PREFIX}MAX_CONCURRENT_BUILDS is "
                             f"{self.max_concurrent_builds}; set it to 1 or more")
        if not self.build_timeout_s > 0:
            raise ValueError(f"{ENV_PREFIX}BUILD_TIMEOUT_S is {self.build_timeout_s}; set it "
                             "to a number of seconds above 0")

    @property
    def layout(self) -> HomeLayout:
        return HomeLayout(self.home)


def _parse(name: str, var: str, raw: Any) -> Any:
    """One setting from its text (or an already typed override)."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    try:
        if name == "max_concurrent_builds":
            return int(text)
        if name == "build_timeout_s":
            return float(text)
    except ValueError:
        raise ValueError(f"{var}={raw!r} is not a number; set it to one (or unset it for "
                         "the default)") from None
    if name == "docker_pull":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"{var}={raw!r} is not a boolean; set it to true or false")
    if name == "uv":
        return None if text in ("", "none", "None") else Path(text)
    if name == "home":
        return Path(text)
    return text
