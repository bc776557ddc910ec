"""Streaming benchmark: time to first chunk through the platform vs. the model's own first yield.

Run as ``.venv/bin/python bench/streaming.py [--requests N] [--chunks N]``. In one run it

1. starts ``modelport up`` on a fresh temporary home (``harness.platform.Platform``),
2. deploys a generator predictor that stamps each item with ``time.time()`` as it yields,
3. times the same generator in-process (call -> first item): the model's own first yield,
4. for SSE, WebSocket and gRPC ``PredictStream``, N sequential requests each measuring
   send -> first chunk received (TTFC), split at the model's stamp into "request reaches
   the model and it yields" and "the yielded chunk reaches the client",
5. streams ``--chunks`` items as fast as the model yields them, for chunks/s per protocol,
6. prints the tables and stops the platform (always).

The split uses wall clocks of two processes on the same host (time.time()), good to
tens of microseconds. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
from harness.platform import running
from harness.processes import raise_on_sigterm
from websockets.sync.client import connect

from modelport.v1 import inference_pb2, inference_pb2_grpc

SERVICE = "stream-bench"
PREDICT_PY = '''
import time


class Stamper:
    def predict(self, n):
        for i in range(n):
            yield {"i": i, "t": time.time()}
'''
CONFIG = {"name": SERVICE, "predictor": "predict:Stamper",
          "input": [{"name": "n", "type": "number"}]}


def write_package(dest: Path) -> Path:
    dest.mkdir(parents=True)
    (dest / "config.json").write_text(json.dumps(CONFIG))
    (dest / "predict.py").write_text(PREDICT_PY)
    return dest


# --------------------------------------------------------------------------- one request each
# Each returns (t_sent, t_first_received, model_stamp_of_first, items_received).

def sse_once(client: httpx.Client, url: str, n: int) -> tuple[float, float, float, int]:
    t0 = time.time()
    first_at = stamp = 0.0
    items = 0
    with client.stream("POST", url, json={"n": n},
                       headers={"Accept": "text/event-stream"}) as r:
        event = ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "chunk":
                if not items:
                    first_at = time.time()
                    stamp = json.loads(line[5:])["t"]
                items += 1
    return t0, first_at, stamp, items


def ws_once(ws, n: int) -> tuple[float, float, float, int]:  # noqa: ANN001
    t0 = time.time()
    ws.send(json.dumps({"n": n}))
    first_at = stamp = 0.0
    items = 0
    while True:
        frame = json.loads(ws.recv(timeout=60))
        if frame["type"] != "chunk":
            break
        if not items:
            first_at = time.time()
            stamp = frame["data"]["t"]
        items += 1
    return t0, first_at, stamp, items


def grpc_once(stub: inference_pb2_grpc.InferenceStub, n: int) -> tuple[float, float, float, int]:
    request = inference_pb2.PredictRequest(service=SERVICE, inputs=[
        inference_pb2.InputValue(name="n", json=str(n).encode())])
    t0 = time.time()
    first_at = stamp = 0.0
    items = 0
    for chunk in stub.PredictStream(request, timeout=60):
        if chunk.final:
            break
        if not items:
            first_at = time.time()
            stamp = json.loads(chunk.output.json)["t"]
        items += 1
    return t0, first_at, stamp, items


def in_process_once(n: int) -> tuple[float, float, float, int]:
    namespace: dict = {}
    exec(PREDICT_PY, namespace)  # noqa: S102 - our own model source, as deployed
    model = namespace["Stamper"]()
    t0 = time.time()
    items = 0
    first_at = stamp = 0.0
    for item in model.predict(n):
        if not items:
            first_at = time.time()
            stamp = item["t"]
        items += 1
    return t0, first_at, stamp, items


# --------------------------------------------------------------------------- tables

def ms(values: list[float]) -> str:
    values = sorted(values)
    p50 = statistics.median(values) * 1000
    p90 = values[int(0.9 * (len(values) - 1))] * 1000
    return f"{p50:9.3f} {p90:9.3f}"


def measure(name: str, once: Callable[[int], tuple[float, float, float, int]],
            requests: int, chunks: int) -> dict:
    for _ in range(max(3, requests // 10)):  # warm up connections and the worker
        once(1)
    rows = [once(1) for _ in range(requests)]
    ttfc = [first - t0 for t0, first, _, _ in rows]
    to_model = [stamp - t0 for t0, _, stamp, _ in rows]
    to_client = [first - stamp for _, first, stamp, _ in rows]
    t_start = time.perf_counter()
    _, _, _, items = once(chunks)
    elapsed = time.perf_counter() - t_start
    assert items == chunks, f"{name}: {items} of {chunks} chunks"
    return {"name": name, "ttfc": ttfc, "to_model": to_model, "to_client": to_client,
            "chunks_per_s": chunks / elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per protocol")
    parser.add_argument("--chunks", type=int, default=2000, help="items in the throughput run")
    args = parser.parse_args()
    raise_on_sigterm()

    results = [measure("in-process generator", in_process_once, args.requests, args.chunks)]
    with (tempfile.TemporaryDirectory(prefix="modelport-stream-bench-") as tmp,
          running(Path(tmp)) as platform):
        url = platform.url
        platform.deploy(write_package(Path(tmp) / "pkg"), SERVICE)
        infer = f"{url}/v1/services/{SERVICE}/infer"
        with httpx.Client(timeout=60) as client:
            results.append(measure("SSE (httpx)", lambda n: sse_once(client, infer, n),
                                   args.requests, args.chunks))
        ws_url = url.replace("http://", "ws://") + f"/v1/services/{SERVICE}/ws"
        with connect(ws_url, max_size=None) as ws:
            results.append(measure("WebSocket (websockets)", lambda n: ws_once(ws, n),
                                   args.requests, args.chunks))
        with grpc.insecure_channel(f"127.0.0.1:{platform.grpc_port}") as channel:
            stub = inference_pb2_grpc.InferenceStub(channel)
            results.append(measure("gRPC PredictStream", lambda n: grpc_once(stub, n),
                                   args.requests, args.chunks))

    base = statistics.median(results[0]["ttfc"])
    print(f"{args.requests} requests per row (1 item each), then {args.chunks} items for "
          "chunks/s; times in ms, p50 and p90\n")
    print(f"{'path':26} {'TTFC p50':>9} {'p90':>9}  {'send->yield':>9} {'p90':>9}  "
          f"{'yield->recv':>9} {'p90':>9}  {'overhead':>9}  {'chunks/s':>9}")
    for r in results:
        over = (statistics.median(r["ttfc"]) - base) * 1000
        print(f"{r['name']:26} {ms(r['ttfc'])}  {ms(r['to_model'])}  {ms(r['to_client'])}  "
              f"{over:9.3f}  {r['chunks_per_s']:9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
