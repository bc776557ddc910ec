"""Tensor benchmark: one 4 MB float32 tensor through the Open Inference Protocol, three ways.

Run as ``.venv/bin/python bench/tensors.py [--seconds N] [--warmup N] [--mb N]``. In one run it

1. starts ``modelport up`` on a fresh temporary home (``harness.platform.Platform``) with
   the body limit raised to 64 MiB (``MODELPORT_GATEWAY_MAX_BODY_BYTES``): the JSON form of
   a 4 MB float32 tensor does not fit the default 12 MiB, the binary form does;
2. deploys an identity predictor (``{"y": x}``, x declared FP32 ``[-1, -1]``), so the
   numbers are the transport's and not the model's;
3. sends the same random ``[1024, N]`` float32 tensor, one request at a time, as
   - OIP REST binary: the binary-data extension in and out (raw bytes after the JSON),
   - OIP REST JSON: ``data`` as a JSON list in and out,
   - OIP gRPC: ``raw_input_contents`` in, ``raw_output_contents`` out,
   each timed from send to a numpy array in hand (client encode and decode included);
   every answer is checked bit-exact against the input outside the timed span;
4. prints requests/s, latency, the bytes on the wire, and CPU ms per request in each
   process (the CPU block of run.py), then stops the platform (always).

"Bytes copied" per hop is counted from the code path in bench/RESULTS.md; this script
measures what those copies and conversions cost. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import numpy as np
import orjson
from harness.platform import running
from harness.processes import CpuProbe, raise_on_sigterm
from harness.timing import timed_loop

from modelport.inference import grpc_predict_v2_pb2 as pb
from modelport.inference import grpc_predict_v2_pb2_grpc as pb_grpc

SERVICE = "tensor-echo"
PREDICT_PY = '''
class Echo:
    def predict(self, x):
        return {"y": x}
'''
CONFIG = {"name": SERVICE, "predictor": "predict:Echo",
          "input": [{"name": "x", "type": "tensor", "dtype": "FP32", "shape": [-1, -1]}],
          "output": [{"name": "y", "type": "tensor", "dtype": "FP32"}]}
MAX_BODY = 64 * 1024 * 1024

Call = Callable[[], np.ndarray]


def write_package(dest: Path) -> Path:
    dest.mkdir(parents=True)
    (dest / "config.json").write_text(orjson.dumps(CONFIG).decode())
    (dest / "predict.py").write_text(PREDICT_PY)
    (dest / "requirements.txt").write_text("numpy\n")
    return dest


# --------------------------------------------------------------------------- the three paths

def rest_binary(client: httpx.Client, url: str, x: np.ndarray) -> Call:
    def call() -> np.ndarray:
        head = orjson.dumps({"inputs": [{
            "name": "x", "datatype": "FP32", "shape": list(x.shape),
            "parameters": {"binary_data_size": x.nbytes}}],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}]})
        r = client.post(url, content=head + x.tobytes(), headers={
            "Inference-Header-Content-Length": str(len(head)),
            "Content-Type": "application/octet-stream"})
        r.raise_for_status()
        n = int(r.headers["inference-header-content-length"])
        out = orjson.loads(r.content[:n])["outputs"][0]
        call.sizes = (len(head) + x.nbytes, len(r.content))  # type: ignore[attr-defined]
        return np.frombuffer(r.content, dtype="<f4", offset=n).reshape(out["shape"])
    return call


def rest_json(client: httpx.Client, url: str, x: np.ndarray) -> Call:
    def call() -> np.ndarray:
        body = orjson.dumps({"inputs": [{"name": "x", "datatype": "FP32",
                                         "shape": list(x.shape), "data": x.reshape(-1)}]},
                            option=orjson.OPT_SERIALIZE_NUMPY)
        r = client.post(url, content=body, headers={"Content-Type": "application/json"})
        r.raise_for_status()
        out = orjson.loads(r.content)["outputs"][0]
        call.sizes = (len(body), len(r.content))  # type: ignore[attr-defined]
        return np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])
    return call


def grpc_raw(stub: pb_grpc.GRPCInferenceServiceStub, x: np.ndarray) -> Call:
    def call() -> np.ndarray:
        req = pb.ModelInferRequest(model_name=SERVICE, inputs=[
            pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32",
                                                  shape=list(x.shape))],
            raw_input_contents=[x.tobytes()])
        res = stub.ModelInfer(req, timeout=60)
        call.sizes = (req.ByteSize(), res.ByteSize())  # type: ignore[attr-defined]
        return np.frombuffer(res.raw_output_contents[0], dtype="<f4").reshape(
            list(res.outputs[0].shape))
    return call


# --------------------------------------------------------------------------- measuring

def measure(name: str, call: Call, x: np.ndarray, seconds: float, warmup: float,
            probe: CpuProbe) -> dict:
    assert np.array_equal(call(), x), f"{name}: the answer differs from the input"
    timed_loop(call, warmup, lambda ns, _: None)
    latencies: list[float] = []
    probe.start()
    elapsed = timed_loop(call, seconds, lambda ns, _: latencies.append(ns / 1e9))
    cpu = probe.stop()
    assert np.array_equal(call(), x), f"{name}: the answer differs from the input"
    sent, received = call.sizes  # type: ignore[attr-defined]
    latencies.sort()
    return {"name": name, "n": len(latencies), "rps": len(latencies) / elapsed,
            "p50": statistics.median(latencies) * 1000,
            "p90": latencies[int(0.9 * (len(latencies) - 1))] * 1000,
            "sent": sent, "received": received,
            "cpu": {k: v * 1000 / len(latencies) for k, v in cpu.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per row")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per row")
    parser.add_argument("--mb", type=float, default=4, help="tensor size in MiB (float32)")
    args = parser.parse_args()
    raise_on_sigterm()
    cols = max(1, int(args.mb * 1024 * 1024 / 4 / 1024))
    x = np.random.default_rng(0).random((1024, cols), dtype=np.float32)
    os.environ["MODELPORT_GATEWAY_MAX_BODY_BYTES"] = str(MAX_BODY)

    results = []
    with (tempfile.TemporaryDirectory(prefix="modelport-tensor-bench-") as tmp,
          running(Path(tmp)) as platform):
        platform.deploy(write_package(Path(tmp) / "pkg"), SERVICE)
        probe = platform.cpu_probe()
        infer = f"{platform.url}/v2/models/{SERVICE}/infer"
        with httpx.Client(timeout=60) as client:
            for name, make in (("OIP REST binary", rest_binary), ("OIP REST JSON", rest_json)):
                call = make(client, infer, x)
                results.append(measure(name, call, x, args.seconds, args.warmup, probe))
        options = [("grpc.max_send_message_length", MAX_BODY),
                   ("grpc.max_receive_message_length", MAX_BODY)]
        with grpc.insecure_channel(f"127.0.0.1:{platform.grpc_port}",
                                   options=options) as channel:
            call = grpc_raw(pb_grpc.GRPCInferenceServiceStub(channel), x)
            results.append(measure("OIP gRPC raw", call, x, args.seconds, args.warmup, probe))

    mib = x.nbytes / 2**20
    print(f"tensor: float32 {list(x.shape)} = {x.nbytes} bytes ({mib:.2f} MiB); one request "
          f"at a time; {args.warmup:g} s warm-up + {args.seconds:g} s per row; identity model\n")
    print(f"{'path':18} {'requests':>8} {'req/s':>7} {'MiB/s':>7} {'p50 ms':>8} {'p90 ms':>8}"
          f" {'sent MiB':>9} {'recv MiB':>9}")
    for r in results:
        print(f"{r['name']:18} {r['n']:8d} {r['rps']:7.1f} {r['rps'] * mib * 2:7.1f} "
              f"{r['p50']:8.2f} {r['p90']:8.2f} {r['sent'] / 2**20:9.2f} "
              f"{r['received'] / 2**20:9.2f}")
    print("\nMiB/s counts the tensor both ways (request + response).")
    labels = ["bench", "gateway", "runtime", "worker"]
    print("\nCPU ms per request during the measured phase, by process (user+system, /proc):")
    print(f"{'path':18} " + " ".join(f"{k:>8}" for k in labels) + f" {'total':>8}")
    for r in results:
        cpu = r["cpu"]
        print(f"{r['name']:18} " + " ".join(f"{cpu.get(k, 0.0):8.2f}" for k in labels)
              + f" {sum(cpu.values()):8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
