"""ModelArts packages declare old runtimes (`python3.6`); each gets its answer in seconds:
served on the nearest usable Python with a warning event naming both, or, with
`python_strict`, refused at once with the reason (never a build retried until a timeout).
A `base_image` is accepted too; the process runtime says it ignores it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import modelport
from modelport.client import DeployFailed
from tests.conftest import BIN, RunningPlatform

PACKAGES = Path(__file__).parent / "packages"


def package_with(tmp_path: Path, **keys: object) -> Path:
    """The echo_service package with extra model/config.json keys."""
    root = tmp_path / "pkg"
    shutil.copytree(PACKAGES / "echo_service", root)
    config = root / "model" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), **keys}))
    return root


def test_python36_is_served_on_the_nearest_python_with_a_warning(
        platform: RunningPlatform, tmp_path: Path) -> None:
    pkg = package_with(tmp_path, runtime="python3.6")
    with modelport.Client(platform.url) as c:
        svc = c.create(pkg, name="ma-py36", timeout=120)
        assert svc["phase"] == "running", svc
        warnings = [e for e in c.events("ma-py36") if e["reason"] == "PythonSubstituted"]
    assert len(warnings) == 1, warnings
    message = warnings[0]["message"]
    assert "asks for Python 3.6" in message and "built with Python 3." in message
    assert warnings[0]["type"] == "Warning"


def test_python36_strict_fails_at_once_with_the_reason(platform: RunningPlatform,
                                                      tmp_path: Path) -> None:
    pkg = package_with(tmp_path, runtime="python3.6", python_strict=True)
    with modelport.Client(platform.url) as c:
        with pytest.raises(DeployFailed) as failed:
            c.create(pkg, name="ma-py36-strict", timeout=120)
        events = c.events("ma-py36-strict")
    assert "Python 3.6 is not available" in str(failed.value)
    assert "python_strict" in str(failed.value)
    # failed once, not retried: one BuildFailed, no StartBuild retries
    reasons = [e["reason"] for e in events]
    assert reasons.count("BuildFailed") == 1 and "ActionFailed" not in reasons, reasons

    # the CLI prints the same reason on one line, without a traceback
    out = subprocess.run([str(BIN / "modelport"), "--home", str(platform.home), "create",
                          str(pkg), "--name", "ma-py36-cli"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0
    assert "Python 3.6 is not available" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_a_base_image_is_accepted_and_the_process_runtime_says_it_ignores_it(
        platform: RunningPlatform, tmp_path: Path) -> None:
    pkg = package_with(tmp_path, base_image="python:3.6-slim")
    with modelport.Client(platform.url) as c:
        svc = c.create(pkg, name="ma-base", timeout=120)
        assert svc["phase"] == "running", svc
        notes = [e for e in c.events("ma-base") if e["reason"] == "BaseImageIgnored"]
    assert len(notes) == 1 and "python:3.6-slim" in notes[0]["message"], notes
    assert "process runtime" in notes[0]["message"]
