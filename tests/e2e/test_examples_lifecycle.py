"""Both examples: create from zip -> predict (JSON, multipart) -> update -> same URL answers
differently -> delete -> 404 with a message."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.packages import EXAMPLES, color_variant, iris_variant, zipped

SETOSA = [5.1, 3.5, 1.4, 0.2]
CLI = [str(Path(sys.executable).parent / "modelport")]


def test_predictor_example_lifecycle(client, tmp_path: Path) -> None:
    svc = client.create(zipped(EXAMPLES / "predictor-iris", tmp_path / "iris.zip"))
    assert {"call", "url", "name"} <= set(svc)
    assert svc["phase"] == "running" and svc["serving_version"] == 1
    url = svc["url"]
    assert "features" in svc["examples"]["curl"]

    r = httpx.post(url, json={"features": SETOSA})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] is True and body["data"]["label"] == "setosa"
    assert body["metadata"]["version"] == 1 and body["metadata"]["request_id"]

    r = httpx.post(url, files={"features": (None, json.dumps(SETOSA))})  # multipart field
    assert r.status_code == 200, r.text
    assert r.json()["data"]["label"] == "setosa"

    variant = zipped(iris_variant(tmp_path, ["SETOSA-v2", "VERSICOLOR-v2", "VIRGINICA-v2"]),
                     tmp_path / "iris2.zip")
    svc2 = client.update(svc["name"], variant)
    assert svc2["url"] == url and svc2["serving_version"] == 2
    r = httpx.post(url, json={"features": SETOSA})
    assert r.json()["data"]["label"] == "SETOSA-v2"
    assert r.json()["metadata"]["version"] == 2

    # uploading the first package again rolls back to version 1 without a new version
    back = client.update(svc["name"], tmp_path / "iris.zip")
    assert back["serving_version"] == 1
    assert httpx.post(url, json={"features": SETOSA}).json()["data"]["label"] == "setosa"
    assert [v["number"] for v in client.versions(svc["name"])] == [1, 2]

    client.delete(svc["name"])
    r = httpx.post(url, json={"features": SETOSA})
    assert r.status_code == 404
    err = r.json()["error"]
    assert svc["name"] in err["message"] and "not found" in err["message"]
    assert client.list()["message"] == [n for n in client.list()["message"] if n != svc["name"]]


def _cli(platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "--url", platform.url], capture_output=True, text=True,
                          timeout=600)


def test_file_contract_example_lifecycle_via_cli(platform, tmp_path: Path) -> None:
    pkg = zipped(EXAMPLES / "file-contract-color", tmp_path / "color.zip")
    res = _cli(platform, "create", str(pkg), "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    svc = json.loads(res.stdout)
    name, url = svc["name"], svc["url"]
    assert "curl" in svc["examples"] and "-F" in svc["examples"]["curl"]

    image = (EXAMPLES / "file-contract-color" / "sample.png").read_bytes()
    r = httpx.post(url, json={"image": base64.b64encode(image).decode(), "text": "red"},
                   timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["label"] == "red" and r.json()["data"]["matches_text"] is True

    r = httpx.post(url, files={"image": ("a.png", image, "image/png")}, data={"text": "blue"},
                   timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["label"] == "red" and r.json()["data"]["matches_text"] is False

    sample = EXAMPLES / "file-contract-color" / "sample.png"
    res = _cli(platform, "predict", name, f"image=@{sample}", "text=red", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["data"]["label"] == "red"

    res = _cli(platform, "update", name, str(color_variant(tmp_path)), "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["url"] == url
    r = httpx.post(url, files={"image": ("a.png", image)}, data={"text": "red"}, timeout=60)
    assert r.json()["data"]["label"] == "RED" and r.json()["data"]["variant"] == 2

    res = _cli(platform, "delete", name)
    assert res.returncode == 0, res.stderr
    r = httpx.post(url, data={"text": "red"})
    assert r.status_code == 404 and name in r.json()["error"]["message"]
    res = _cli(platform, "get", name)
    assert res.returncode == 1 and "not found" in res.stderr
