"""One platform for the security tests (auth on, as always), and helpers to deploy on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import modelport
from tests.conftest import RunningPlatform, start_platform

PACKAGES = Path(__file__).parent / "packages"


@pytest.fixture(scope="package")
def sec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    plat = start_platform(tmp_path_factory.mktemp("sec-home"))
    yield plat
    plat.stop()


@pytest.fixture(scope="package")
def admin(sec: RunningPlatform) -> Iterator[modelport.Client]:
    with modelport.Client(sec.url) as c:
        yield c


def deploy(client: modelport.Client, package: str, name: str, **spec: Any) -> dict[str, Any]:
    """Create (or update) ``name`` from tests/security/packages/<package> with this spec."""
    return client.apply(name, json.dumps(spec), PACKAGES / package, timeout=300)


def ensure(client: modelport.Client, package: str, name: str, **spec: Any) -> dict[str, Any]:
    """The service, deployed once per platform."""
    try:
        svc = client.get(name)
        if svc["phase"] == "running":
            return svc
    except modelport.ModelportError:
        pass
    return deploy(client, package, name, **spec)
