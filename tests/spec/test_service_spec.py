"""The ModelService spec: parsing, all-problems-at-once, and the committed JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelport.errors import ModelportError
from modelport.spec.service import SCHEMA_PATH, json_schema, load_service_file

ROOT = Path(__file__).resolve().parents[2]


def test_several_documents_per_file() -> None:
    docs = load_service_file(
        "apiVersion: modelport/v1\nkind: ModelService\nmetadata: {name: a}\nspec: {replicas: 2}\n"
        "---\napiVersion: modelport/v1\nkind: ModelService\nmetadata: {name: b}\n"
        "spec: {model: {name: a, version: 1}}\n")
    assert [d.metadata.name for d in docs] == ["a", "b"]
    assert docs[0].spec.replicas == 2 and docs[1].spec.model.version == 1


def test_every_problem_reported_with_path() -> None:
    with pytest.raises(ModelportError) as exc:
        load_service_file("metadata: {name: A_}\nspec: {replicas: -1, resources: {memory: "
                          "lots}}\n", "svc.yaml")
    paths = [p.path for p in exc.value.problems]
    assert paths == ["svc.yaml:$.metadata.name", "svc.yaml:$.spec.replicas",
                     "svc.yaml:$.spec.resources.memory"]


def test_package_and_model_are_exclusive() -> None:
    with pytest.raises(ModelportError) as exc:
        load_service_file("metadata: {name: a}\nspec: {package: x, model: {name: a}}\n")
    assert exc.value.code == "service.package_and_model"


def test_committed_schema_is_current() -> None:
    committed = json.loads((ROOT / SCHEMA_PATH).read_text())
    assert committed == json_schema(), "run `python -m modelport.spec.service` and commit"
