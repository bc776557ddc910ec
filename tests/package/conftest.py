"""Helpers that build real package folders and zips on disk."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest


def write_tree(root: Path, files: dict[str, str | bytes | dict[str, Any]]) -> Path:
    """Write files under ``root``; dict values are written as JSON."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            path.write_text(json.dumps(content, indent=2))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def make_zip(path: Path, entries: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def pkg_dir(tmp_path: Path) -> Path:
    d = tmp_path / "pkg"
    d.mkdir()
    return d
