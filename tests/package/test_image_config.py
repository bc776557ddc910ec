"""Custom image packages (issue 17 §2): what config.json may say, and every mistake named
with its path and fix (ModelArts' own wording where it has one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelport.errors import ModelportError
from modelport.package import load_package

from .conftest import write_tree

DOCKERFILE = "FROM modelport/base:bookworm\nCOPY server.py /app/server.py\n"


def problems(root: Path) -> dict[str, tuple[str, str, str]]:
    """path -> (code, message, fix) of every problem the package has."""
    with pytest.raises(ModelportError) as exc:
        load_package(root)
    assert exc.value.code == "package.invalid"
    return {p.path: (p.code, p.message, p.fix) for p in exc.value.problems}


def image_pkg(root: Path, config: dict[str, Any], **files: str) -> Path:
    return write_tree(root, {"config.json": config, "Dockerfile": DOCKERFILE,
                             "server.py": "print('hi')\n", **files})


def test_a_dockerfile_package_is_a_custom_image(pkg_dir: Path) -> None:
    pkg = load_package(image_pkg(pkg_dir, {
        "model_type": "Image", "model_algorithm": "echo_server",
        "image": {"dockerfile": "Dockerfile"}, "port": 9000,
        "health": {"check_method": "http", "url": "/ready", "period_seconds": "5",
                   "failure_threshold": 3},
        "apis": [{"url": "/infer", "method": "post"}, {"url": "/v2/models/m/predict"}]},
        **{"requirements.txt": "numpy\n"}))
    assert pkg.kind == "image" and pkg.name == "echo_server"
    assert (pkg.dockerfile, pkg.image, pkg.port) == ("Dockerfile", None, 9000)
    assert pkg.requirements == ""  # a file of the build context, installed by the image
    assert pkg.interface() == {"kind": "image", "inputs": [], "outputs": [], "port": 9000,
                               "paths": ["/infer", "/v2/models/m/predict"]}
    assert pkg.health is not None and pkg.health.period_seconds == 5


def test_an_image_reference_needs_no_model_type(pkg_dir: Path) -> None:
    write_tree(pkg_dir, {"config.json": {"image": "registry.local:5000/team/echo:1.2"}})
    pkg = load_package(pkg_dir)
    assert (pkg.kind, pkg.image, pkg.port, pkg.name) == (
        "image", "registry.local:5000/team/echo:1.2", 8080, "echo")


def test_every_mistake_is_named_with_its_fix(pkg_dir: Path) -> None:
    found = problems(image_pkg(pkg_dir, {
        "model_type": "Image", "image": {"dockerfile": "docker/Nope"},
        "dependencies": [{"installer": "pip", "packages": [{"package_name": "numpy"}]}],
        "health": {"check_method": "EXEC"}, "base_image": "python:3.11-slim",
        "python": "3.11", "port": 70000}))
    assert found["config.json:$.image.dockerfile"][0] == "package.dockerfile_missing"
    assert "Dockerfile, config.json, server.py" in found["config.json:$.image.dockerfile"][1]
    code, message, fix = found["config.json:$.dependencies"]
    assert message == "Customize model does not support dependencies"  # ModelArts' words
    assert "Dockerfile" in fix
    assert found["config.json:$.health"][0] == "package.health_command"
    assert found["config.json:$.base_image"][0] == "package.image_base_image"
    assert found["config.json:$.python"][0] == "package.image_python"
    assert found["config.json:$.port"][0] == "package.bad_value"


@pytest.mark.parametrize(("config", "path", "code", "words"), [
    ({"model_type": "Image"}, "$", "package.image_missing", '"image": "name:tag"'),
    ({"model_type": "Image", "swr_location": "swr.cn-north-4.myhuaweicloud.com/a/b:1"},
     "$", "package.image_swr_location", "docker load"),
    ({"image": "Not A Ref"}, "$.image", "package.image_ref", "docker images"),
    ({"image": {"dockerfil": "Dockerfile"}}, "$.image", "package.unknown_field",
     "did you mean 'dockerfile'?"),
    ({"image": 7}, "$.image", "package.image_type", "dockerfile"),
    ({"model_type": "PyTorch", "model_algorithm": "x", "image": "a:1"}, "$.model_type",
     "package.model_type", "customize_service.py"),
    ({"image": "a:1", "health": {"protocol": "https"}}, "$.health",
     "package.health_protocol", "plain HTTP"),
    ({"image": "a:1", "health": {"url": "health"}}, "$.health", "package.health_url",
     '"/health"'),
    ({"image": {"dockerfile": "../Dockerfile"}}, "$.image.dockerfile",
     "package.path_outside", "inside the package"),
])
def test_one_mistake(pkg_dir: Path, config: dict, path: str, code: str, words: str) -> None:
    found = problems(image_pkg(pkg_dir, config))
    got = found[f"config.json:{path}"]
    assert got[0] == code, found
    assert words in got[1] + " " + got[2], got
