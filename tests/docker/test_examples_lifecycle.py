"""The foundation's example lifecycle (tests/e2e/test_examples_lifecycle.py) with
`runtime: docker`: create from zip -> predict (JSON, multipart) -> update -> same URL
answers differently -> roll back -> delete -> 404; each replica a container with no
network, its limits, and nothing left behind."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.docker.support import containers, docker_spec, wait_until
from tests.e2e.packages import EXAMPLES, color_variant, iris_variant, zipped

SETOSA = [5.1, 3.5, 1.4, 0.2]
CLI = [str(Path(sys.executable).parent / "modelport")]


def test_predictor_example_lifecycle(client, docker_client, tmp_path: Path) -> None:
    svc = client.create(zipped(EXAMPLES / "predictor-iris", tmp_path / "iris.zip"),
                        spec=docker_spec(resources={"cpu": 1, "memory": "512Mi"}))
    assert {"call", "url", "name"} <= set(svc)
    assert svc["phase"] == "running" and svc["serving_version"] == 1
    assert svc["spec"]["runtime"] == "docker"
    name, url = svc["name"], svc["url"]

    # the replica is a container of the version's image: no network, the spec's limits,
    # the worker's socket in a mounted directory
    (box,) = [c for c in containers(docker_client, name) if c.status == "running"]
    host = box.attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["NanoCpus"] == 1_000_000_000 and host["Memory"] == 512 * 2**20
    assert {m["Destination"] for m in box.attrs["Mounts"]} >= {"/run/modelport",
                                                               "/opt/modelport/shim"}
    assert box.image.tags[0].startswith("modelport/model:")

    r = httpx.post(url, json={"features": SETOSA}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] is True and body["data"]["label"] == "setosa"
    assert body["metadata"]["version"] == 1 and body["metadata"]["request_id"]

    r = httpx.post(url, files={"features": (None, json.dumps(SETOSA))}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["label"] == "setosa"

    variant = zipped(iris_variant(tmp_path, ["SETOSA-v2", "VERSICOLOR-v2", "VIRGINICA-v2"]),
                     tmp_path / "iris2.zip")
    svc2 = client.update(name, variant)
    assert svc2["url"] == url and svc2["serving_version"] == 2
    r = httpx.post(url, json={"features": SETOSA}, timeout=60)
    assert r.json()["data"]["label"] == "SETOSA-v2"
    assert r.json()["metadata"]["version"] == 2

    # uploading the first package again rolls back to version 1 without a new version
    back = client.update(name, tmp_path / "iris.zip")
    assert back["serving_version"] == 1
    r = httpx.post(url, json={"features": SETOSA}, timeout=60)
    assert r.json()["data"]["label"] == "setosa"
    assert [v["number"] for v in client.versions(name)] == [1, 2]
    # each version is its own image (content-tagged: made by this build or an earlier one)
    assert "modelport/model:" in client.build_log(name, 1)
    assert box.image.tags[0] not in client.build_log(name, 2)

    client.delete(name)
    r = httpx.post(url, json={"features": SETOSA}, timeout=60)
    assert r.status_code == 404
    err = r.json()["error"]
    assert name in err["message"] and "not found" in err["message"]
    wait_until(lambda: not containers(docker_client, name), 60, "containers to be removed")


def _cli(platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "--url", platform.url], capture_output=True, text=True,
                          timeout=600)


def test_file_contract_example_lifecycle_via_cli(docker_platform, docker_client,
                                                 tmp_path: Path) -> None:
    pkg = zipped(EXAMPLES / "file-contract-color", tmp_path / "color.zip")
    res = _cli(docker_platform, "create", str(pkg), "--runtime", "docker", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    svc = json.loads(res.stdout)
    name, url = svc["name"], svc["url"]
    assert svc["spec"]["runtime"] == "docker"
    assert "curl" in svc["examples"] and "-F" in svc["examples"]["curl"]
    assert [c for c in containers(docker_client, name) if c.status == "running"]

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
    res = _cli(docker_platform, "predict", name, f"image=@{sample}", "text=red", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["data"]["label"] == "red"

    res = _cli(docker_platform, "update", name, str(color_variant(tmp_path)), "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["url"] == url
    r = httpx.post(url, files={"image": ("a.png", image)}, data={"text": "red"}, timeout=60)
    assert r.json()["data"]["label"] == "RED" and r.json()["data"]["variant"] == 2

    res = _cli(docker_platform, "delete", name)
    assert res.returncode == 0, res.stderr
    r = httpx.post(url, data={"text": "red"}, timeout=60)
    assert r.status_code == 404 and name in r.json()["error"]["message"]
    res = _cli(docker_platform, "get", name)
    assert res.returncode == 1 and "not found" in res.stderr
    wait_until(lambda: not containers(docker_client, name), 60, "containers to be removed")


