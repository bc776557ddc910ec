"""Where things are: the checkout (``ROOT``, the cwd of every process the bench starts) and
``bench/`` itself."""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
MODELS = BENCH / "models"
