"""Virtualenvs for the process runtime, one per (Python version, requirements).

An environment's key is the sha256 of the interpreter's own version string ("3.11.7")
and the normalized requirements, so versions of a model (or different models) with the
same dependencies share one environment. It is built in `envs/<key>.tmp-<build id>` and
renamed to `envs/<key>` only once complete, with a marker file inside; a directory
without a valid marker is never used.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.builder import errors, interpreters
from services.builder.buildlog import BuildLog
from services.builder.interpreters import Choice, Interpreter, matches
from services.builder.pipconfig import read_pip_config, redact, uv_environment

log = logging.getLogger(__name__)

MARKER = ".modelport-env.json"
REQUIREMENTS_FILE = ".modelport-requirements.txt"
_VERSION_REQUEST = re.compile(r"^\d+(\.\d+){0,2}$")
_COMMENT = re.compile(r"(^|\s)#.*$")
#: variables of the builder's own Python that must not leak into a user's environment
_DROPPED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


@dataclass(frozen=True)
class EnvSpec:
    key: str
    python: Interpreter
    requirements: str  # normalized: one requirement per line, sorted
    warning: str = ""  # set when `python` is not the version the package asked for

    @property
    def empty(self) -> bool:
        return not self.requirements


def normalize_requirements(text: str) -> str:
    """Drop comments and blank lines, join continuations, squeeze spaces, sort the lines."""
    lines = []
    for line in text.replace("\\\r\n", " ").replace("\\\n", " ").splitlines():
        line = " ".join(_COMMENT.sub("", line).split())
        if line:
            lines.append(line)
    return "\n".join(sorted(lines))


def env_key(python_version: str, normalized_requirements: str) -> str:
    digest = hashlib.sha256(f"python {python_version}\n{normalized_requirements}".encode())
    # 128 bits; short enough to keep shebang lines of the environment's scripts short
    return digest.hexdigest()[:32]


def clean_environ(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in _DROPPED_ENV}


class VenvBuilder:
    """Creates, finds and verifies the environments under one `envs` directory."""

    def __init__(self, envs_dir: Path, *, uv: Path | None, default_python: str,
                 step_timeout_s: float = 1800.0,
                 environ: Mapping[str, str] | None = None) -> None:
        self.envs_dir = envs_dir
        self.uv = uv
        self.default_python = default_python
        self.step_timeout_s = step_timeout_s
        self._environ = clean_environ(os.environ if environ is None else environ)
        self._uv_index_env: dict[str, str] | None = None
        self._index_lock = asyncio.Lock()
        self._default: Interpreter | None = None

    # -- planning ---------------------------------------------------------------------

    async def plan(self, python_request: str, requirements: str,
                   strict: bool = False) -> EnvSpec:
        """Resolve the interpreter and compute the key; raises INVALID for a bad python."""
        choice = await self.resolve_python(python_request.strip(), strict)
        normalized = normalize_requirements(requirements)
        return EnvSpec(env_key(choice.interpreter.version, normalized), choice.interpreter,
                       normalized, choice.warning)

    async def resolve_python(self, request: str, strict: bool = False) -> Choice:
        """The interpreter for `request` ("" = the builder's own): one that provides it,
        else (unless `strict`) the nearest usable one with a warning (interpreters.py)."""
        if self._default is None:
            try:
                version = await self._version_of(self.default_python)
            except OSError as exc:
                raise errors.default_python_broken(self.default_python, str(exc)) from exc
            self._default = Interpreter(self.default_python, version)
        default = self._default
        if not request:
            return Choice(default)
        if not _VERSION_REQUEST.match(request):
            raise errors.python_malformed(request)
        if matches(default.version, request):
            return Choice(default)
        found = await interpreters.installed(
            [default.path, *await self._candidates(request)], self._version_of)
        exact = [i for i in found if matches(i.version, request) and i.usable]
        if exact:
            return Choice(exact[0])
        if strict:
            raise errors.python_unavailable(request, default.version, strict=True)
        chosen = interpreters.nearest(request, found)
        if chosen is None:
            raise errors.python_unavailable(request, default.version)
        return Choice(chosen, interpreters.substitution_warning(request, chosen, found))

    async def _candidates(self, request: str) -> list[str]:
        """Every interpreter path worth probing: uv's pick for the request, uv's installed
        list, pythonX.Y on PATH, pyenv's versions (active or not)."""
        found = []
        uv_env = self._environ | {"UV_PYTHON_DOWNLOADS": "never"}
        if self.uv is not None and self.uv.exists():
            code, out = await _capture(
                [str(self.uv), "python", "find", "--system", "--no-project", request],
                uv_env, cwd=self.envs_dir)
            if code == 0 and out.strip():
                found.append(out.strip().splitlines()[-1])
            code, out = await _capture(
                [str(self.uv), "python", "list", "--only-installed", "--output-format", "json"],
                uv_env, cwd=self.envs_dir)
            if code == 0:
                found += interpreters.uv_listing(out)
        minor = ".".join(request.split(".")[:2])
        for name in (f"python{minor}", f"python{request}"):
            if path := shutil.which(name, path=self._environ.get("PATH")):
                found.append(path)
        return [*found, *interpreters.path_pythons(self._environ),
                *interpreters.pyenv_pythons(self._environ)]

    async def _version_of(self, python: str) -> str:
        code, out = await _capture(
            [python, "-c", "import platform; print(platform.python_version())"],
            self._environ, cwd=self.envs_dir)
        if code != 0 or not out.strip():
            raise OSError(f"{python} did not report its version (exit {code})")
        return out.strip().splitlines()[-1]

    # -- the cache on disk ----------------------------------------------------------------

    def env_dir(self, key: str) -> Path:
        return self.envs_dir / key

    def existing(self, key: str) -> dict[str, object] | None:
        """The marker of a complete environment for `key`, or None."""
        directory = self.env_dir(key)
        try:
            marker = json.loads((directory / MARKER).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(marker, dict) or marker.get("key") != key:
            return None
        if not (directory / "bin" / "python").exists():
            return None
        return marker

    def python_of(self, key: str) -> Path:
        return self.env_dir(key) / "bin" / "python"

    def artifact_of(self, key: str) -> str:
        """What a build of `key` hands the runtime: the environment's python."""
        return str(self.python_of(key))

    def remove_stale(self) -> list[Path]:
        """Delete half-built environments left by a builder that stopped mid-build."""
        removed = []
        if self.envs_dir.is_dir():
            for path in self.envs_dir.glob("*.tmp-*"):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    # -- building -------------------------------------------------------------------------

    async def build(self, spec: EnvSpec, build_id: str, blog: BuildLog) -> Path:
        """Build the environment for `spec` and return its python; raises StepFailed."""
        self.envs_dir.mkdir(parents=True, exist_ok=True)
        final = self.env_dir(spec.key)
        tmp = self.envs_dir / f"{spec.key}.tmp-{build_id}"
        shutil.rmtree(tmp, ignore_errors=True)
        env = self._environ | {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_PROGRESS_BAR": "off"}
        tool = "uv" if self.uv is not None else "venv + pip"
        blog.line(f"python {spec.python.version} ({spec.python.path}); installer: {tool}")
        if self.uv is not None:
            extra = await self.uv_index_env()
            if extra:
                shown = " ".join(f"{k}={redact(v)}" for k, v in sorted(extra.items()))
                blog.line(f"package index from the host's pip configuration: {shown}")
            env |= extra | {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
            create = [str(self.uv), "venv", "--python", spec.python.path, str(tmp)]
            install = [str(self.uv), "pip", "install", "--python", str(tmp / "bin" / "python"),
                       "-r", str(tmp / REQUIREMENTS_FILE)]
        else:
            create = [spec.python.path, "-m", "venv", str(tmp)]
            install = [str(tmp / "bin" / "python"), "-m", "pip", "install",
                       "-r", str(tmp / REQUIREMENTS_FILE)]
        total = 1 if spec.empty else 2
        try:
            blog.step(1, total, "create virtualenv", create)
            await blog.run("create virtualenv", create, env=env, cwd=self.envs_dir,
                           timeout_s=self.step_timeout_s)
            (tmp / REQUIREMENTS_FILE).write_text(spec.requirements + "\n")
            if spec.empty:
                blog.line("no requirements; nothing to install")
            else:
                blog.step(2, total, "pip install", install)
                blog.line("requirements:")
                for line in spec.requirements.splitlines():
                    blog.line(f"    {redact(line)}")
                await blog.run("pip install", install, env=env, cwd=self.envs_dir,
                               timeout_s=self.step_timeout_s)
            _relocate(tmp, final)
            (tmp / MARKER).write_text(json.dumps({
                "key": spec.key, "python": spec.python.version,
                "python_path": spec.python.path, "requirements": spec.requirements,
                "created": time.time(), "build_id": build_id}, indent=2))
            if self.existing(spec.key) is not None:
                blog.line(f"environment {spec.key} appeared meanwhile; using it")
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                shutil.rmtree(final, ignore_errors=True)  # a directory without a marker
                os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.python_of(spec.key)

    async def uv_index_env(self) -> dict[str, str]:
        """uv variables translated from the host's pip configuration (read once)."""
        async with self._index_lock:
            if self._uv_index_env is None:
                pip = await read_pip_config(self.default_python, self._environ)
                self._uv_index_env = uv_environment(pip, self._environ)
            return self._uv_index_env


def _relocate(tmp: Path, final: Path) -> None:
    """Point scripts built in `tmp` (shebangs, activate) at the final directory."""
    old, new = str(tmp).encode(), str(final).encode()
    for path in [*(tmp / "bin").iterdir(), tmp / "pyvenv.cfg"]:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if old in data:
            path.write_bytes(data.replace(old, new))


async def _capture(argv: list[str], env: Mapping[str, str], cwd: Path) -> tuple[int, str]:
    """Run a short command and return (exit code, stdout); OSError if it cannot start."""
    cwd.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=dict(env), cwd=cwd)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, ""
    return proc.returncode or 0, out.decode(errors="replace")
