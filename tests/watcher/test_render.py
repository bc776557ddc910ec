"""YAML -> desired services: several documents per file, file and line for every problem."""

from __future__ import annotations

from services.watcher.render import Renderer, parse_file

GOOD = b"""apiVersion: modelport/v1
kind: ModelService
metadata: {name: good}
spec:
  package: ../models/echo
  replicas: 2
"""


def test_several_documents_and_unknown_kinds_are_noted() -> None:
    text = GOOD + b"""---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
apiVersion: modelport/v1
kind: ModelService
metadata: {name: other}
spec: {model: {name: good, version: 1}}
"""
    res = Renderer().render({"config/a.yaml": text})
    assert sorted(res.services) == ["good", "other"]
    assert res.services["good"].line == 1 and res.services["other"].line == 12
    assert res.services["good"].package_line == 5
    assert res.notes == ["config/a.yaml:8: kind 'Deployment' is not handled by modelport; "
                         "document ignored"]
    assert not res.failures


def test_invalid_field_is_located_by_line_and_only_that_service_fails() -> None:
    bad = b"""apiVersion: modelport/v1
kind: ModelService
metadata:
  name: bad
spec:
  package: ../models/echo
  replicas: -1
"""
    res = Renderer().render({"config/good.yaml": GOOD, "config/bad.yaml": bad})
    assert list(res.services) == ["good"]
    [f] = res.failures
    assert (f.file, f.line, f.service) == ("config/bad.yaml", 7, "bad")
    assert "spec.replicas" in f.message and "greater than or equal to 0" in f.message


def test_unexpected_field_points_at_its_key() -> None:
    text = GOOD.replace(b"  replicas: 2\n", b"  replicas: 2\n  colour: red\n")
    [f] = parse_file("x.yaml", text).failures
    assert f.line == 7 and "spec.colour" in f.message


def test_yaml_syntax_error_gives_the_line() -> None:
    res = parse_file("config/broken.yaml", b"apiVersion: modelport/v1\nmetadata: {name: x\n"
                     b"spec: {}\n")
    [f] = res.failures
    assert f.file == "config/broken.yaml" and f.line in (2, 3) and "invalid YAML" in f.message


def test_duplicate_names_fail_both_declarations() -> None:
    res = Renderer().render({"a.yaml": GOOD, "b.yaml": GOOD})
    assert "good" not in res.services
    [f] = res.failures
    assert f.file == "b.yaml" and "declared twice" in f.message and "a.yaml:1" in f.message


def test_gitops_config_turns_pruning_off() -> None:
    res = Renderer().render({"repo.yaml": b"apiVersion: modelport/v1\nkind: GitOpsConfig\n"
                                          b"spec: {prune: false}\n"})
    assert res.prune is False and not res.failures
    res = Renderer().render({"repo.yaml": b"kind: GitOpsConfig\nspec: {prune: maybe}\n"})
    assert res.failures and res.failures[0].line == 2


def test_package_and_model_together_is_a_failure_with_a_line() -> None:
    text = GOOD + b"  model: {name: x}\n"
    [f] = parse_file("c.yaml", text).failures
    assert f.service == "good" and "exclusive" in f.message and f.line >= 4
