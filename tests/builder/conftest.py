from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import BuilderProcess, GatedIndex, make_wheel


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uv cache for the whole session, so repeated installs are fast."""
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture(scope="session")
def gate_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_wheel(tmp_path_factory.mktemp("wheels"))


@pytest.fixture
def gated_index(gate_wheel: Path) -> Iterator[GatedIndex]:
    index = GatedIndex(gate_wheel)
    yield index
    index.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def builder(home: Path, uv_cache: Path) -> Iterator[BuilderProcess]:
    process = BuilderProcess(home, uv_cache)
    yield process
    process.kill()
