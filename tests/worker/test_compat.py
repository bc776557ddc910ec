"""The worker runs inside the user's environment: Python >= 3.8, stdlib only, relative imports."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parents[2] / "modelport" / "worker"
SOURCES = sorted(WORKER.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(WORKER)))
def test_parses_as_python_3_8(path: Path) -> None:
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(WORKER)))
def test_imports_only_the_stdlib_and_its_own_modules(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            # numpy is imported lazily, only when the user's model needs tensors; orjson
            # only when present (the runtime's and gateway's side), with a stdlib fallback
            assert top in sys.stdlib_module_names or top in ("numpy", "orjson"), (
                f"{path.name}:{node.lineno} imports {name}: the worker must stay stdlib-only "
                "and import its own modules relatively")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(WORKER)))
def test_uses_postponed_annotations(path: Path) -> None:
    """``list[str]`` and ``X | None`` in annotations are only safe on 3.8 when postponed."""
    source = path.read_text()
    tree = ast.parse(source)
    has_annotations = any(
        isinstance(n, (ast.AnnAssign, ast.arg)) and n.annotation is not None
        or isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.returns is not None
        for n in ast.walk(tree))
    if has_annotations:
        assert "from __future__ import annotations" in source
