"""`apply -f` with a ModelService YAML (package relative to the file), `--no-wait`, `--json`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.packages import EXAMPLES

CLI = str(Path(sys.executable).parent / "modelport")


def run(platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args, "--url", platform.url], capture_output=True, text=True,
                          timeout=600)


def test_apply_yaml_creates_then_updates(platform, tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "predictor-iris", tmp_path / "models" / "iris")
    (tmp_path / "config").mkdir()
    yaml_file = tmp_path / "config" / "iris.yaml"
    yaml_file.write_text("apiVersion: modelport/v1\nkind: ModelService\n"
                         "metadata: {name: iris-yaml}\n"
                         "spec:\n  package: ../models/iris\n  replicas: 1\n"
                         "  env: {GREETING: hello}\n")
    res = run(platform, "apply", "-f", str(yaml_file), "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    [svc] = json.loads(res.stdout)
    assert svc["name"] == "iris-yaml" and svc["spec"]["env"] == {"GREETING": "hello"}
    r = httpx.post(svc["url"], json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=30)
    assert r.json()["data"]["label"] == "setosa"

    # a second apply with changed package content is a new version behind the same URL
    (tmp_path / "models" / "iris" / "labels.json").write_text('["s", "ve", "vi"]')
    res = run(platform, "apply", "-f", str(yaml_file), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["serving_version"] == 2
    r = httpx.post(svc["url"], json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=30)
    assert r.json()["data"]["label"] == "s"

    # applying the same content again creates no version
    res = run(platform, "apply", "-f", str(yaml_file), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)[0]["serving_version"] == 2
    res = run(platform, "versions", "iris-yaml", "--json")
    assert [v["number"] for v in json.loads(res.stdout)] == [1, 2]
    assert run(platform, "delete", "iris-yaml").returncode == 0


def test_invalid_yaml_names_every_problem(platform, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: modelport/v1\nkind: ModelService\nmetadata: {name: Bad_Name}\n"
                   "spec: {replicas: -1, colour: red}\n")
    res = run(platform, "apply", "-f", str(bad))
    assert res.returncode == 1
    for word in ("metadata.name", "spec.replicas", "spec.colour"):
        assert word in res.stderr, res.stderr


def test_no_wait_returns_before_ready(platform) -> None:
    res = run(platform, "create", str(EXAMPLES / "predictor-iris"), "--name", "nowait",
              "--no-wait", "--json")
    assert res.returncode == 0, res.stderr
    svc = json.loads(res.stdout)
    assert svc["name"] == "nowait" and svc["phase"] == "pending"
    deadline = time.monotonic() + 120
    while json.loads(run(platform, "get", "nowait", "--json").stdout)["phase"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    events = json.loads(run(platform, "events", "nowait", "--json").stdout)
    assert {"ServiceCreated", "BuildStarted", "ReplicaStarting", "PhaseRunning"} <= {
        e["reason"] for e in events}
    log = json.loads(run(platform, "build-log", "nowait", "--json").stdout)["log"]
    assert log  # the build (or its cache hit) is logged
    assert run(platform, "delete", "nowait").returncode == 0
    res = run(platform, "delete", "nowait")
    assert res.returncode == 1 and "not found" in res.stderr
