"""A streaming model that shows what happened to it.

Yields ``n`` items. Before item i > 0 it waits for the file ``{gate}.{i}`` (when ``gate``
is set) or sleeps ``delay`` seconds. It appends ``made i`` to ``log`` as it yields each
item, and ``closed`` when its generator is closed early (the request was cancelled) or
``finished`` at the end; item ``fail_at`` raises instead. ``size`` pads each item.
"""

import os
import time


def _note(path, line):
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


class Ticker:
    def predict(self, n, delay, gate, log, fail_at, size):
        finished = False
        try:
            for i in range(n):
                if i and gate:
                    deadline = time.monotonic() + 60
                    while not os.path.exists(f"{gate}.{i}") and time.monotonic() < deadline:
                        time.sleep(0.01)
                elif i:
                    time.sleep(delay)
                if i == fail_at:
                    raise RuntimeError(f"item {i} failed")
                _note(log, f"made {i}")
                yield {"i": i, "pad": "x" * size}
            finished = True
        finally:
            _note(log, "finished" if finished else "closed")
