"""Proxyless gRPC across runtime hosts: two runtime agents on their own loopback addresses
(as in tests/hosts), the platform's own runtime taking no replicas. A host that joins
and takes a replica shows up in the running client's endpoints; a host SIGKILLed leaves
them, and the client keeps being answered by the other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import modelport
from tests.conftest import RunningPlatform, start_platform
from tests.hosts.test_agents import agents, start_agent
from tests.rollout.load import wait_until
from tests.xds.test_proxyless import TAGGED, XdsClient, modelport_cli


def worker_pids(agent: subprocess.Popen[bytes]) -> set[str]:
    return {str(p.pid) for p in psutil.Process(agent.pid).children(recursive=True)}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningPlatform, Any]]:
    home = tmp_path_factory.mktemp("home")
    plat = start_platform(home, "--xds-port", "0", env={
        "MODELPORT_REGISTRY_RUNTIME_ADDRESS": "none", "MODELPORT_RUNTIME_REGISTRY_ADDRESS": "none",
        "MODELPORT_REGISTRY_AGENT_TTL_S": "3"})
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def add(name: str, host: str) -> subprocess.Popen[bytes]:
        procs[name] = start_agent(plat, name, host, tmp_path_factory.mktemp(name))
        wait_until(lambda: name in {a.id for a in agents(plat) if a.state == "ready"}, 60,
                   f"{name} to register")
        return procs[name]

    try:
        yield plat, add
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
        plat.stop()


def test_hosts_joining_and_leaving_reach_a_running_client(fleet: Any, tmp_path: Path) -> None:
    plat, add = fleet
    agent_a = add("agent-a", "127.0.0.2")
    with modelport.Client(plat.url, home=plat.home) as admin:
        admin.create(str(TAGGED), name="hosts", timeout=300)
        done = modelport_cli(plat, "xds", "bootstrap")
        client = XdsClient("hosts", done.stdout, tmp_path / "client.log")
        try:
            first = wait_until(lambda: client.served(10), 60, "served from agent-a")
            assert set(first["tags"]) <= worker_pids(agent_a), first
            agent_b = add("agent-b", "127.0.0.3")
            admin.apply("hosts", json.dumps({"replicas": 2}), timeout=300)
            # the new host's endpoint reaches the client: both hosts answer
            wait_until(lambda: (lambda got: got if not got["errors"] and set(got["tags"]) & (
                worker_pids(agent_b)) and set(got["tags"]) & worker_pids(agent_a) else None)(
                client.call(20)), 60, "answers from both hosts")
            on_a = worker_pids(agent_a)
            os.killpg(agent_a.pid, signal.SIGKILL)  # the whole host, at once
            agent_a.wait(30)
            # its endpoint leaves the client; the other host answers every call
            after = wait_until(lambda: client.served(20), 60, "every call answered by b")
            assert not set(after["tags"]) & on_a, after
            assert set(after["tags"]) <= worker_pids(agent_b), after
        finally:
            client.close()
        admin.delete("hosts")
