from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.worker.support import ShimProcess, copy_package, install_copy


@pytest.fixture(scope="session")
def shim_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_copy(tmp_path_factory.mktemp("shim"))


@pytest.fixture
def package(tmp_path: Path) -> Callable[[str], Path]:
    """A fresh copy of a test package (so nothing is written into the source tree)."""
    return lambda name: copy_package(name, tmp_path / "packages")


@pytest.fixture
def shim(shim_root: Path, package: Callable[[str], Path],
         tmp_path: Path) -> Iterator[Callable[..., ShimProcess]]:
    started: list[ShimProcess] = []

    def start(name: str, kind: str | None = None) -> ShimProcess:
        proc = ShimProcess(shim_root, package(name), tmp_path / f"{name}.log", kind)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.proc.kill()
        proc.close()
