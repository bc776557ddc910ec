"""The builder's platform settings, read from `MODELPORT_BUILDER_*` variables."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelport.home import HomeLayout, resolve_home


def find_uv() -> Path | None:
    """uv next to this interpreter (installed with modelport), else on PATH, else None."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file():
        return beside
    found = shutil.which("uv")
    return Path(found) if found else None


class BuilderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELPORT_BUILDER_",
                                      use_attribute_docstrings=True)

    home: Path = Field(default_factory=lambda: resolve_home())
    """The platform's home directory; environments go to `home/envs`, records and logs to
    `home/builder`."""

    listen: str = ""
    """Address to serve on: `unix:/path` or `host:port`; empty = `home/run/builder.sock`."""

    max_concurrent_builds: int = Field(default=2, ge=1)
    """Builds that install at the same time; later ones wait in state `queued`."""

    uv: Path | None = Field(default_factory=find_uv)
    """The uv executable used to create environments; empty falls back to venv + pip."""

    python: str = sys.executable
    """Interpreter for builds that ask for no particular Python version."""

    build_timeout_s: float = Field(default=1800.0, gt=0)
    """Longest one build step (create, install) may run before it is killed."""

    docker_base_image: str = "python:3.11-slim"
    """Base image of docker builds whose package names no `base_image`."""

    docker_pull: bool = True
    """Pull a base image the Docker host does not have; off = fail at once, saying how to
    provide it (`docker load`, `docker import`)."""

    @field_validator("uv", mode="before")
    @classmethod
    def _no_uv(cls, value: object) -> object:
        return None if value in ("", "none", "None") else value

    @model_validator(mode="after")
    def _derive(self) -> BuilderSettings:
        self.home = resolve_home(self.home)
        if not self.listen:
            self.listen = HomeLayout(self.home).socket("builder")
        return self

    @property
    def layout(self) -> HomeLayout:
        return HomeLayout(self.home)
