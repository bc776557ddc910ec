"""Adaptive batching end to end: concurrent REST calls through the gateway share one
predict_batch call, and each caller gets its own answer."""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from modelport.home import HomeLayout
from tests.conftest import RunningPlatform, open_to_workers

PACKAGE = Path(__file__).resolve().parents[1] / "packages" / "batching"
BATCH = 6


def batches_sent(plat: RunningPlatform, service: str) -> tuple[float, float]:
    """(batches, requests in them) the runtime sent for ``service``, from its /metrics."""
    url = json.loads((HomeLayout(plat.home).run / "runtime-metrics.json").read_text())["url"]
    count = total = 0.0
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            if sample.labels.get("service") != service:
                continue
            if sample.name == "modelport_batch_size_count":
                count += sample.value
            elif sample.name == "modelport_batch_size_sum":
                total += sample.value
    return count, total


def wait_until(check, what: str, timeout_s: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def test_concurrent_rest_calls_are_batched_and_each_gets_its_own_answer(
        client, platform: RunningPlatform, tmp_path: Path) -> None:  # noqa: ANN001
    src = tmp_path / "batching"
    shutil.copytree(PACKAGE, src)
    config = json.loads((src / "config.json").read_text())
    config["batching"] = {"max_batch_size": BATCH, "max_latency_ms": 60000}
    (src / "config.json").write_text(json.dumps(config))
    svc = client.create(src, name="batching-e2e")
    gate = open_to_workers(tmp_path / "gates") / "open"

    def call(body: dict) -> httpx.Response:
        # the gateway wants every declared input: no gate and mode "ok" unless given
        return httpx.post(svc["url"], json={"mode": "ok", "gate": "", **body}, timeout=60)

    with ThreadPoolExecutor(BATCH + 1) as pool:
        # the worker is idle: the first call goes at once, alone, and holds the worker
        first = pool.submit(call, {"x": 100, "gate": str(gate)})
        wait_until(lambda: batches_sent(platform, svc["name"]) == (1, 1), "the first call ran")
        # these wait for the running batch; the sixth fills theirs and sends it
        rest = [pool.submit(call, {"x": x}) for x in range(BATCH)]
        wait_until(lambda: batches_sent(platform, svc["name"]) == (2, 1 + BATCH),
                   f"a batch of {BATCH} was sent")
        gate.touch()
        r = first.result()
        assert r.status_code == 200, r.text
        assert r.json()["data"] == {"y": 200, "batch": 1}
        for x, future in enumerate(rest):
            r = future.result()
            assert r.status_code == 200, r.text
            assert r.json()["data"] == {"y": 2 * x, "batch": BATCH}

    # one bad item in a batch fails only its own caller
    gate.unlink()
    with ThreadPoolExecutor(BATCH + 1) as pool:
        first = pool.submit(call, {"x": 1, "gate": str(gate)})
        wait_until(lambda: batches_sent(platform, svc["name"])[0] == 3, "the gate call ran")
        bodies = [{"x": 1}, {"x": 2, "mode": "bad"}] + [{"x": x} for x in range(3, BATCH + 1)]
        rest = [pool.submit(call, body) for body in bodies]
        wait_until(lambda: batches_sent(platform, svc["name"])[0] == 4, "the batch was sent")
        gate.touch()
        assert first.result().status_code == 200
        answers = [f.result() for f in rest]
    bad = answers[1]
    assert bad.status_code >= 500 and "ValueError: bad item x=2" in bad.text, bad.text
    for body, r in zip(bodies, answers, strict=True):
        if body.get("mode") != "bad":
            assert r.status_code == 200, r.text
            assert r.json()["data"] == {"y": 2 * body["x"], "batch": BATCH}
    client.delete(svc["name"])
