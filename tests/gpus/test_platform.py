"""GPU scheduling through the whole platform, on a configured inventory of two GPUs
(MODELPORT_RUNTIME_GPUS="0,1"; no GPU machine is needed to place replicas): the runtime
reports its GPUs, a service asking for more than are free waits with an event saying
why, and is placed once the GPUs are released."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from modelport.home import HomeLayout
from modelport.v1 import runtime_pb2, runtime_pb2_grpc
from tests.conftest import RunningPlatform, start_platform
from tests.docker.support import wait_until
from tests.e2e.packages import predictor

CODE = """
import os

class Predictor:
    def predict(self, text):
        return {"visible": os.environ.get("CUDA_VISIBLE_DEVICES")}
"""


@pytest.fixture(scope="module")
def gpu_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    plat = start_platform(tmp_path_factory.mktemp("gpu-home"),
                          env={"MODELPORT_RUNTIME_GPUS": "0,1"})
    yield plat
    plat.stop()


def _capacity(home: Path) -> runtime_pb2.Capacity:
    with grpc.insecure_channel(HomeLayout(home).socket("runtime")) as channel:
        return runtime_pb2_grpc.RuntimeStub(channel).GetCapacity(
            runtime_pb2.GetCapacityRequest(), timeout=30)


def _visible(url: str) -> str | None:
    r = httpx.post(url, json={"text": "x"}, timeout=60)
    return r.json()["data"]["visible"] if r.status_code == 200 else None


def test_gpu_services_are_placed_pending_then_placed(gpu_platform: RunningPlatform,
                                                     tmp_path: Path) -> None:
    import modelport

    cap = _capacity(gpu_platform.home)
    assert cap.gpu_source == "configured" and [g.id for g in cap.gpus] == ["0", "1"]
    assert "process" in cap.runtimes
    pkg = predictor(tmp_path, "gpu-env", CODE)
    with modelport.Client(gpu_platform.url) as client:
        one = client.create(pkg, name="gpu-one", spec=json.dumps({"resources": {"gpu": 1}}))
        assert _visible(one["url"]) == "0"
        holders = {g.id: g.replica_id for g in _capacity(gpu_platform.home).gpus}
        assert holders["0"].startswith("gpu-one-v1-") and holders["1"] == ""

        two = client.create(pkg, name="gpu-two", spec=json.dumps({"resources": {"gpu": 2}}),
                            wait=False)
        # the controller does not place it where too few GPUs are free (ScheduleFailed);
        # a runtime handed a replica anyway holds it pending (ReplicaPending): either way
        # an event says why, and nothing crashes
        waiting = ("ScheduleFailed", "ReplicaPending")
        pending = wait_until(lambda: [e for e in client.events("gpu-two")
                                      if e["reason"] in waiting], 60, "a pending event")
        message = pending[0]["message"]
        assert "2 needed" in message or "waiting for 2 free GPUs" in message, message
        status = client.get("gpu-two")
        assert status["phase"] == "deploying"
        (why,) = [c for c in status["conditions"] if c["reason"] == "NoCapacity"]
        assert why["status"] is False and "GPU" in why["message"]
        assert _visible(one["url"]) == "0"  # the runtime carried on

        client.delete("gpu-one")
        client.wait("gpu-two", timeout=120)
        assert _visible(two["url"]) == "0,1"
        reasons = [e["reason"] for e in client.events("gpu-two")]
        assert sum(reasons.count(r) for r in waiting) == 1  # once per reason, not per pass
        client.delete("gpu-two")
