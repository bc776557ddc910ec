"""The iris predictor (``examples/predictor-iris``) measured two ways: imported in this
process, and through the gateway's ``POST /v1/services/iris/infer`` with httpx (bench/run.py
compares the two; bench/tracing.py measures the gateway rows with tracing on and off).

The model is deliberately tiny (~0.03 ms per predict), so the gateway rows measure the
platform. Every answer is checked (200, label ``setosa``) outside the timed span: a fast
wrong answer never counts.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from typing import Any

import httpx

from harness.paths import ROOT
from harness.platform import Platform
from harness.processes import CpuProbe
from harness.timing import Stats, concurrent_loop, timed_loop, warm_then_measure

EXAMPLE = ROOT / "examples" / "predictor-iris"
SERVICE = "iris"
FEATURES = [5.1, 3.5, 1.4, 0.2]
EXPECTED_LABEL = "setosa"
BODY = json.dumps({"features": FEATURES}).encode()
HEADERS = {"content-type": "application/json"}
DEPLOY_TIMEOUT_S = 600.0
INFER_PATH = f"/v1/services/{SERVICE}/infer"


def deploy(plat: Platform) -> dict:
    return plat.deploy(EXAMPLE, SERVICE, DEPLOY_TIMEOUT_S)


def load_predictor() -> Any:
    """``predict.py`` imported with importlib, ``setup()`` run once."""
    spec = importlib.util.spec_from_file_location("bench_iris_predict", EXAMPLE / "predict.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    predictor = module.Predictor()
    predictor.setup()
    return predictor


def bench_in_process(predictor: Any, seconds: float, warmup: float, probe: CpuProbe) -> Stats:
    def run(stats: Stats, duration: float) -> float:
        return timed_loop(lambda: predictor.predict(features=FEATURES), duration,
                          lambda ns, out: check_in_process(stats, ns, out))

    return warm_then_measure("in-process predict()", 1, seconds, warmup, probe, run)


def check_in_process(stats: Stats, ns: int, out: dict) -> None:
    stats.latencies_ns.append(ns)
    if out["label"] != EXPECTED_LABEL:
        raise RuntimeError(f"in-process predict returned {out!r}")


def check_infer(stats: Stats, ns: int, resp: httpx.Response) -> None:
    """Count one infer answer: its latency, and an error unless it is 200 with the right
    label; keep the gateway's and the worker's own durations from its metadata."""
    stats.latencies_ns.append(ns)
    if resp.status_code != 200:
        stats.errors += 1
        if stats.errors == 1:
            print(f"bench: first error from the gateway: {resp.status_code} {resp.text[:300]}",
                  file=sys.stderr)
        return
    doc = resp.json()
    if doc["data"]["label"] != EXPECTED_LABEL:
        stats.errors += 1
        return
    meta = doc["metadata"]
    stats.gw_duration_ms.append(meta["duration"])
    stats.worker_ms.append(meta["worker_duration"])


def check_health(stats: Stats, ns: int, resp: httpx.Response) -> None:
    if resp.status_code == 200:
        stats.latencies_ns.append(ns)
    else:
        stats.errors += 1


def bench_health(url: str, seconds: float, warmup: float, probe: CpuProbe) -> Stats:
    """``GET /health`` on a keep-alive client: the HTTP floor, no gRPC, no model."""
    with httpx.Client(base_url=url, timeout=30.0) as client:
        def run(stats: Stats, duration: float) -> float:
            return timed_loop(lambda: client.get("/health"), duration,
                              lambda ns, resp: check_health(stats, ns, resp))

        return warm_then_measure("gateway GET /health", 1, seconds, warmup, probe, run)


def _bench_infer_sync(url: str, name: str, seconds: float, warmup: float,
                      probe: CpuProbe) -> Stats:
    with httpx.Client(base_url=url, timeout=30.0) as client:
        def run(stats: Stats, duration: float) -> float:
            return timed_loop(lambda: client.post(INFER_PATH, content=BODY, headers=HEADERS),
                              duration, lambda ns, resp: check_infer(stats, ns, resp))

        return warm_then_measure(name, 1, seconds, warmup, probe, run)


async def _bench_infer_async(url: str, name: str, concurrency: int, seconds: float,
                             warmup: float, probe: CpuProbe) -> Stats:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:
        for duration in (warmup, seconds):  # the last pass is the measured one
            stats = Stats(name, concurrency)
            probe.start()
            stats.elapsed_s = await concurrent_loop(
                lambda: client.post(INFER_PATH, content=BODY, headers=HEADERS), concurrency,
                duration, lambda ns, resp, stats=stats: check_infer(stats, ns, resp))
            stats.cpu_s = probe.stop()
    return stats


def bench_gateway(url: str, concurrency: int, seconds: float, warmup: float,
                  probe: CpuProbe) -> Stats:
    """``POST /infer``: a sync keep-alive client at c=1, ``concurrency`` asyncio tasks
    sharing one ``httpx.AsyncClient`` above that."""
    name = f"gateway POST /infer c={concurrency}"
    if concurrency == 1:
        return _bench_infer_sync(url, name, seconds, warmup, probe)
    return asyncio.run(_bench_infer_async(url, name, concurrency, seconds, warmup, probe))
