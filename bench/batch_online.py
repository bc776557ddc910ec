"""Online latency beside a running batch job: does batch traffic yield to online traffic?

Run as ``.venv/bin/python bench/batch_online.py [--seconds 20] [--clients 4]``. In one run
it starts ``modelport up`` on a fresh temporary home, deploys one service (a 10 ms model,
2 replicas of concurrency 2), then measures the same closed-loop online load twice, side
by side: alone, and while a batch job over the same service runs at its default
concurrency (1). It prints both p50/p99 and the ratio; the target (issue 17) is an online
p99 within 2x of the one without the batch. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from harness.platform import running
from harness.report import context

MODEL = """
import time

class Predictor:
    def predict(self, text):
        time.sleep(0.010)
        return {"echo": text}
"""
SPEC = {"replicas": 2, "concurrency": 2}


def package(root: Path) -> Path:
    pkg = root / "sleepy"
    pkg.mkdir()
    (pkg / "config.json").write_text(json.dumps({
        "name": "sleepy", "predictor": "predict:Predictor",
        "input": [{"name": "text", "type": "text"}]}))
    (pkg / "predict.py").write_text(MODEL)
    return pkg


def load(url: str, clients: int, seconds: float) -> tuple[list[float], int]:
    """Closed-loop clients for ``seconds``; latencies in ms and the count of failures."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client() -> None:
        nonlocal failures
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < end:
                t0 = time.perf_counter()
                r = http.post(url, json={"text": "online"})
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    if r.status_code == 200:
                        latencies.append(ms)
                    else:
                        failures += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failures


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    print(context(__file__))
    with tempfile.TemporaryDirectory(prefix="mp-bench-batch-") as tmp, \
            running(Path(tmp)) as plat:
        svc = plat.deploy(package(Path(tmp)), "sleepy", spec=json.dumps(SPEC))
        url = svc["url"]
        load(url, args.clients, 3.0)  # warm-up, thrown away
        alone, alone_failed = load(url, args.clients, args.seconds)
        items = Path(tmp) / "items.jsonl"
        items.write_text("".join(json.dumps({"text": f"b{i}"}) + "\n" for i in range(20000)))
        with plat.client() as c:
            job = c.batch_create("sleepy", items)
            time.sleep(2.0)  # the batch is flowing before the measured phase
            beside, beside_failed = load(url, args.clients, args.seconds)
            progress = c.batch(job["id"])
            c.batch_cancel(job["id"])
    p99_alone, p99_beside = pct(alone, 99), pct(beside, 99)
    ratio = p99_beside / p99_alone if p99_alone else float("inf")
    print(f"\nonline load: {args.clients} closed-loop clients, {args.seconds:g} s each phase")
    print(f"{'phase':<22}{'requests':>10}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"{'alone':<22}{len(alone):>10}{alone_failed:>8}{pct(alone, 50):>9.2f}"
          f"{p99_alone:>9.2f}")
    print(f"{'beside a batch job':<22}{len(beside):>10}{beside_failed:>8}"
          f"{pct(beside, 50):>9.2f}{p99_beside:>9.2f}")
    print(f"batch items done meanwhile: {progress['done']} ({progress['items_per_s']:g}/s)")
    print(f"online p99 beside / alone: {ratio:.2f}x (target <= 2.00x: "
          f"{'pass' if ratio <= 2.0 else 'MISS'})")


if __name__ == "__main__":
    main()
