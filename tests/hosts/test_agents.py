"""Several hosts: two runtime agents on their own loopback addresses (127.0.0.2 and
127.0.0.3) register with the registry and heartbeat; the controller spreads a service's
replicas over them and the gateway routes to the agent holding each. Killing one agent
(SIGKILL, the whole runtime process) loses its replicas: they are placed on the survivor,
with events, and requests succeed again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from modelport.home import HomeLayout
from modelport.v1 import agents_pb2, agents_pb2_grpc
from tests.conftest import ROOT, RunningPlatform, start_platform
from tests.e2e.packages import predictor
from tests.rollout.load import Load, wait_until

CODE = """
import os

class Predictor:
    def predict(self, text):
        return {"text": text, "pid": os.getpid()}
"""


def agents(platform: RunningPlatform) -> list[agents_pb2.Agent]:
    async def call() -> agents_pb2.ListAgentsResponse:
        async with grpc.aio.insecure_channel(HomeLayout(platform.home).socket("registry")) as ch:
            return await agents_pb2_grpc.AgentsStub(ch).ListAgents(
                agents_pb2.ListAgentsRequest(), timeout=10)

    return list(asyncio.run(call()).agents)


def start_agent(platform: RunningPlatform, name: str, host: str, home: Path
                ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MODELPORT_RUNTIME_REGISTRY_ADDRESS":
           HomeLayout(platform.home).socket("registry"), "MODELPORT_RUNTIME_AGENT_ID": name,
           "MODELPORT_RUNTIME_METRICS_PORT": "-1", "PYTHONPATH": str(ROOT)}
    log = (home.parent / f"{name}.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "services.runtime", "--home", str(home),
                             "--listen", f"{host}:0"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[RunningPlatform, dict[str, subprocess.Popen[bytes]]]]:
    """A platform whose own runtime takes no replicas, and two agents on other addresses."""
    home = tmp_path_factory.mktemp("home")
    plat = start_platform(home, env={"MODELPORT_REGISTRY_RUNTIME_ADDRESS": "none",
                                     "MODELPORT_RUNTIME_REGISTRY_ADDRESS": "none",
                                     "MODELPORT_REGISTRY_AGENT_TTL_S": "3"})
    procs = {name: start_agent(plat, name, host, tmp_path_factory.mktemp(name))
             for name, host in (("agent-a", "127.0.0.2"), ("agent-b", "127.0.0.3"))}
    try:
        wait_until(lambda: {a.id for a in agents(plat) if a.state == "ready"} == set(procs),
                   60, "both agents to register")
        yield plat, procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        plat.stop()


def test_agents_register_with_address_and_capacity(fleet) -> None:
    plat, _ = fleet
    listed = {a.id: a for a in agents(plat)}
    assert listed["agent-a"].address.startswith("127.0.0.2:")
    assert listed["agent-b"].address.startswith("127.0.0.3:")
    for a in listed.values():
        assert a.capacity.cpus > 0 and a.capacity.memory_bytes > 0
        assert "process" in a.capacity.runtimes and a.capacity.gpu_source
        assert a.last_seen > 0 and not a.configured


def test_killed_agent_replicas_move_to_the_survivor(fleet, tmp_path: Path) -> None:
    import modelport

    plat, procs = fleet
    with modelport.Client(plat.url) as client:
        svc = client.create(predictor(tmp_path, "spread", CODE), name="spread", wait=False)
        client.apply("spread", '{"metadata": {"name": "spread"}, "spec": {"replicas": 2}}')
        by_id = {a.address: a.id for a in agents(plat)}
        placed = wait_until(lambda: (lambda reps: reps if len(reps) == 2 else None)(
            client.get("spread")["replicas"]), 60, "two replicas")
        assert {by_id[r["agent"]] for r in placed} == {"agent-a", "agent-b"}  # spread out

        url = svc["url"]
        with Load(url, {"text": "hi"}, workers=2) as load:
            load.wait_for(20)
            victim = procs["agent-a"]
            os.killpg(victim.pid, signal.SIGKILL)  # the whole runtime agent, at once
            victim.wait(30)
            wait_until(lambda: {a.id: a.state for a in agents(plat)}["agent-a"] == "lost", 30,
                       "the registry to notice")
            moved = wait_until(lambda: (lambda reps: reps if len(reps) == 2 and all(
                by_id[r["agent"]] == "agent-b" for r in reps) else None)(
                    client.get("spread")["replicas"]), 90, "replicas on the survivor")
            assert len(moved) == 2
            wait_until(lambda: client.get("spread")["phase"] == "running", 90, "running")
            load.wait_for(20)
            tail = load.answers[-10:]
        assert not load.errors, load.errors[:5]
        assert all(a.status == 200 for a in tail), tail
        r = httpx.post(url, json={"text": "after"}, timeout=60)
        assert r.status_code == 200 and r.json()["data"]["text"] == "after"

        events = client.events("spread", limit=500)
        lost = [e for e in events if e["reason"] == "ReplicaLost"]
        assert lost and "stopped answering" in lost[0]["message"], events
        survivor = next(a.address for a in agents(plat) if a.id == "agent-b")
        assert any(e["reason"] == "ReplicaStarting" and survivor in e["message"]
                   for e in events)
        client.delete("spread")
