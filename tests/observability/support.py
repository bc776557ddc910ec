"""A small model package for the observability scenarios, and helpers to read replies."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

MODEL = '''\
import sys


class Model:
    def setup(self):
        print("obs-model: setup done", flush=True)

    def predict(self, text, repeat=0):
        print(f"obs-model saw: {text}", flush=True)
        for i in range(int(repeat)):
            print(f"obs-model filler {i:05d} " + "x" * 80)
        sys.stdout.flush()
        if text == "boom":
            raise ValueError("asked to fail")
        return {"echo": text}
'''


def observed_package(root: Path) -> Path:
    """A predictor that prints what it sees, prints `repeat` filler lines, and raises on
    "boom"."""
    pkg = root / "obs-model"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "predict.py").write_text(MODEL)
    (pkg / "config.json").write_text(json.dumps({
        "name": "obs-model", "predictor": "predict:Model",
        "input": [{"name": "text", "type": "text"}, {"name": "repeat", "type": "number"}],
        "output": [{"name": "echo", "type": "json"}]}))
    return pkg


def traceparent() -> tuple[str, str, str]:
    """(header, trace id, parent span id) of a fresh sampled W3C traceparent."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id
