"""Environments on disk: keys, real uv and venv+pip builds, the marker, relocation."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from modelport.errors import Kind, ModelportError
from services.builder.buildlog import BuildLog, StepFailed
from services.builder.settings import find_uv
from services.builder.venv import MARKER, VenvBuilder, env_key, normalize_requirements

from .support import GATE_SCRIPT, GatedIndex, builder_environ, run_python


def venv_builder(tmp_path: Path, uv_cache: Path, *, uv: Path | None) -> VenvBuilder:
    return VenvBuilder(tmp_path / "envs", uv=uv, default_python=sys.executable,
                       step_timeout_s=600, environ=builder_environ(uv_cache))


def test_requirements_are_normalized_before_keying() -> None:
    text = ("# pinned for the demo\n\nnumpy==1.26.4  # fast\r\nsix\n  requests \\\n  >=2\n"
            "git+https://example.com/x.git#egg=x\n")

    assert normalize_requirements(text) == (
        "git+https://example.com/x.git#egg=x\nnumpy==1.26.4\nrequests >=2\nsix")
    assert normalize_requirements("six\nnumpy") == normalize_requirements("numpy\n\nsix\n")
    assert normalize_requirements("# nothing\n\n") == ""


def test_key_depends_on_python_version_and_requirements() -> None:
    assert env_key("3.11.7", "six") == env_key("3.11.7", "six")
    assert env_key("3.11.7", "six") != env_key("3.11.8", "six")
    assert env_key("3.11.7", "six") != env_key("3.11.7", "")
    assert len(env_key("3.11.7", "")) == 32


@pytest.mark.parametrize("installer", ["uv", "venv+pip"])
def test_build_installs_and_scripts_work_after_the_rename(
        tmp_path: Path, uv_cache: Path, gated_index: GatedIndex, installer: str) -> None:
    uv = find_uv() if installer == "uv" else None
    assert installer != "uv" or uv is not None, (
        "uv is a dependency of modelport (pyproject.toml): reinstall with `make venv`")
    builder = venv_builder(tmp_path, uv_cache, uv=uv)
    gated_index.open()
    blog = BuildLog(tmp_path / "build.log")

    async def scenario() -> Path:
        spec = await builder.plan("", gated_index.requirements())
        return await builder.build(spec, "b1", blog)

    python = asyncio.run(scenario())
    blog.close()

    env = python.parent.parent
    assert [p.name for p in (tmp_path / "envs").iterdir()] == [env.name]  # no .tmp- left
    assert run_python(str(python), "import modelport_gate_pkg; print('ok')") == "ok"
    # a console script's shebang points at the final directory, not the build directory
    script = env / "bin" / GATE_SCRIPT
    out = os.popen(f"'{script}'").read()
    assert out.strip() == "hello from the gate package"
    assert ".tmp-" not in script.read_text()
    marker = json.loads((env / MARKER).read_text())
    assert marker["key"] == env.name and builder.existing(env.name) == marker
    log = blog.path.read_text()
    assert "==> [1/2] create virtualenv" in log and "==> [2/2] pip install" in log


def test_python_requests_resolve_to_an_interpreter_of_that_version(tmp_path: Path,
                                                                   uv_cache: Path) -> None:
    builder = venv_builder(tmp_path, uv_cache, uv=find_uv())
    here = ".".join(map(str, sys.version_info[:3]))

    async def scenario() -> None:
        default = (await builder.resolve_python("")).interpreter
        assert default.path == sys.executable and default.version == here
        minor = await builder.resolve_python(f"{sys.version_info[0]}.{sys.version_info[1]}")
        assert minor.interpreter.version == here and minor.warning == ""
        for request, code in [("2.5", "build.python_unavailable"),
                              ("/bin/sh", "build.python_malformed"),
                              ("3.11; rm -rf /", "build.python_malformed")]:
            with pytest.raises(ModelportError) as err:
                await builder.resolve_python(request)
            assert err.value.kind == Kind.INVALID and err.value.code == code
            assert err.value.path == "python"

    asyncio.run(scenario())


def fake_python(path: Path, version: str) -> None:
    """An executable that answers the builder's version probe like a Python of `version`
    (enough for choosing one; nothing is built with it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)


def test_a_missing_python_is_replaced_by_the_nearest_usable_one_or_fails_when_strict(
        tmp_path: Path) -> None:
    """pyenv versions count even when not active (the shims only print an error); one
    older than the worker's 3.8 is installed but not usable, so the nearest usable one is
    chosen with a warning naming both; strict refuses instead."""
    pyenv = tmp_path / "pyenv"
    for version in ("3.6.15", "3.9.18", "3.12.1"):
        fake_python(pyenv / "versions" / version / "bin" / "python3", version)
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    builder = VenvBuilder(tmp_path / "envs", uv=None, default_python=sys.executable,
                          environ={"PATH": str(empty_path), "PYENV_ROOT": str(pyenv),
                                   "HOME": str(tmp_path)})

    async def scenario() -> None:
        inactive = await builder.resolve_python("3.12")
        assert inactive.interpreter.version == "3.12.1" and inactive.warning == ""
        assert inactive.interpreter.path == str(pyenv / "versions/3.12.1/bin/python3")

        old = await builder.resolve_python("3.6")
        assert old.interpreter.version == "3.9.18"
        assert "Python 3.6" in old.warning and "3.9.18" in old.warning
        assert "3.6.15 is installed but the worker needs Python >= 3.8" in old.warning
        assert "python_strict" in old.warning

        newer = await builder.resolve_python("3.14")  # nothing newer: the newest there is
        assert newer.interpreter.version == "3.12.1"
        assert "no installed interpreter provides Python 3.14" in newer.warning

        with pytest.raises(ModelportError) as strict:
            await builder.resolve_python("3.6", strict=True)
        assert strict.value.code == "build.python_unavailable"
        assert "python_strict" in strict.value.message and strict.value.fix

    asyncio.run(scenario())


def test_half_built_envs_are_never_reused_and_are_removed(tmp_path: Path,
                                                          uv_cache: Path) -> None:
    builder = venv_builder(tmp_path, uv_cache, uv=find_uv())
    key = env_key("3.11.7", "six")
    (tmp_path / "envs" / key / "bin").mkdir(parents=True)  # no marker: incomplete
    (tmp_path / "envs" / f"{key}.tmp-abc").mkdir()

    assert builder.existing(key) is None
    assert [p.name for p in builder.remove_stale()] == [f"{key}.tmp-abc"]
    assert not (tmp_path / "envs" / f"{key}.tmp-abc").exists()


def test_a_step_streams_both_outputs_and_fails_with_a_one_line_reason(tmp_path: Path) -> None:
    blog = BuildLog(tmp_path / "step.log")
    script = "echo to-stdout; echo to-stderr >&2; exit 3"

    with pytest.raises(StepFailed) as failed:
        asyncio.run(blog.run("pip install", ["sh", "-c", script], env=dict(os.environ),
                             cwd=tmp_path, timeout_s=60))

    assert failed.value.reason == "pip install failed (exit 3)"
    log = blog.path.read_text()
    assert "] to-stdout\n" in log and "] to-stderr\n" in log
    assert set(blog.tail(3).splitlines()[:2]) == {"to-stdout", "to-stderr"}  # no stamps
    blog.close()


def test_a_step_that_hangs_is_killed_at_its_timeout(tmp_path: Path) -> None:
    blog = BuildLog(tmp_path / "step.log")

    with pytest.raises(StepFailed) as failed:
        asyncio.run(blog.run("pip install", ["sh", "-c", "echo started; sleep 600"],
                             env=dict(os.environ), cwd=tmp_path, timeout_s=1))

    assert failed.value.reason == "pip install timed out after 1s"
    assert "] started\n" in blog.path.read_text()
    blog.close()


def test_an_installer_that_cannot_start_fails_the_build_with_a_reason(
        tmp_path: Path, uv_cache: Path) -> None:
    builder = venv_builder(tmp_path, uv_cache, uv=tmp_path / "no-such-uv")
    blog = BuildLog(tmp_path / "build.log")

    async def scenario() -> None:
        await builder.build(await builder.plan("", ""), "b1", blog)

    with pytest.raises(StepFailed) as failed:
        asyncio.run(scenario())

    assert failed.value.reason == "create virtualenv could not start: No such file or directory"
    assert list((tmp_path / "envs").iterdir()) == []
    blog.close()
