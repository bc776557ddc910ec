"""What tracing costs: gateway throughput with no exporter (the default) and with OTLP export.

Run as ``.venv/bin/python bench/tracing.py [--seconds N] [--warmup N] [--concurrency 1,8]
[--rounds N]``. Each round starts ``modelport up`` once per mode on a fresh home, deploys the
iris predictor and measures ``POST /v1/services/iris/infer`` as bench/run.py does
(bench/harness/iris.py):

- ``off``: no OTEL_* variables (nothing exported, no interceptors, no spans);
- ``otlp``: OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/gRPC receiver in this process
  (opentelemetry-proto's TraceService, counting what arrives), default batch settings,
  every request traced;
- ``10%``: the same, sampling one trace in ten (parentbased_traceidratio 0.1).

Rounds alternate the modes so drift on a noisy machine hits each. ``--micro`` adds the
in-process cost of the per-request telemetry code with tracing off. Everything stays on
127.0.0.1; loops are bounded by time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from harness.iris import bench_gateway, deploy
from harness.platform import running
from harness.processes import raise_on_sigterm
from harness.report import context, load
from harness.timing import Stats
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class CountingReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0
        self.lock = threading.Lock()

    def Export(self, request, context):  # noqa: N802, ANN001, ANN201 - gRPC's names
        n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with self.lock:
            self.spans += n
        return trace_service_pb2.ExportTraceServiceResponse()


#: what each mode sets (besides the endpoint, for every mode but "off")
MODES = {
    "off": {},
    "otlp": {},
    "10%": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
}


def measure(mode: str, endpoint: str, args: argparse.Namespace) -> list[Stats]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
    for key in saved:
        del os.environ[key]
    os.environ.setdefault("MODELPORT_GATEWAY_AUTH", "false")  # loopback bench, no tokens
    if mode != "off":
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        os.environ.update(MODES[mode])
    workdir = Path(tempfile.mkdtemp(prefix=f"modelport-bench-{mode}-"))
    try:
        with running(workdir) as plat:
            deploy(plat)
            probe = plat.cpu_probe()
            rows = []
            for c in args.concurrency:
                stats = bench_gateway(plat.url, c, args.seconds, args.warmup, probe)
                stats.name = f"tracing {mode:<4} c={c}"
                rows.append(stats)
                print(f"  measured {stats.name}: {stats.rps:.0f} req/s, p50 "
                      f"{stats.pct(50):.2f} ms", flush=True)
            return rows
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for key in [k for k in os.environ if k.startswith("OTEL_")]:
            del os.environ[key]
        os.environ.update(saved)


def micro(n: int = 20000) -> list[tuple[str, float]]:
    """In-process cost of the per-request telemetry with tracing off (us per request)."""
    import asyncio
    import tempfile as tf

    from services.gateway.stats import GatewayStats
    from services.gateway.telemetry import AccessLog, TelemetryMiddleware, note_service
    from services.runtime.dataplane.observation import Observation
    from services.runtime.metrics import RuntimeMetrics

    async def app(scope, receive, send):  # noqa: ANN001, ANN202 - a bare ASGI app
        note_service("svc")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive():  # noqa: ANN202
        return {"type": "http.request", "body": b""}

    async def send(message):  # noqa: ANN001, ANN202
        return None

    def scope() -> dict:
        return {"type": "http", "method": "POST", "path": "/v1/services/svc/infer",
                "headers": [(b"content-type", b"application/json")]}

    with tf.TemporaryDirectory() as d:
        wrapped = TelemetryMiddleware(app, GatewayStats(), AccessLog(Path(d), 50 << 20, 1))

        async def loop(target) -> float:  # noqa: ANN001
            t = time.perf_counter()
            for _ in range(n):
                await target(scope(), receive, send)
            return (time.perf_counter() - t) / n * 1e6

        bare = asyncio.run(loop(app))
        full = asyncio.run(loop(wrapped))

    class _Sup:
        def list(self) -> list:
            return []

    class _Disp:
        in_flight: dict = {}

    metrics = RuntimeMetrics(_Sup(), _Disp())
    t = time.perf_counter()
    for _ in range(n):
        with Observation(metrics, "svc", 1, "rid") as obs:
            obs.worker({"t0": 1.0, "phases": [["queue", 0, 0.01], ["predict", 0.01, 0.1]]}, "r")
    runtime = (time.perf_counter() - t) / n * 1e6
    return [("bare ASGI app call", bare), ("same, through TelemetryMiddleware", full),
            ("gateway middleware + metrics + stats + access log", full - bare),
            ("runtime Observation (metrics, 2 phases)", runtime)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")],
                    default=[1, 8])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--modes", type=lambda s: s.split(","), default=["off", "otlp", "10%"],
                    help=f"comma-separated, of {', '.join(MODES)}")
    ap.add_argument("--micro", action="store_true",
                    help="also time the per-request telemetry code in-process")
    args = ap.parse_args(argv)
    raise_on_sigterm()
    print(context(__file__, argv), flush=True)

    receiver = CountingReceiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    results: dict[str, list[Stats]] = {mode: [] for mode in args.modes}
    requests_traced = 0
    try:
        for _ in range(args.rounds):
            for mode in args.modes:
                rows = measure(mode, endpoint, args)
                results[mode] += rows
                if mode == "otlp":
                    requests_traced += sum(s.n for s in rows)
        time.sleep(1.0)  # the last batches arrive after the platform stopped
    finally:
        server.stop(0)

    print()
    header = f"{'mode':<6} {'c':>3} {'requests':>9} {'err':>4} {'p50 ms':>8} {'p99 ms':>8}" \
             f" {'req/s':>8}"
    print(header)
    print("-" * len(header))
    for mode in args.modes:
        for s in results[mode]:
            print(f"{mode:<6} {s.concurrency:>3} {s.n:>9} {s.errors:>4} {s.pct(50):>8.3f}"
                  f" {s.pct(99):>8.3f} {s.rps:>8.0f}")
    for c in args.concurrency:
        off = [s.rps for s in results.get("off", []) if s.concurrency == c]
        for mode in [m for m in args.modes if m != "off"]:
            on = [s.rps for s in results[mode] if s.concurrency == c]
            if off and on:
                ratio = (sum(on) / len(on)) / (sum(off) / len(off))
                print(f"c={c}: {mode} / off throughput = {ratio:.3f} (mean of {len(on)} "
                      "round(s))")
    print(f"spans received by the OTLP receiver: {receiver.spans}; measured requests with "
          f"every trace sampled (otlp): {requests_traced}")
    if args.micro:
        print("\nin-process, tracing off (us per request, mean of 20000):")
        for name, us in micro():
            print(f"  {name:<52} {us:8.2f}")
    print(f"load after the run: {load()}")
    failed = any(s.errors or not s.n for rows in results.values() for s in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
