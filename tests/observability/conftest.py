from __future__ import annotations

from pathlib import Path

import pytest

from services.runtime.shim_install import install_shim


@pytest.fixture(scope="session")
def shim_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding an installed ``modelport_worker`` (what PYTHONPATH points at)."""
    return install_shim(tmp_path_factory.mktemp("shim")).parent
