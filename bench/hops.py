"""Added latency per hop on the way to a replica: runtime -> worker, gateway -> runtime, and
a runtime agent on a unix socket vs. one on a TCP loopback address (another "host").

Run as ``.venv/bin/python bench/hops.py [--seconds N] [--warmup N]``. In one run it

1. starts ``modelport up`` on a fresh temporary home, plus a second runtime agent listening
   on ``127.0.0.2:0`` that registers with the registry (docs/serving.md, several hosts),
2. deploys the same trivial predictor twice; placement puts one service on each agent
   (the script checks which agent holds which and labels the rows),
3. times, sequentially (c=1) over one kept-open channel/connection per row:
   - ``runtime Predict``: gRPC straight to the agent holding the replica (client ->
     runtime -> worker and back; the runtime's queue and dispatch included),
   - ``gateway gRPC Predict``: ``modelport.v1.Inference`` on the gateway (one more hop:
     route lookup (cached), routing, gateway -> runtime gRPC),
   - ``gateway REST infer``: the same through HTTP + JSON,
4. prints a table with the differences, stops everything (always).

Everything stays on loopback; loops are bounded by time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
from harness.paths import ROOT
from harness.platform import Platform
from harness.processes import raise_on_sigterm, start_session, stop_session
from harness.report import context, load
from harness.timing import latencies_ms

from modelport.home import HomeLayout
from modelport.v1 import (
    agents_pb2,
    agents_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    runtime_pb2_grpc,
)

CODE = "class Predictor:\n    def predict(self, text):\n        return {'text': text}\n"


def package(workdir: Path, name: str) -> Path:
    pkg = workdir / name
    pkg.mkdir(parents=True)
    (pkg / "config.json").write_text(json.dumps({
        "name": name, "predictor": "predict:Predictor",
        "input": [{"name": "text", "type": "text"}]}))
    (pkg / "predict.py").write_text(CODE)
    return pkg


def start_agent(home: Path, registry: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MODELPORT_RUNTIME_REGISTRY_ADDRESS": registry,
           "MODELPORT_RUNTIME_AGENT_ID": "tcp-agent", "MODELPORT_RUNTIME_METRICS_PORT": "-1",
           "PYTHONPATH": str(ROOT)}
    return start_session([sys.executable, "-m", "services.runtime", "--home", str(home),
                          "--listen", "127.0.0.2:0"], log, env)


_ids = itertools.count()


def _fresh(request: inference_pb2.PredictRequest) -> inference_pb2.PredictRequest:
    """The request with an id of its own (a worker refuses a duplicate id in flight)."""
    request.request_id = f"bench-{next(_ids)}"
    return request


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="measured seconds per row")
    ap.add_argument("--warmup", type=float, default=0.5, help="per row and round")
    ap.add_argument("--rounds", type=int, default=3, help="rows are measured round-robin")
    args = ap.parse_args(argv)
    raise_on_sigterm()
    work = Path(tempfile.mkdtemp(prefix="modelport-hops-"))
    print(context(__file__, argv), flush=True)
    plat = Platform(work)
    agent = None
    try:
        url = plat.start()
        grpc_port = plat.grpc_port
        registry = HomeLayout(plat.home).socket("registry")
        agent = start_agent(work / "agent-home", registry, work / "agent.log")
        with grpc.insecure_channel(registry) as ch:
            stub = agents_pb2_grpc.AgentsStub(ch)
            deadline = time.monotonic() + 60
            while len([a for a in stub.ListAgents(agents_pb2.ListAgentsRequest()).agents
                       if a.state == "ready"]) < 2:
                if time.monotonic() > deadline:
                    raise RuntimeError("the TCP agent did not register; see agent.log")
                time.sleep(0.2)
            agent_ids = {a.address: a.id for a in stub.ListAgents(
                agents_pb2.ListAgentsRequest()).agents}
        where: dict[str, str] = {}
        with plat.client() as client:
            for name in ("hop-a", "hop-b"):
                client.create(package(work, name), name=name)
                svc = client.get(name)
                (rep,) = svc["replicas"]
                where[name] = rep["agent"]
        calls: dict[str, object] = {}
        channels: list[grpc.Channel] = []
        http = httpx.Client(base_url=url, timeout=30)
        gw_channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        gateway = inference_pb2_grpc.InferenceStub(gw_channel)
        for name, address in sorted(where.items(), key=lambda kv: kv[1].startswith("unix")):
            kind = "unix socket" if address.startswith("unix:") else "TCP 127.0.0.2"
            request = inference_pb2.PredictRequest(
                service=name, version=1, request_id="bench", timeout_s=30,
                inputs=[inference_pb2.InputValue(name="text", text="hi")])
            channels.append(grpc.insecure_channel(address))
            runtime = runtime_pb2_grpc.RuntimeStub(channels[-1])
            calls[f"runtime Predict ({kind} agent)"] = (
                lambda rt=runtime, rq=request: rt.Predict(_fresh(rq), timeout=30))
            gw_request = inference_pb2.PredictRequest(
                service=name, inputs=[inference_pb2.InputValue(name="text", text="hi")])
            calls[f"gateway gRPC Predict ({kind} agent)"] = (
                lambda rq=gw_request: gateway.Predict(rq, timeout=30))

            def rest(name: str = name) -> None:
                r = http.post(f"/v1/services/{name}/infer", json={"text": "hi"})
                assert r.status_code == 200, r.text
            calls[f"gateway REST infer ({kind} agent)"] = rest
        samples: dict[str, list[np.ndarray]] = {label: [] for label in calls}
        for _ in range(args.rounds):  # rows interleaved: drift on a busy machine hits all
            for label, call in calls.items():
                samples[label].append(latencies_ms(call, args.seconds / args.rounds, args.warmup))
        http.close()
        gw_channel.close()
        for ch in channels:
            ch.close()
        rows = [(label, np.concatenate(parts)) for label, parts in samples.items()]
        placed = ", ".join(f"{n} on {agent_ids.get(a, a)} ({a})" for n, a in sorted(where.items()))
        print(f"\nplacement: {placed}")
        print(f"\n{'path':<44} {'requests':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
        print("-" * 80)
        for label, ms in rows:
            print(f"{label:<44} {len(ms):>8} {np.percentile(ms, 50):>8.3f} "
                  f"{np.percentile(ms, 90):>8.3f} {np.percentile(ms, 99):>8.3f}")
        p50 = {label: float(np.percentile(ms, 50)) for label, ms in rows}
        print("\nadded latency per hop (p50 differences, ms):")
        for kind in ("TCP 127.0.0.2", "unix socket"):
            rt = p50[f"runtime Predict ({kind} agent)"]
            gw = p50[f"gateway gRPC Predict ({kind} agent)"]
            rest = p50[f"gateway REST infer ({kind} agent)"]
            print(f"  {kind} agent: gateway hop (gRPC in, gRPC to the agent) {gw - rt:.3f};"
                  f" REST instead of gRPC at the edge {rest - gw:.3f}")
        tcp = p50["runtime Predict (TCP 127.0.0.2 agent)"]
        uds = p50["runtime Predict (unix socket agent)"]
        via_gw = (p50["gateway gRPC Predict (TCP 127.0.0.2 agent)"]
                  - p50["gateway gRPC Predict (unix socket agent)"])
        print(f"  agent over TCP loopback instead of a unix socket: {tcp - uds:+.3f} (direct), "
              f"{via_gw:+.3f} (through the gateway)")
        print(f"load:    {load()} (after)")
        return 0
    finally:
        if agent is not None:
            stop_session(agent)
        plat.stop()


if __name__ == "__main__":
    sys.exit(main())
