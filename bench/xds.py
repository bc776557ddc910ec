"""Proxyless gRPC vs. the gateway: the same OIP ModelInfer, side by side in one run.

Run as ``.venv/bin/python bench/xds.py [--seconds N] [--warmup N] [--concurrency 1,8]``. It

1. starts ``modelport up --xds-port 0`` on a fresh temporary home and deploys an identity
   predictor (bench/tensors.py's, called with an FP32 ``[1, 16]`` x), so the numbers are the
   hops' and not the model's;
2. per concurrency (threads sharing one channel), for ``--seconds`` after a warm-up, calls
   ``inference.GRPCInferenceService/ModelInfer``
   - through the gateway's gRPC port (``127.0.0.1:GRPC``): client -> gateway -> runtime
     data socket -> worker,
   - proxyless, ``xds:///NAME`` with ``modelport xds bootstrap``'s config: client -> the
     runtime's direct port for the version -> worker;
3. prints requests/s, p50/p99 and CPU ms per request by process (/proc), and the ratio of
   the direct path to the gateway path, then stops the platform (always).

Auth, metrics and traces stay as they are by default on both paths (the service is open,
as TI-ONE's default; a key would be checked on both).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import numpy as np
from harness.platform import running
from harness.processes import CpuProbe, raise_on_sigterm
from harness.timing import Stats, clock
from tensors import SERVICE, write_package  # the same identity model, "tensor-echo"

from modelport.inference import grpc_predict_v2_pb2 as pb
from modelport.inference import grpc_predict_v2_pb2_grpc as pb_grpc

LABELS = ("bench", "gateway", "runtime", "worker")


def request() -> pb.ModelInferRequest:
    x = np.arange(16, dtype=np.float32).reshape(1, 16)
    return pb.ModelInferRequest(model_name=SERVICE, inputs=[
        pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 16])],
        raw_input_contents=[x.tobytes()])


def measure(name: str, stub: pb_grpc.GRPCInferenceServiceStub, concurrency: int,
            seconds: float, warmup: float, probe: CpuProbe) -> Stats:
    msg = request()
    for _ in range(20):  # the path works and is connected before anything is timed
        stub.ModelInfer(msg, timeout=30)
    stats = Stats(name, concurrency)
    lock = threading.Lock()

    def worker(until: float, keep: bool) -> None:
        mine: list[int] = []
        errors = 0
        while time.monotonic() < until:
            t0 = clock()
            try:
                stub.ModelInfer(msg, timeout=30)
            except grpc.RpcError:
                errors += 1
                continue
            mine.append(clock() - t0)
        if keep:
            with lock:
                stats.latencies_ns.extend(mine)
                stats.errors += errors

    for phase, length in (("warmup", warmup), ("measure", seconds)):
        keep = phase == "measure"
        if keep:
            probe.start()
        until = time.monotonic() + length
        started = time.monotonic()
        threads = [threading.Thread(target=worker, args=(until, keep))
                   for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if keep:
            stats.elapsed_s = time.monotonic() - started
            stats.cpu_s = probe.stop()
    return stats


def cpu_per_request(s: Stats, platform_only: bool = False) -> float:
    """CPU seconds per request, of every process or of the platform's alone (not the
    bench's client, whose xDS balancing is the client's cost)."""
    return sum(v for k, v in s.cpu_s.items() if not (platform_only and k == "bench")
               ) / max(1, s.n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per row")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per row")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated client threads")
    args = parser.parse_args()
    raise_on_sigterm()
    levels = [int(c) for c in args.concurrency.split(",")]
    rows: list[tuple[Stats, Stats]] = []
    with (tempfile.TemporaryDirectory(prefix="modelport-xds-bench-") as tmp,
          running(Path(tmp), ("--xds-port", "0")) as platform):
        platform.deploy(write_package(Path(tmp) / "pkg"), SERVICE)
        boot = subprocess.run([str(Path(sys.executable).parent / "modelport"), "xds",
                               "bootstrap", "--home", str(platform.home)],
                              capture_output=True, text=True, check=True, timeout=60)
        # grpc reads the bootstrap when it first resolves an xds: target
        os.environ["GRPC_XDS_BOOTSTRAP_CONFIG"] = boot.stdout
        probe = platform.cpu_probe()
        with (grpc.insecure_channel(f"127.0.0.1:{platform.grpc_port}") as via_gateway,
              grpc.insecure_channel(f"xds:///{SERVICE}") as direct):
            for c in levels:
                gw = measure("gateway", pb_grpc.GRPCInferenceServiceStub(via_gateway), c,
                             args.seconds, args.warmup, probe)
                px = measure("proxyless", pb_grpc.GRPCInferenceServiceStub(direct), c,
                             args.seconds, args.warmup, probe)
                rows.append((gw, px))

    print(f"OIP gRPC ModelInfer, FP32 [1, 16] identity model; {args.warmup:g} s warm-up + "
          f"{args.seconds:g} s per row\n")
    print(f"{'path':10} {'c':>3} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}  "
          + " ".join(f"{k:>8}" for k in LABELS) + f" {'CPU ms/req':>10}")
    for pair in rows:
        for s in pair:
            cpu = {k: s.cpu_s.get(k, 0.0) * 1000 / max(1, s.n) for k in LABELS}
            print(f"{s.name:10} {s.concurrency:3d} {s.rps:8.0f} {s.pct(50):7.2f} "
                  f"{s.pct(99):7.2f} {s.errors:6d}  "
                  + " ".join(f"{cpu[k]:8.3f}" for k in LABELS)
                  + f" {cpu_per_request(s) * 1000:10.3f}")
    print("\nproxyless / gateway, same run:")
    for gw, px in rows:
        own = cpu_per_request(px, True) / max(1e-9, cpu_per_request(gw, True))
        print(f"  c={gw.concurrency}: req/s x{px.rps / gw.rps:.2f}, "
              f"p50 x{px.pct(50) / gw.pct(50):.2f}, "
              f"CPU per request x{cpu_per_request(px) / max(1e-9, cpu_per_request(gw)):.2f}"
              f" (the platform's alone x{own:.2f})")
    return 1 if any(s.errors for pair in rows for s in pair) else 0


if __name__ == "__main__":
    sys.exit(main())
