"""bench/suite.py --record: the run goes on top of RESULTS.md, newest first, nothing lost."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[2] / "bench" / "suite.py"


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location("bench_suite_record", SUITE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_suite_record"] = module
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "RESULTS.md")
    return module


def test_runs_go_on_top_newest_first_and_keep_the_rest(suite) -> None:
    old = "# bench results\n\n- **date:** earlier\n\n## Streaming\n\nstreaming numbers\n"
    suite.RESULTS.write_text(old)
    suite.record("table one", "2026-01-01 10:00 UTC", "abc1234", "bench/suite.py")
    suite.record("table two", "2026-01-02 10:00 UTC", "def5678 (+uncommitted changes)",
                 "bench/suite.py --seconds 10")
    doc = suite.RESULTS.read_text()
    assert doc.startswith("# bench results\n\n" + suite.RECORD_HEADING + "\n")
    assert doc.index("table two") < doc.index("table one") < doc.index("- **date:** earlier")
    assert "- **commit:** `def5678 (+uncommitted changes)`" in doc
    assert "- **command:** `bench/suite.py --seconds 10`" in doc
    assert doc.count(suite.RECORD_HEADING) == 1
    # the untitled results that followed the title get a heading of their own
    assert doc.index("table one") < doc.index("## Earlier results\n\n- **date:** earlier")
    assert doc.endswith("## Streaming\n\nstreaming numbers\n")
