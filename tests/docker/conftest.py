"""Docker tests run against a real dockerd and a local base image (.ci/docker-setup makes
both). Without an engine they skip, unless CI is set: then they fail, saying why."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningPlatform, start_platform
from tests.docker.support import BASE_IMAGE, EXAMPLE_BASE_IMAGE


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {why}; .ci/docker-setup starts dockerd and builds the "
                    "base image", pytrace=False)
    pytest.skip(f"{why} (run .ci/docker-setup to enable the Docker tests)")


@pytest.fixture(scope="session")
def docker_client():  # noqa: ANN201
    """The engine's client; the examples' base image provided from the local one."""
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        _unavailable(f"no Docker engine answers ({exc})")
    try:
        base = client.images.get(BASE_IMAGE)
    except Exception:
        _unavailable(f"the base image {BASE_IMAGE} is not on the Docker host")
    try:
        example = client.images.get(EXAMPLE_BASE_IMAGE)
    except docker.errors.ImageNotFound:
        example = None
    if example is None or (example.id != base.id
                           and example.attrs.get("Comment", "").startswith("Imported")):
        # No registry is reachable from these hosts: provide the image the example names
        # the way an operator of an air-gapped host would (a local image under its name);
        # one that an earlier run provided this way follows the current base image
        repo, tag = EXAMPLE_BASE_IMAGE.split(":")
        base.tag(repo, tag)
    yield client
    client.close()


@pytest.fixture(scope="session")
def docker_platform(docker_client, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[RunningPlatform]:
    """One platform for every Docker test: images and dependencies built once are reused."""
    plat = start_platform(tmp_path_factory.mktemp("docker-home"),
                          env={"MODELPORT_BUILDER_DOCKER_BASE_IMAGE": BASE_IMAGE})
    yield plat
    plat.stop()


@pytest.fixture
def client(docker_platform: RunningPlatform):  # noqa: ANN201
    import modelport

    with modelport.Client(docker_platform.url) as c:
        yield c


@pytest.fixture
def home(docker_platform: RunningPlatform) -> Path:
    return docker_platform.home
