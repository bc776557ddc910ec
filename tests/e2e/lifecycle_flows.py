"""The example lifecycle's steps, shared by the process-runtime tests
(tests/e2e/test_examples_lifecycle.py) and the Docker ones
(tests/docker/test_examples_lifecycle.py), which add their container checks between them."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.packages import EXAMPLES, color_variant, iris_variant, zipped

SETOSA = [5.1, 3.5, 1.4, 0.2]
CLI = [str(Path(sys.executable).parent / "modelport")]
TIMEOUT = 60  # a first request may wait for a cold container


def cli(platform: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "--url", platform.url], capture_output=True, text=True,
                          timeout=600)


def iris_answers_v1(url: str) -> None:
    """Version 1 answers a JSON body and a multipart field alike."""
    r = httpx.post(url, json={"features": SETOSA}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] is True and body["data"]["label"] == "setosa"
    assert body["metadata"]["version"] == 1 and body["metadata"]["request_id"]

    r = httpx.post(url, files={"features": (None, json.dumps(SETOSA))}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["label"] == "setosa"


def iris_update_and_roll_back(client: Any, name: str, url: str, first_zip: Path,
                              tmp_path: Path) -> None:
    """An update answers differently at the same URL; re-uploading the first package rolls
    back to version 1 without making a new version."""
    variant = zipped(iris_variant(tmp_path, ["SETOSA-v2", "VERSICOLOR-v2", "VIRGINICA-v2"]),
                     tmp_path / "iris2.zip")
    svc2 = client.update(name, variant)
    assert svc2["url"] == url and svc2["serving_version"] == 2
    r = httpx.post(url, json={"features": SETOSA}, timeout=TIMEOUT)
    assert r.json()["data"]["label"] == "SETOSA-v2"
    assert r.json()["metadata"]["version"] == 2

    back = client.update(name, first_zip)
    assert back["serving_version"] == 1
    r = httpx.post(url, json={"features": SETOSA}, timeout=TIMEOUT)
    assert r.json()["data"]["label"] == "setosa"
    assert [v["number"] for v in client.versions(name)] == [1, 2]


def iris_deleted(client: Any, name: str, url: str) -> None:
    client.delete(name)
    r = httpx.post(url, json={"features": SETOSA}, timeout=TIMEOUT)
    assert r.status_code == 404
    err = r.json()["error"]
    assert name in err["message"] and "not found" in err["message"]


def color_lifecycle_via_cli(platform: Any, tmp_path: Path, create_args: tuple[str, ...] = (),
                            created: Callable[[dict[str, Any]], None] | None = None) -> str:
    """The file-contract example through the CLI: create from zip -> predict (JSON with
    base64, multipart upload, `predict image=@file`) -> update at the same URL -> delete
    -> 404 and `get` says not found. ``created(svc)`` checks the new service. Returns
    the service's name."""
    pkg = zipped(EXAMPLES / "file-contract-color", tmp_path / "color.zip")
    res = cli(platform, "create", str(pkg), *create_args, "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    svc = json.loads(res.stdout)
    name, url = svc["name"], svc["url"]
    assert "curl" in svc["examples"] and "-F" in svc["examples"]["curl"]
    if created is not None:
        created(svc)

    sample = EXAMPLES / "file-contract-color" / "sample.png"
    image = sample.read_bytes()
    r = httpx.post(url, json={"image": base64.b64encode(image).decode(), "text": "red"},
                   timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["label"] == "red" and r.json()["data"]["matches_text"] is True

    r = httpx.post(url, files={"image": ("a.png", image, "image/png")}, data={"text": "blue"},
                   timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["label"] == "red" and r.json()["data"]["matches_text"] is False

    res = cli(platform, "predict", name, f"image=@{sample}", "text=red", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["data"]["label"] == "red"

    res = cli(platform, "update", name, str(color_variant(tmp_path)), "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["url"] == url
    r = httpx.post(url, files={"image": ("a.png", image)}, data={"text": "red"},
                   timeout=TIMEOUT)
    assert r.json()["data"]["label"] == "RED" and r.json()["data"]["variant"] == 2

    res = cli(platform, "delete", name)
    assert res.returncode == 0, res.stderr
    r = httpx.post(url, data={"text": "red"}, timeout=TIMEOUT)
    assert r.status_code == 404 and name in r.json()["error"]["message"]
    res = cli(platform, "get", name)
    assert res.returncode == 1 and "not found" in res.stderr
    return name
