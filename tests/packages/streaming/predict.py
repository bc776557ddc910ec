import os
import time


class Stream:
    def predict(self, n, delay=0.0, gate=""):
        for i in range(n):
            if i and gate:
                # item i waits until the caller has seen item i-1 and created the gate file
                deadline = time.monotonic() + 30
                while not os.path.exists(f"{gate}.{i}") and time.monotonic() < deadline:
                    time.sleep(0.01)
            elif i:
                time.sleep(delay)
            yield {"i": i, "t": time.time()}
