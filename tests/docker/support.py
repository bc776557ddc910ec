"""Helpers for the Docker tests: the images they build on and finding a service's containers."""

from __future__ import annotations

import json
import os
import time
from typing import Any

#: the local base image .ci/docker-setup builds (debootstrap minbase + python3)
BASE_IMAGE = os.environ.get("MODELPORT_TEST_BASE_IMAGE", "modelport/base:bookworm")
#: what examples/file-contract-color names as its base_image
EXAMPLE_BASE_IMAGE = "python:3.11-slim"
DOCKER = json.dumps({"runtime": "docker"})


def docker_spec(**fields: Any) -> str:
    return json.dumps({"runtime": "docker", **fields})


def containers(client: Any, service: str) -> list[Any]:
    """The service's containers; one removed between docker's list and its inspect (the
    SDK inspects each) is left out instead of failing with NotFound."""
    return client.containers.list(all=True, filters={"label": f"modelport.service={service}"},
                                  ignore_removed=True)


def wait_until(check: Any, timeout_s: float = 120.0, what: str = "condition") -> Any:
    """Poll ``check()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)
