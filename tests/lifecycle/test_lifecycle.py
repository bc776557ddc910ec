"""Service lifecycle on a real platform: stop, start, restart, delete through the CLI, REST
and gRPC; the states and events of the reference; health probes; a killed worker; and the
answers a request gets when it cannot be served (503 stopped, 429 queue full, 504 timeout),
each a JSON body naming the reason."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import httpx
import pytest

from modelport.client import DeployFailed
from modelport.home import HomeLayout
from modelport.v1 import registry_pb2, registry_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from tests.conftest import open_to_workers
from tests.e2e.packages import predictor
from tests.rollout.load import wait_until

CLI = str(Path(sys.executable).parent / "modelport")

PID = """
import os, time

class Predictor:
    def predict(self, text):
        return {"text": text, "pid": os.getpid()}
"""

SLOW = """
import os, time

class Predictor:
    def predict(self, seconds):
        if seconds < 0:  # held until the test opens the gate
            while not os.path.exists({gate!r}):
                time.sleep(0.01)
        else:
            time.sleep(seconds)
        return {{"slept": seconds}}
"""

HANGS = """
import time

class Predictor:
    def setup(self):
        time.sleep(3600)

    def predict(self, text):
        return text
"""


def cli(platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args, "--url", platform.url], capture_output=True, text=True,
                          timeout=600)


def events(client, name: str) -> list[dict]:
    return client.events(name, limit=500)


def grpc_call(platform, method: str, name: str) -> registry_pb2.Service:
    async def call() -> registry_pb2.Service:
        async with grpc.aio.insecure_channel(HomeLayout(platform.home).socket("registry")) as ch:
            stub = registry_pb2_grpc.RegistryStub(ch)
            return await getattr(stub, method)(registry_pb2.ServiceActionRequest(
                name=name, reason="from a test"), timeout=30)

    return asyncio.run(call())


def runtime_loads(platform, service: str) -> runtime_pb2.ListReplicasResponse:
    async def call() -> runtime_pb2.ListReplicasResponse:
        async with grpc.aio.insecure_channel(HomeLayout(platform.home).socket("runtime")) as ch:
            return await runtime_pb2_grpc.RuntimeStub(ch).ListReplicas(
                runtime_pb2.ListReplicasRequest(service=service), timeout=10)

    return asyncio.run(call())


def test_stop_start_restart_delete(platform, client, tmp_path: Path) -> None:
    svc = client.create(predictor(tmp_path, "life", PID), name="life")
    url = svc["url"]
    first = httpx.post(url, json={"text": "a"}, timeout=60).json()["data"]["pid"]

    # stop (REST): the service and its URL stay; calls get a 503 saying it is stopped
    stopped = client.stop("life", reason="maintenance")
    assert stopped["phase"] in ("stopped", "running")
    r = httpx.post(url, json={"text": "b"}, timeout=60)
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["code"] == "service.stopped" and "stopped" in err["message"]
    assert "modelport start life" in err["fix"] and r.headers["retry-after"]
    wait_until(lambda: client.get("life")["phase"] == "stopped", 60, "phase stopped")
    wait_until(lambda: not [x for x in runtime_loads(platform, "life").replicas
                            if x.state != "stopped"], 60, "replicas to stop")
    assert not _alive(first)

    # start (CLI): running again, same URL
    res = cli(platform, "start", "life", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["phase"] == "running"
    second = httpx.post(url, json={"text": "c"}, timeout=60).json()["data"]["pid"]
    assert second != first

    # restart (gRPC): new replicas take over once ready; the old one drains and stops
    svc = grpc_call(platform, "RestartService", "life")
    client.wait_settled("life", svc.generation, 120)
    wait_until(lambda: httpx.post(url, json={"text": "d"}, timeout=60).json()["data"]["pid"]
               not in (first, second), 60, "a new replica to answer")
    wait_until(lambda: not _alive(second), 60, "the old replica to stop")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        grpc_call(platform, "StopService", "missing")
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND

    reasons = [e["reason"] for e in events(client, "life")]
    for expected in ("ServiceCreated", "DeployStarted", "TrafficSwitched", "PhaseRunning",
                     "ServiceStopping", "ReplicaStopped", "PhaseStopped", "ServiceStarting",
                     "ServiceRestarting", "UpdateStarted", "ReplicasReplaced"):
        assert expected in reasons, (expected, reasons)
    stopping = next(e for e in events(client, "life") if e["reason"] == "ServiceStopping")
    assert "maintenance" in stopping["message"]

    # delete (CLI)
    assert cli(platform, "delete", "life").returncode == 0
    assert httpx.post(url, json={"text": "e"}, timeout=60).status_code == 404


def test_hanging_setup_fails_its_startup_probe(platform, client, tmp_path: Path) -> None:
    pkg = predictor(tmp_path, "hangs", HANGS)
    config = json.loads((pkg / "config.json").read_text())
    config["health"] = {"startup": {"period_seconds": 1, "failure_threshold": 2}}
    (pkg / "config.json").write_text(json.dumps(config))
    svc = client.create(pkg, name="hangs", wait=False)
    with pytest.raises(DeployFailed) as exc:
        client.wait("hangs", svc["generation"], 120)
    assert "startup probe failed" in exc.value.reason
    now = client.get("hangs")
    assert now["phase"] == "failed" and "setup() did not finish within 2s" in now["message"]
    failed = next(e for e in events(client, "hangs") if e["reason"] == "PhaseFailed")
    assert "startup probe failed" in failed["message"] and failed["type"] == "Warning"
    assert httpx.get(f"{platform.url}/health", timeout=10).status_code == 200
    client.delete("hangs")


def test_killed_worker_is_restarted_with_an_event(platform, client, tmp_path: Path) -> None:
    svc = client.create(predictor(tmp_path, "victim", PID), name="victim")
    pid = httpx.post(svc["url"], json={"text": "a"}, timeout=60).json()["data"]["pid"]
    os.kill(pid, signal.SIGKILL)
    r = httpx.post(svc["url"], json={"text": "b"}, timeout=120)  # waits for the restart
    assert r.status_code == 200, r.text
    assert r.json()["data"]["pid"] != pid
    restarted = wait_until(lambda: [e for e in events(client, "victim")
                                    if e["reason"] == "ReplicaRestarted"], 30, "the event")
    assert "SIGKILL" in restarted[0]["message"]
    client.delete("victim")


def test_queue_full_is_429_and_timeout_is_504(platform, client, tmp_path: Path) -> None:
    gate = open_to_workers(tmp_path / "gate") / "open"
    pkg = predictor(tmp_path, "slowq", SLOW.format(gate=str(gate)),
                    [{"name": "seconds", "type": "number"}])
    spec = {"metadata": {"name": "slowq"},
            "spec": {"queue_size": 1, "concurrency": 1, "timeout_s": 60}}
    svc = client.apply("slowq", json.dumps(spec), pkg)
    url = svc["url"]
    results: dict[str, httpx.Response] = {}

    def send(key: str, seconds: float) -> None:
        results[key] = httpx.post(url, json={"seconds": seconds}, timeout=120)

    busy = threading.Thread(target=send, args=("busy", -1))  # holds the only slot
    busy.start()
    wait_until(lambda: sum(x.in_flight for x in runtime_loads(platform, "slowq").replicas),
               60, "the first request to run")
    queued = threading.Thread(target=send, args=("queued", 0))
    queued.start()
    wait_until(lambda: sum(ld.queued for ld in runtime_loads(platform, "slowq").loads),
               60, "the second request to queue")
    full = httpx.post(url, json={"seconds": 0}, timeout=60)
    gate.touch()
    busy.join(60)
    queued.join(60)
    assert full.status_code == 429, full.text
    body = full.json()
    assert body["error"]["code"] == "queue.full" and "queue" in body["error"]["message"]
    assert int(full.headers["retry-after"]) >= 1 and body["metadata"]["request_id"]
    assert results["busy"].status_code == 200 and results["queued"].status_code == 200
    assert runtime_loads(platform, "slowq").loads[0].rejected >= 1

    spec["spec"]["timeout_s"] = 1  # the same replica: a timeout is not a restart
    client.apply("slowq", json.dumps(spec))
    client.get("slowq")  # this gateway follows the new route at once
    slow = httpx.post(url, json={"seconds": 2.5}, timeout=60)
    assert slow.status_code == 504, slow.text
    assert slow.json()["error"]["code"] == "request.timeout"
    assert "within 1s" in slow.json()["error"]["message"]
    client.delete("slowq")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
