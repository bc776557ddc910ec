"""`modelport up` becomes a slim supervisor (`python -m modelport.launcher`, same pid) that
holds none of the CLI's or SDK's libraries, yet still starts every component, restarts one
that is killed, and stops them all on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelport.home import HomeLayout
from tests.conftest import ROOT, start_platform

#: what the supervising process must not import: the CLI (typer, rich, click), the SDK
#: (httpx), gRPC and its protobuf runtime, pydantic, numpy
HEAVY = ("typer", "rich", "click", "httpx", "grpc", "google.protobuf", "pydantic", "numpy",
         "modelport.client", "modelport.cli")


def _children(pid: int) -> dict[str, int]:
    """Component name -> pid of the direct children of ``pid`` that run a component."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == pid and b"-m" in argv:
            mod = argv[argv.index(b"-m") + 1].decode()
            if mod.startswith("services."):
                out[mod.split(".", 1)[1]] = int(d.name)
    return out


def _serving(address: str) -> bool:
    async def check() -> bool:
        async with grpc.aio.insecure_channel(address) as ch:
            try:
                resp = await health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(), timeout=2)
            except grpc.aio.AioRpcError:
                return False
        return resp.status == health_pb2.HealthCheckResponse.SERVING

    return asyncio.run(check())


def test_launcher_module_imports_no_cli_sdk_or_grpc() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import json, sys, modelport.launcher; "
         "print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=True)
    loaded = json.loads(out.stdout)
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == [], f"modelport/launcher.py imports {heavy}; keep them out of the supervisor"


def test_up_supervises_from_the_slim_launcher(tmp_path: Path) -> None:
    home = tmp_path / "home"
    plat = start_platform(home)
    try:
        plat.wait_for(r"^metrics: ")
        pid = plat.proc.pid
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"modelport.launcher" in argv and b"up" in argv, argv
        # the native parts of grpc and pydantic would be mapped if they were imported
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "cygrpc" not in maps and "_pydantic_core" not in maps
        children = _children(pid)
        assert set(children) == {"builder", "runtime", "registry", "gateway"}, children

        # a killed component comes back (ready again through its ready pipe)
        os.kill(children["builder"], signal.SIGKILL)
        plat.wait_for(r"modelport: builder exited with code -9; restarting in 1s", timeout=60)
        address = HomeLayout(home).socket("builder")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = _children(pid).get("builder")
            if new is not None and new != children["builder"] and _serving(address):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the builder was not restarted:\n" + "".join(plat.lines)
                                 + plat.component_logs())
        children = _children(pid)
    finally:
        code = plat.stop()
    assert code == 0, "".join(plat.lines)
    plat.wait_for(r"^stopping\.\.\.", timeout=10)  # printed before it exits
    for name, child in children.items():  # every component is gone with it
        assert not Path(f"/proc/{child}").exists(), f"{name} ({child}) outlived the launcher"
