"""Model code cannot reach the platform's secrets, and a model over its memory limit is
stopped without taking the platform down. The platform runs as root here, as in CI."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest

import modelport
from modelport.home import HomeLayout
from tests.conftest import TEST_TOKEN, RunningPlatform
from tests.security.conftest import ensure

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="workers get users of their own "
                                "only when the platform runs as root (as in CI)")


def _package_dir(admin: modelport.Client, service: str) -> str:
    digest = admin.versions(service)[-1]["digest"].split(":", 1)[1]
    return digest


def test_a_model_finds_no_token_database_package_or_socket_of_the_platform(
        sec: RunningPlatform, admin: modelport.Client) -> None:
    ensure(admin, "snoop", "snoop")
    ensure(admin, "hello", "neighbour", auth={"required": True})
    home = sec.home
    layout = HomeLayout(home)
    neighbour = home / "packages" / _package_dir(admin, "neighbour")
    assert (neighbour / "predict.py").is_file()
    neighbour_replicas = [p for p in (home / "runtime" / "replicas").iterdir()
                          if p.name.startswith("neighbour-")]
    targets = {
        "read": [str(layout.admin_token), str(layout.db), str(home / "registry.db-wal"),
                 str(home / "auth.key"), str(neighbour / "predict.py"),
                 str(home / "runtime" / "worker-ids.json"),
                 *(str(p / "replica.log") for p in neighbour_replicas),
                 str(home / "logs" / "gateway.log")],
        "list": [str(home), str(home / "packages"), str(home / "runtime" / "replicas"),
                 str(neighbour), *(str(p / "tmp") for p in neighbour_replicas)],
        "connect": [layout.socket(c)[len("unix:"):] for c in ("registry", "runtime",
                                                               "builder")],
        "write": [str(home / "packages" / "planted"), str(neighbour / "predict.py"),
                  str(home / "envs" / "planted")],
        "environ_of": [sec.proc.pid, os.getpid()],
        "secrets": [TEST_TOKEN, TEST_TOKEN.split(".")[1], "mp_"],
    }
    r = httpx.post(f"{sec.url}/v1/services/snoop/infer", json={"targets": targets}, timeout=60)
    assert r.status_code == 200, r.text
    seen = r.json()["data"]
    assert seen["uid"] != 0
    assert seen["status"]["CapEff"] == "0000000000000000"
    assert seen["status"]["NoNewPrivs"] == "1"
    for kind in ("read", "list", "write", "connect", "environ_of"):
        for target, answer in seen[kind].items():
            assert not answer["ok"], f"the model could {kind} {target}: {answer}"
            assert "Permission" in answer["error"] or "denied" in answer["error"].lower(), answer
    assert seen["env_hits"] == []
    assert not any("TOKEN" in n or n.startswith("MODELPORT_GATEWAY") for n in seen["env_names"])
    # what it needs it has: its own package, environment and scratch space
    own = httpx.post(f"{sec.url}/v1/services/snoop/infer", json={"targets": {
        "list": [str(home / "packages" / _package_dir(admin, "snoop")), "/tmp"],
        "write": [os.path.join(seen_tmp(admin, sec), "scratch")]}}, timeout=60).json()["data"]
    assert all(a["ok"] for kind in ("list", "write") for a in own[kind].values()), own


def seen_tmp(admin: modelport.Client, sec: RunningPlatform) -> str:
    """The snoop's own TMPDIR (its replica's tmp/)."""
    replicas = [p for p in (sec.home / "runtime" / "replicas").iterdir()
                if p.name.startswith("snoop-") and (p / "tmp").is_dir()]
    return str(max(replicas, key=lambda p: p.stat().st_mtime) / "tmp")


def test_a_model_over_its_memory_limit_is_stopped_and_reported(
        sec: RunningPlatform, admin: modelport.Client) -> None:
    ensure(admin, "hello", "bystander")
    ensure(admin, "hog", "hog", resources={"memory": "256Mi"})
    assert httpx.post(f"{sec.url}/v1/services/hog/infer", json={"mb": 8}, timeout=60
                      ).status_code == 200  # within its limit it works
    r = httpx.post(f"{sec.url}/v1/services/hog/infer", json={"mb": 0}, timeout=120)
    assert r.status_code >= 500
    assert "memory limit" in r.json()["error"]["message"], r.text
    deadline = time.monotonic() + 60
    while True:
        events = admin.events("hog")
        said = [e for e in events if "memory limit" in e["message"]]
        if said or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert said and said[0]["type"] == "Warning", json.dumps(events, indent=1)
    assert "256Mi" in said[0]["message"]
    # the platform kept serving the others, and the hog comes back
    ok = httpx.post(f"{sec.url}/v1/services/bystander/infer", json={"text": "still"}, timeout=60)
    assert ok.status_code == 200 and ok.json()["data"] == {"hello": "still"}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        again = httpx.post(f"{sec.url}/v1/services/hog/infer", json={"mb": 8}, timeout=60)
        if again.status_code == 200:
            break
        time.sleep(0.5)
    assert again.status_code == 200, again.text
