"""Task tests hand the ticker model paths under tmp_path (logs, gates)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import open_to_workers


@pytest.fixture(autouse=True)
def _ticker_reaches_tmp_path(tmp_path: Path) -> None:
    """Model workers run as users of their own when tests run as root (docs/security.md)."""
    open_to_workers(tmp_path)
