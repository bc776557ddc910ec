"""Adaptive batching probe: answers each item with the batch size it was called with.

Per-item ``mode``: ``bad`` returns a ValueError for that item (a per-item error), ``raise``
makes the whole predict_batch raise, ``short`` drops the last result (a wrong-length
list). ``gate``: a path; the batch holding it waits until that file exists, so a test can
keep the worker busy while more requests arrive.
"""

import os
import time


def _wait_for(path):
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gate {path} never opened")
        time.sleep(0.005)


class Predictor:
    def predict(self, x, mode="ok", gate=None):
        return {"y": x * 2, "batch": 0}

    def predict_batch(self, inputs):
        for item in inputs:
            if item.get("gate"):
                _wait_for(item["gate"])
        modes = {item.get("mode", "ok") for item in inputs}
        if "raise" in modes:
            raise RuntimeError(f"the model failed on a batch of {len(inputs)}")
        out = []
        for item in inputs:
            if item.get("mode") == "bad":
                out.append(ValueError(f"bad item x={item['x']}"))
            else:
                out.append({"y": item["x"] * 2, "batch": len(inputs)})
        return out[:-1] if "short" in modes else out
