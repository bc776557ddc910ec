"""Both examples: create from zip -> predict (JSON, multipart) -> update -> same URL answers
differently -> delete -> 404 with a message (steps in tests/e2e/lifecycle_flows.py)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.lifecycle_flows import (
    color_lifecycle_via_cli,
    iris_answers_v1,
    iris_deleted,
    iris_update_and_roll_back,
)
from tests.e2e.packages import EXAMPLES, zipped


def test_predictor_example_lifecycle(client, tmp_path: Path) -> None:
    first = zipped(EXAMPLES / "predictor-iris", tmp_path / "iris.zip")
    svc = client.create(first)
    assert {"call", "url", "name"} <= set(svc)
    assert svc["phase"] == "running" and svc["serving_version"] == 1
    name, url = svc["name"], svc["url"]
    assert "features" in svc["examples"]["curl"]

    iris_answers_v1(url)
    iris_update_and_roll_back(client, name, url, first, tmp_path)
    iris_deleted(client, name, url)
    assert client.list()["message"] == [n for n in client.list()["message"] if n != name]


def test_file_contract_example_lifecycle_via_cli(platform, tmp_path: Path) -> None:
    color_lifecycle_via_cli(platform, tmp_path)
