"""The container a replica runs in, as data (no engine needed), and a replica whose
Docker engine does not answer: `failed` with the reason, not a crashed runtime."""

from __future__ import annotations

import os
from pathlib import Path

import docker
import pytest

from services.runtime.backends import ReplicaSpec
from services.runtime.backends.docker import (
    DockerBackend,
    container_options,
    exit_status,
    memory_bytes,
)
from services.runtime.supervisor import Supervisor
from tests.runtime.support import run, wait_state


def _spec(**fields) -> ReplicaSpec:
    base = dict(replica_id="svc-v1-abc", service="svc", version=1, kind="predictor",
                python="", package_dir=Path("/opt/modelport/package"), config={},
                env={"LOG_LEVEL": "debug", "PYTHONPATH": "/extra"}, timeout_s=30.0,
                runtime="docker", image="modelport/model:abc")
    base.update(fields)
    return ReplicaSpec(**base)


def test_container_has_no_network_limits_and_gpu_device_requests(tmp_path: Path) -> None:
    opts = container_options(_spec(resources={"cpu": 1.5, "memory": "512Mi", "gpu": 2},
                                   gpus=["1", "3"]),
                             shim_root=tmp_path / "shim", sock_dir=tmp_path / "sock",
                             runtime="r1")
    assert opts["network_mode"] == "none"
    assert opts["nano_cpus"] == 1_500_000_000
    assert opts["mem_limit"] == opts["memswap_limit"] == 512 * 2**20
    (request,) = opts["device_requests"]
    assert request["DeviceIDs"] == ["1", "3"] and request["Capabilities"] == [["gpu"]]
    # contained (docs/security.md): never root, nothing to escalate with, nothing writable
    # but a scratch tmpfs
    assert opts["user"] == (f"{os.getuid()}:{os.getgid()}" if os.getuid() else "65534:65534")
    assert opts["security_opt"] == ["no-new-privileges"] and opts["cap_drop"] == ["ALL"]
    assert opts["read_only"] is True and "/tmp" in opts["tmpfs"]
    mounts = {m["Target"]: m for m in opts["mounts"]}
    assert mounts["/opt/modelport/shim"]["ReadOnly"] is True
    assert mounts["/run/modelport"]["Source"] == str(tmp_path / "sock")
    env = opts["environment"]
    assert env["PYTHONPATH"] == "/opt/modelport/shim:/extra" and env["LOG_LEVEL"] == "debug"
    assert opts["command"][:3] == ["/opt/modelport/venv/bin/python", "-m",
                                   "modelport_worker.shim"]
    assert opts["labels"]["modelport.replica"] == "svc-v1-abc"


def test_no_limits_and_no_gpus_unless_asked(tmp_path: Path) -> None:
    opts = container_options(_spec(gpus=[]), shim_root=tmp_path, sock_dir=tmp_path,
                             runtime="r1")
    assert not {"nano_cpus", "mem_limit", "device_requests"} & set(opts)


def test_sizes_and_exit_statuses() -> None:
    assert memory_bytes("2Gi") == 2 * 2**30 and memory_bytes("1.5G") == 1_500_000_000
    assert memory_bytes("") == 0
    with pytest.raises(Exception, match="not a size"):
        memory_bytes("lots")
    assert exit_status(137) == -9 and exit_status(143) == -15 and exit_status(3) == 3


def test_replica_fails_with_the_reason_when_no_engine_answers(tmp_path: Path) -> None:
    async def scenario() -> None:
        nowhere = f"unix://{tmp_path}/no-docker.sock"
        backend = DockerBackend(tmp_path / "shim", tmp_path,
                                client_factory=lambda: docker.DockerClient(base_url=nowhere))
        sup = Supervisor(tmp_path / "work", backend, restart_initial_s=30)
        await sup.start(_spec())
        info = await wait_state(sup, "svc-v1-abc", "failed")
        assert "no Docker engine answers" in info.message
        await sup.close()

    run(scenario())
