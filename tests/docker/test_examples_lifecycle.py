"""The foundation's example lifecycle (tests/e2e/lifecycle_flows.py) with
`runtime: docker`: create from zip -> predict (JSON, multipart) -> update -> same URL
answers differently -> roll back -> delete -> 404; each replica a container with no
network, its limits, and nothing left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.docker.support import containers, docker_spec, wait_until
from tests.e2e.lifecycle_flows import (
    color_lifecycle_via_cli,
    iris_answers_v1,
    iris_deleted,
    iris_update_and_roll_back,
)
from tests.e2e.packages import EXAMPLES, zipped


def test_predictor_example_lifecycle(client, docker_client, tmp_path: Path) -> None:
    first = zipped(EXAMPLES / "predictor-iris", tmp_path / "iris.zip")
    svc = client.create(first, spec=docker_spec(resources={"cpu": 1, "memory": "512Mi"}))
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

    iris_answers_v1(url)
    iris_update_and_roll_back(client, name, url, first, tmp_path)
    # each version is its own image (content-tagged: made by this build or an earlier one)
    assert "modelport/model:" in client.build_log(name, 1)
    assert box.image.tags[0] not in client.build_log(name, 2)

    iris_deleted(client, name, url)
    wait_until(lambda: not containers(docker_client, name), 60, "containers to be removed")


def test_file_contract_example_lifecycle_via_cli(docker_platform, docker_client,
                                                 tmp_path: Path) -> None:
    def created(svc: dict[str, Any]) -> None:
        assert svc["spec"]["runtime"] == "docker"
        assert [c for c in containers(docker_client, svc["name"]) if c.status == "running"]

    name = color_lifecycle_via_cli(docker_platform, tmp_path, ("--runtime", "docker"), created)
    wait_until(lambda: not containers(docker_client, name), 60, "containers to be removed")
