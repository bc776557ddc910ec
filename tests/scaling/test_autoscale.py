"""Autoscaling on a real platform: up under load, down when idle, to zero after the idle
timeout (no worker process left), and back from zero when a request arrives (it waits for
the cold start instead of failing)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import grpc
import httpx

from modelport.home import HomeLayout
from modelport.v1 import runtime_pb2, runtime_pb2_grpc
from tests.e2e.packages import predictor
from tests.rollout.load import wait_until

CODE = """
import os, time

class Predictor:
    def predict(self, seconds):
        time.sleep(seconds)
        return {"pid": os.getpid()}
"""


def live_replicas(platform, service: str) -> list[runtime_pb2.Replica]:
    async def call() -> runtime_pb2.ListReplicasResponse:
        async with grpc.aio.insecure_channel(HomeLayout(platform.home).socket("runtime")) as ch:
            return await runtime_pb2_grpc.RuntimeStub(ch).ListReplicas(
                runtime_pb2.ListReplicasRequest(service=service), timeout=10)

    return [r for r in asyncio.run(call()).replicas if r.state != "stopped"]


def reasons(client, name: str) -> list[str]:
    return [e["reason"] for e in client.events(name, limit=500)]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_scale_up_down_to_zero_and_back(platform, client, tmp_path: Path) -> None:
    pkg = predictor(tmp_path, "auto", CODE, [{"name": "seconds", "type": "number"}])
    spec = {"metadata": {"name": "auto"}, "spec": {"autoscaling": {
        "min": 0, "max": 2, "target_concurrency": 1, "idle_timeout_s": 4,
        "scale_down_delay_s": 3}}}
    svc = client.apply("auto", json.dumps(spec), pkg)
    url = svc["url"]
    assert svc["spec"]["autoscaling"]["max"] == 2
    pids: set[int] = set()

    # up: four requests at once for one replica (target 1 each) -> two replicas
    answers: list[httpx.Response] = []

    def call() -> None:
        answers.append(httpx.post(url, json={"seconds": 1.5}, timeout=120))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: "ScaledUp" in reasons(client, "auto"), 60, "a scale-up")
    wait_until(lambda: len(live_replicas(platform, "auto")) == 2, 60, "a second replica")
    for t in threads:
        t.join(120)
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    pids |= {r.json()["data"]["pid"] for r in answers}

    # down, then to zero once idle: no worker process is left
    wait_until(lambda: "ScaledToZero" in reasons(client, "auto"), 90, "scale to zero")
    wait_until(lambda: not live_replicas(platform, "auto"), 60, "every replica to stop")
    now = client.get("auto")
    assert now["phase"] == "running" and now["desired_replicas"] == 0
    assert "scaled to zero" in now["message"]
    assert not [p for p in pids if alive(p)], "a worker outlived the scale to zero"

    # back: the next request starts a replica and waits for it
    r = httpx.post(url, json={"seconds": 0}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["pid"] not in pids
    events = client.events("auto", limit=500)
    assert any(e["reason"] == "ColdStart" for e in events)
    order = [e["reason"] for e in events if e["reason"] in ("ScaledUp", "ScaledToZero",
                                                             "ColdStart")]
    assert order.index("ScaledUp") < order.index("ScaledToZero") < order.index("ColdStart")
    client.delete("auto")
