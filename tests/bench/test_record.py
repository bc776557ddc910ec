"""bench/suite.py --record (bench/harness/report.py): the run goes on top of RESULTS.md,
newest first, nothing lost."""

from __future__ import annotations

from pathlib import Path

import harness.report
import pytest


@pytest.fixture
def report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(harness.report, "RESULTS", tmp_path / "RESULTS.md")
    return harness.report


def test_runs_go_on_top_newest_first_and_keep_the_rest(report) -> None:
    old = "# bench results\n\n- **date:** earlier\n\n## Streaming\n\nstreaming numbers\n"
    report.RESULTS.write_text(old)
    report.record("table one", "2026-01-01 10:00 UTC", "abc1234", "bench/suite.py")
    report.record("table two", "2026-01-02 10:00 UTC", "def5678 (+uncommitted changes)",
                  "bench/suite.py --seconds 10")
    doc = report.RESULTS.read_text()
    assert doc.startswith("# bench results\n\n" + report.RECORD_HEADING + "\n")
    assert doc.index("table two") < doc.index("table one") < doc.index("- **date:** earlier")
    assert "- **commit:** `def5678 (+uncommitted changes)`" in doc
    assert "- **command:** `bench/suite.py --seconds 10`" in doc
    assert doc.count(report.RECORD_HEADING) == 1
    # the untitled results that followed the title get a heading of their own
    assert doc.index("table one") < doc.index("## Earlier results\n\n- **date:** earlier")
    assert doc.endswith("## Streaming\n\nstreaming numbers\n")
