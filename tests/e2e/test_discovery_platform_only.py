"""`make up` installs the platform without the `dev` extra, so `modelport up` and the CLI
must run on the base dependencies alone: here every module that only the `dev` extra
brings (worked out from pyproject.toml and the installed metadata) is made unimportable
in the platform's processes and the CLI's, and a platform still starts and answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from tests.conftest import ROOT, start_platform

CLI = str(Path(sys.executable).parent / "modelport")

BLOCKER = '''\
import importlib.abc, sys

BLOCKED = {blocked!r}


class _DevExtraOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{{name}} comes only with the dev extra", name=name)
        return None


sys.meta_path.insert(0, _DevExtraOnly())
'''


def _name(req: Requirement) -> str:
    return re.sub(r"[-_.]+", "-", req.name).lower()


def _closure(requirements: list[Requirement]) -> set[str]:
    """Every installed distribution these requirements pull in, extras included."""
    seen: set[str] = set()
    todo = [(r, tuple(r.extras)) for r in requirements]
    while todo:
        req, extras = todo.pop()
        name = _name(req)
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e})
                                         for e in ("", *extras)):
                todo.append((sub, tuple(sub.extras)))
    return seen


def dev_only_modules() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = _closure([Requirement(r) for r in project["dependencies"]])
    dev = _closure([Requirement(r) for r in project["optional-dependencies"]["dev"]])
    owners = metadata.packages_distributions()
    only = dev - base
    return {module for module, dists in owners.items()
            if {re.sub(r"[-_.]+", "-", d).lower() for d in dists} <= only}


def test_the_platform_and_the_cli_run_without_the_dev_extra(tmp_path: Path) -> None:
    blocked = dev_only_modules()
    assert {"pytest", "tritonclient", "schemathesis"} <= blocked
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER.format(blocked=sorted(blocked)))
    env = {"PYTHONPATH": str(tmp_path / "site"), "HOME": str(tmp_path / "user")}
    probe = subprocess.run([sys.executable, "-c", "import pytest"], capture_output=True,
                           text=True, env={**os.environ, **env}, timeout=60)
    assert "comes only with the dev extra" in probe.stderr  # the blocker works
    plat = start_platform(tmp_path / "home", env=env)
    try:
        plat.wait_for(r"^metrics: ")
        cli = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
        listed = subprocess.run([CLI, "list", "--json"], capture_output=True, text=True,
                                env=cli, timeout=120)
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == []
        where = subprocess.run([CLI, "where", "--json"], capture_output=True, text=True,
                               env=cli, timeout=120)
        assert json.loads(where.stdout)["url"] == plat.url
    finally:
        plat.stop()
    logs = "".join(p.read_text(errors="replace") for p in (plat.home / "logs").glob("*.log"))
    assert "comes only with the dev extra" not in logs
