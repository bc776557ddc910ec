"""A newcomer's first `modelport top` is in an 80-column terminal: every cell shows whole
(rendered by rich at width 80, as the command does)."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from modelport.cli.observe import stats_table


def service(name: str, phase: str, version: int | None, ready: tuple[int, int], rps: float,
            calls: int, failed: int, p50: float | None, p99: float | None,
            in_flight: int) -> dict[str, Any]:
    """One entry of GET /api/v1/stats."""
    window = {"rps": rps, "calls": calls, "failed": failed, "success": calls - failed,
              "error_rate": failed / calls if calls else 0.0,
              "latency_ms": {"p50": p50, "p90": p99, "p99": p99}}
    return {"service": name, "phase": phase, "serving_version": version,
            "ready_replicas": ready[0], "desired_replicas": ready[1], "in_flight": in_flight,
            "windows": {"1m": window, "5m": window, "15m": window},
            "total": {"calls": calls * 100}}


ROWS = [
    # (the stats entry, the cells `top` must show whole)
    (service("sentiment-classifier-prod", "running", 12, (10, 10), 1234.5, 174070, 1234, 12.3,
             1234.0, 17), ["sentiment-classifier-prod", "running", "12", "10/10", "1234",
                           "174070", "1234", "12.3", "1234", "17"]),
    (service("iris", "deploying", None, (0, 1), 0.0, 0, 0, None, None, 0),
     ["iris", "deploying", "-", "0/1", "0.00", "0", "0", "-", "-", "0"]),
    (service("ocr", "failed", 3, (0, 2), 99.99, 5999, 5999, 0.4, 99.9, 0),
     ["ocr", "failed", "3", "0/2", "99.99", "5999", "5999", "0.4", "99.9", "0"]),
]


def render(data: dict[str, Any], window: str = "1m") -> list[str]:
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(stats_table(data, window))
    return console.export_text().splitlines()


def test_top_fits_80_columns_and_cuts_no_cell() -> None:
    lines = render({"services": [entry for entry, _ in ROWS]})
    assert all(len(line) <= 80 for line in lines)
    assert not any("…" in line for line in lines)
    header = next(line for line in lines if "SERVICE" in line).split()
    assert header == ["SERVICE", "PHASE", "VER", "READY", "RPS", "CALLS", "FAIL", "P50", "P99",
                      "INFL"]
    for _, cells in ROWS:
        row = next(line for line in lines if line.split()[:1] == cells[:1])
        assert row.split() == cells, row


def test_a_long_name_wraps_whole_and_no_services_says_so() -> None:
    name = "a-service-name-of-forty-characters-long1"
    entry = service(name, "running", 1, (1, 1), 1.0, 60, 0, 1.0, 2.0, 0)
    lines = render({"services": [entry]}, "5m")
    assert all(len(line) <= 80 for line in lines) and not any("…" in ln for ln in lines)
    body = lines[next(i for i, line in enumerate(lines) if "SERVICE" in line) + 1:]
    assert "".join(line.split()[0] for line in body if line.strip()) == name
    assert any("(no services)" in line for line in render({"services": []}))
