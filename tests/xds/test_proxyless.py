"""Proxyless gRPC over the platform's xDS server, with grpcio's own xDS client.

A real `modelport up --xds-port 0`, real services, and a client process that dials
``xds:///NAME`` with the bootstrap `modelport xds bootstrap` prints (tests/xds/xds_client.py):
the split and the pins it sees, a traffic change, a stop, a delete, a rolling update and
the xDS server's own SIGKILL reaching it while it runs, a NACK of an update it cannot take
(reported, and the last good config kept), a keyless call to an auth-required service
refused, a key's rate limit, and an unmodified tritonclient.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelport
from tests.conftest import BIN, ROOT, RunningPlatform, kill_component, start_platform
from tests.rollout.load import wait_until

HERE = Path(__file__).resolve().parent
TAGGED = HERE / "packages" / "tagged"
LUA = {"name": "envoy.filters.http.lua", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
    "default_source_code": {"inline_string": "function envoy_on_request(h) end"}}}


class XdsClient:
    """tests/xds/xds_client.py in a process of its own (grpc's xDS client is per process)."""

    def __init__(self, service: str, bootstrap: str, log: Path) -> None:
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.xds.xds_client", service], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            env={**os.environ, "GRPC_XDS_BOOTSTRAP_CONFIG": bootstrap,
                 "PYTHONPATH": str(ROOT)})

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the xDS client died; its log: {self.log.name}"
        return json.loads(line)

    def call(self, n: int, pin: str = "-", key: str = "") -> dict[str, Any]:
        self.send(f"call {n} {pin} {key}")
        return self.answer()

    def served(self, n: int = 1, **kw: Any) -> dict[str, Any] | None:
        """The answer when all n calls succeeded, else None (for wait_until)."""
        got = self.call(n, **kw)
        return got if not got["errors"] else None

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def modelport_cli(plat: RunningPlatform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "modelport"), *args, "--home", str(plat.home)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(tmp_path_factory.mktemp("home"), "--xds-port", "0")
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="module")
def admin(plat: RunningPlatform) -> Iterator[modelport.Client]:
    with modelport.Client(plat.url, home=plat.home) as c:
        yield c


@pytest.fixture(scope="module")
def bootstrap(plat: RunningPlatform) -> str:
    m = plat.wait_for(r"xds: 127\.0\.0\.1:(\d+)")
    done = modelport_cli(plat, "xds", "bootstrap")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["xds_servers"][0]["server_uri"] == f"127.0.0.1:{m.group(1)}"
    return done.stdout


@pytest.fixture
def client_factory(bootstrap: str, tmp_path: Path) -> Iterator[Any]:
    made: list[XdsClient] = []

    def make(service: str) -> XdsClient:
        made.append(XdsClient(service, bootstrap, tmp_path / f"client-{len(made)}.log"))
        return made[-1]

    yield make
    for c in made:
        c.close()


def second_version(tmp: Path) -> Path:
    """TAGGED with one comment more: a new version of the same package."""
    v2 = tmp / "v2"
    shutil.copytree(TAGGED, v2)
    with (v2 / "predict.py").open("a") as f:
        f.write("# version 2\n")
    return v2


def two_versions(admin: modelport.Client, name: str, tmp: Path) -> None:
    """``name`` with versions 1 and 2."""
    admin.create(str(TAGGED), name=name, timeout=300)
    admin.update(name, str(second_version(tmp)), timeout=300)


def set_traffic(plat: RunningPlatform, name: str, split: dict[int, float]) -> None:
    r = httpx.put(f"{plat.url}/api/v1/services/{name}/traffic", headers=admin_headers(plat),
                  json={"traffic": [{"version": v, "percent": p} for v, p in split.items()]},
                  timeout=30)
    assert r.status_code == 200, r.text


def admin_headers(plat: RunningPlatform) -> dict[str, str]:
    return {"authorization": f"Bearer {(plat.home / 'admin.token').read_text().strip()}"}


def test_split_pins_and_changes_reach_a_running_client(plat: RunningPlatform,
                                                       admin: modelport.Client,
                                                       client_factory: Any,
                                                       tmp_path: Path) -> None:
    two_versions(admin, "split", tmp_path)
    set_traffic(plat, "split", {1: 90, 2: 10})
    client = client_factory("split")
    wait_until(lambda: (lambda got: set(got["versions"]) == {"1", "2"} and not got[
        "errors"])(client.call(50)), 60, "both versions answering through xDS")
    # the split as the client applies it, once it has it all: 200 calls, 90/10 within 4.5
    # standard deviations
    seen = client.call(200)
    assert not seen["errors"], seen
    n1, n = seen["versions"].get("1", 0), 200
    sd = math.sqrt(n * 0.9 * 0.1)
    assert abs(n1 - 0.9 * n) <= 4.5 * sd, seen
    # pins: the x-model-version header picks the version's cluster
    assert client.call(20, pin="2")["versions"] == {"2": 20}
    assert client.call(20, pin="1")["versions"] == {"1": 20}
    unknown = client.call(3, pin="7")
    assert not unknown["versions"] and all(k.startswith("UNAVAILABLE") for k in
                                           unknown["errors"]), unknown
    # a traffic change reaches the running client within seconds
    set_traffic(plat, "split", {2: 100})
    wait_until(lambda: client.call(20)["versions"] == {"2": 20}, 30, "all traffic on v2")
    # stopped: no healthy endpoint; started again: served again
    admin.stop("split")
    wait_until(lambda: (lambda got: not got["versions"])(client.call(3)), 30,
               "calls to fail while stopped")
    admin.start("split", timeout=300)
    wait_until(lambda: client.served(5), 60, "served again after start")
    # deleted: the endpoint says not found while it closes, then the listener's removal
    # reaches the client: the resource does not exist
    admin.delete("split")
    gone = wait_until(lambda: (lambda got: got if any(
        "does not exist" in k for k in got["errors"]) else None)(client.call(1)), 30,
        "the listener's removal to reach the client")
    assert all(k.startswith("UNAVAILABLE") for k in gone["errors"]), gone


def test_clients_keep_working_without_the_xds_server_and_reconverge(
        plat: RunningPlatform, admin: modelport.Client, client_factory: Any,
        tmp_path: Path) -> None:
    two_versions(admin, "steady", tmp_path)
    set_traffic(plat, "steady", {1: 100})
    client = client_factory("steady")
    wait_until(lambda: (client.served(10) or {}).get("versions") == {"1": 10}, 60,
               "v1 served through xDS")
    kill_component(plat, "xds")  # SIGKILL; waits until the launcher started it again
    # the client kept its config meanwhile; nothing failed
    after = client.call(30)
    assert after["versions"] == {"1": 30} and not after["errors"], after
    set_traffic(plat, "steady", {2: 100})  # ...and it follows the new server
    wait_until(lambda: client.call(10)["versions"] == {"2": 10}, 60,
               "the client to reconverge on the restarted xDS server")
    admin.delete("steady")


def test_a_rolling_update_under_proxyless_load_fails_no_call(
        plat: RunningPlatform, admin: modelport.Client, client_factory: Any,
        tmp_path: Path) -> None:
    admin.create(str(TAGGED), name="rolling", timeout=300)
    client = client_factory("rolling")
    wait_until(lambda: client.served(5), 60, "served through xDS")
    stop = tmp_path / "stop"
    client.send(f"loop {stop}")  # calls back to back while the update rolls
    try:
        admin.update("rolling", str(second_version(tmp_path)), timeout=300)
        # the old version's replicas drain and stop: wait until only v2 is left
        wait_until(lambda: {r["version"] for r in admin.get("rolling")["replicas"]} == {2},
                   120, "the old replica to be gone")
    finally:
        stop.touch()
    load = client.answer()
    assert not load["errors"], load
    assert set(load["versions"]) == {"1", "2"}, load  # it ran across the switch
    assert client.call(10)["versions"] == {"2": 10}
    admin.delete("rolling")


def test_a_nacked_update_is_reported_and_the_last_good_config_stays(
        plat: RunningPlatform, admin: modelport.Client, client_factory: Any) -> None:
    admin.create(str(TAGGED), name="nacked", timeout=300)
    client = client_factory("nacked")
    wait_until(lambda: client.served(5), 60, "served through xDS")
    filters = plat.home / "xds-filters.json"
    # a valid Envoy filter that grpc does not implement: grpc rejects the listener
    filters.write_text(json.dumps([LUA]))
    try:
        def nack() -> dict[str, Any] | None:
            done = modelport_cli(plat, "xds", "status", "--json")
            assert done.returncode == 0, done.stderr
            for c in json.loads(done.stdout)["clients"]:
                for t in c["types"]:
                    if t["type"] == "LDS" and t.get("nack") and "nacked" in t["names"]:
                        return t
            return None

        rejected = wait_until(nack, 30, "the client to NACK the listener")
        assert rejected["status"] == "NACKED" and "lua" in rejected["nack"]["message"].lower()
        events = wait_until(lambda: [e for e in admin.events("nacked")
                                     if e["reason"] == "XdsUpdateRejected"], 30, "the event")
        assert "rejected LDS" in events[0]["message"] and events[0]["type"] == "Warning"
        # the last good listener is still in force
        assert not client.call(10)["errors"]
    finally:
        filters.unlink()

    def acked() -> bool:
        done = modelport_cli(plat, "xds", "status", "--json")
        return any(t["type"] == "LDS" and t["status"] == "ACKED" and "nacked" in t["names"]
                   for c in json.loads(done.stdout)["clients"] for t in c["types"])

    wait_until(acked, 30, "the next update to be ACKed")
    assert not client.call(5)["errors"]
    admin.delete("nacked")


def test_auth_limits_and_metrics_apply_to_proxyless_calls(
        plat: RunningPlatform, admin: modelport.Client, client_factory: Any) -> None:
    admin.apply("guarded", json.dumps({"auth": {"required": True}}), TAGGED, timeout=300)
    key = admin.create_key(["invoke:guarded"], name="xds-test")["token"]
    client = client_factory("guarded")
    refused = wait_until(lambda: (lambda got: got if any(
        k.startswith("UNAUTHENTICATED") for k in got["errors"]) else None)(client.call(1)),
        60, "a keyless call to be refused")
    assert not refused["versions"], refused
    assert client.call(5, key=key)["versions"] == {"1": 5}
    # a key's rate limit holds on the direct port too
    slow = admin.create_key(["invoke:guarded"], name="xds-slow", rate_limit=0.05)["token"]
    limited = client.call(2, key=slow)
    assert limited["versions"] == {"1": 1}, limited
    assert any(k.startswith("RESOURCE_EXHAUSTED") for k in limited["errors"]), limited
    # and the calls are counted in the runtime's metrics (no gateway saw them)
    runtime_metrics = plat.wait_for(r"runtime: (http://\S+/metrics)").group(1)
    text = httpx.get(runtime_metrics, timeout=30).text
    counted = [line for line in text.splitlines() if line.startswith(
        "modelport_runtime_requests_total") and 'service="guarded"' in line]
    assert counted and sum(float(line.rsplit(" ", 1)[1]) for line in counted) >= 6, counted
    admin.delete("guarded")


TRITON = """
import numpy as np, tritonclient.grpc as tc
client = tc.InferenceServerClient("xds:///triton")
x = tc.InferInput("x", [1, 2], "FP32")
x.set_data_from_numpy(np.ones((1, 2), np.float32))
reply = client.infer("triton", [x])
print(reply.get_response().model_version, reply.as_numpy("tag")[0].decode())
"""


def test_an_unmodified_tritonclient_dials_xds(plat: RunningPlatform, admin: modelport.Client,
                                             bootstrap: str) -> None:
    admin.create(str(TAGGED), name="triton", timeout=300)

    def dial() -> subprocess.CompletedProcess[str] | None:
        """One run of the client; None while the new service's route has not reached xDS
        clients yet (within a poll or two of the create)."""
        done = subprocess.run([sys.executable, "-c", TRITON], capture_output=True, text=True,
                              timeout=120, cwd=ROOT,
                              env={**os.environ, "GRPC_XDS_BOOTSTRAP_CONFIG": bootstrap})
        return done if done.returncode == 0 else None

    done = wait_until(dial, 60, "tritonclient answered over xds:///triton")
    version, tag = done.stdout.split()
    assert version == "1" and tag.isdigit(), done.stdout
    admin.delete("triton")
