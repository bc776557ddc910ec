"""docs/settings.md is what the settings classes render, and names every MODELPORT_*
variable the code reads (so a new setting cannot go undocumented)."""

from __future__ import annotations

import re
from pathlib import Path

from services.component.settings_reference import PAGE, render

ROOT = Path(__file__).resolve().parents[1]
VARIABLE = re.compile(r"MODELPORT_[A-Z][A-Z0-9_]*[A-Z0-9]")


def test_the_page_is_current() -> None:
    assert PAGE.read_text() == render(), (
        "docs/settings.md is stale: run `.venv/bin/python -m "
        "services.component.settings_reference` and commit the page")


def test_every_variable_the_code_names_is_on_the_page() -> None:
    page = PAGE.read_text()
    named: set[str] = set()
    for path in [*ROOT.glob("modelport/**/*.py"), *ROOT.glob("services/**/*.py")]:
        if "_pb2" in path.name:
            continue
        named |= set(VARIABLE.findall(path.read_text()))
    prefixes = {"MODELPORT_BUILDER", "MODELPORT_GATEWAY", "MODELPORT_REGISTRY",
                "MODELPORT_RUNTIME"}
    missing = sorted(v for v in named - prefixes if v not in page)
    assert not missing, f"undocumented in docs/settings.md: {missing}"
