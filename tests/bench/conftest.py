"""The bench scripts run as ``.venv/bin/python bench/<script>.py`` and import their shared
code as ``harness`` (bench/harness/); the tests put ``bench/`` on sys.path the same way."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
