"""Metrics, stats, logs, events and `top` on a real platform with tracing off (the default).

One platform for the module, started with a small replica-log rotation size; one service
(`metered`) that prints what it sees and fails on "boom".
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import modelport
from modelport.home import HomeLayout
from modelport.v1 import inference_pb2, inference_pb2_grpc
from tests.conftest import AUTH_HEADERS, BIN, ROOT, RunningPlatform, start_platform
from tests.observability.support import observed_package, traceparent

MAX_LOG_BYTES = 20_000
BACKUPS = 2
SERVICE = "metered"


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(tmp_path_factory.mktemp("home"), env={
        "MODELPORT_GATEWAY_AUTH": "false",  # auth is another concern; these read /api/v1
        "MODELPORT_RUNTIME_REPLICA_LOG_MAX_BYTES": str(MAX_LOG_BYTES),
        "MODELPORT_RUNTIME_REPLICA_LOG_BACKUPS": str(BACKUPS)})
    try:
        with modelport.Client(p.url) as c:
            c.create(observed_package(tmp_path_factory.mktemp("pkg")), name=SERVICE)
        yield p
    finally:
        p.stop()


def infer(plat: RunningPlatform, text: str, repeat: int = 0, **kw: object) -> httpx.Response:
    return httpx.post(f"{plat.url}/v1/services/{SERVICE}/infer",
                      json={"text": text, "repeat": repeat}, timeout=60, **kw)  # type: ignore


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams: dict[str, object], family: str, sample: str, **labels: str) -> list[float]:
    fam = fams[family]
    return [s.value for s in fam.samples  # type: ignore[attr-defined]
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "modelport"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})


# --------------------------------------------------------------------------- metrics


def test_metrics_count_every_request_by_status_class_with_one_latency_observation_each(
        plat: RunningPlatform) -> None:
    sent = {"2xx": 0, "4xx": 0, "5xx": 0}
    for i in range(5):
        assert infer(plat, f"ok-{i}").status_code == 200
        sent["2xx"] += 1
    for _ in range(2):
        assert infer(plat, "boom").status_code == 500  # the model raises
        sent["5xx"] += 1
    r = httpx.post(f"{plat.url}/v1/services/{SERVICE}/infer", json={"nope": 1})
    assert r.status_code == 422  # unknown input, rejected at the gateway
    r = httpx.post(f"{plat.url}/v1/services/{SERVICE}/infer", content=b"{not json",
                   headers={"content-type": "application/json"})
    assert r.status_code == 422
    sent["4xx"] += 2
    with grpc.insecure_channel(f"127.0.0.1:{plat.grpc_port}") as ch:  # the gRPC front door
        resp = inference_pb2_grpc.InferenceStub(ch).Predict(inference_pb2.PredictRequest(
            service=SERVICE, inputs=[inference_pb2.InputValue(name="text", text="grpc"),
                                     inference_pb2.InputValue(name="repeat", json=b"0")]))
        assert json.loads(resp.output.json) == {"echo": "grpc"}
        sent["2xx"] += 1
    assert httpx.post(f"{plat.url}/v1/services/no-such-service/infer",
                      json={"text": "x"}).status_code == 404
    n = sum(sent.values())
    # metadata and readiness calls route too, but are not inference requests
    for path in (f"/v2/models/{SERVICE}", f"/v2/models/{SERVICE}/ready",
                 "/v2/models/no-such-service/ready"):
        httpx.get(f"{plat.url}{path}")

    fams = families(httpx.get(f"{plat.url}/metrics").text)
    for cls, count in sent.items():
        assert samples(fams, "modelport_requests", "modelport_requests_total",
                       service=SERVICE, code_class=cls) == [count], cls
    assert sum(samples(fams, "modelport_requests", "modelport_requests_total",
                       service=SERVICE)) == n
    # every request of the service was routed to version 1, failures included
    assert samples(fams, "modelport_request_duration_seconds",
                   "modelport_request_duration_seconds_count", service=SERVICE,
                   version="1") == [n]
    buckets = samples(fams, "modelport_request_duration_seconds",
                      "modelport_request_duration_seconds_bucket", service=SERVICE,
                      version="1", le="+Inf")
    assert buckets == [n]
    # a name that matches no service is counted without the caller's name as a label
    assert samples(fams, "modelport_requests", "modelport_requests_total", service="",
                   code_class="4xx") == [1]
    assert not samples(fams, "modelport_requests", "modelport_requests_total",
                       service="no-such-service")
    assert samples(fams, "modelport_requests_in_flight", "modelport_requests_in_flight",
                   service=SERVICE) == [0]
    # the control plane's view, from the registry, in the same scrape
    assert samples(fams, "modelport_service_replicas_desired",
                   "modelport_service_replicas_desired", service=SERVICE) == [1]
    assert samples(fams, "modelport_service_replicas_ready",
                   "modelport_service_replicas_ready", service=SERVICE) == [1]
    assert samples(fams, "modelport_service_phase", "modelport_service_phase",
                   service=SERVICE, phase="running") == [1]
    assert sum(samples(fams, "modelport_build_duration_seconds",
                       "modelport_build_duration_seconds_count")) >= 1

    # the runtime's own /metrics: what reached it (the gateway rejected the 4xx)
    url = json.loads((HomeLayout(plat.home).run / "runtime-metrics.json").read_text())["url"]
    rt = families(httpx.get(url).text)
    assert samples(rt, "modelport_runtime_requests", "modelport_runtime_requests_total",
                   service=SERVICE, code_class="2xx") == [sent["2xx"]]
    assert samples(rt, "modelport_runtime_requests", "modelport_runtime_requests_total",
                   service=SERVICE, code_class="5xx") == [sent["5xx"]]
    reached = sent["2xx"] + sent["5xx"]
    for phase in ("queue", "preprocess", "predict"):
        assert samples(rt, "modelport_worker_phase_seconds",
                       "modelport_worker_phase_seconds_count", service=SERVICE,
                       phase=phase) == [reached], phase
    assert samples(rt, "modelport_worker_phase_seconds", "modelport_worker_phase_seconds_count",
                   service=SERVICE, phase="postprocess") == [sent["2xx"]]
    assert samples(rt, "modelport_queue_wait_seconds", "modelport_queue_wait_seconds_count",
                   service=SERVICE) == [reached]
    assert samples(rt, "modelport_replicas_ready", "modelport_replicas_ready",
                   service=SERVICE) == [1]
    assert samples(rt, "modelport_replicas", "modelport_replicas", service=SERVICE,
                   state="ready") == [1]
    assert samples(rt, "modelport_queue_depth", "modelport_queue_depth", service=SERVICE) == [0]
    assert samples(rt, "modelport_cold_starts", "modelport_cold_starts_total",
                   service=SERVICE) == [1]
    assert samples(rt, "modelport_cold_start_duration_seconds",
                   "modelport_cold_start_duration_seconds_count", service=SERVICE) == [1]
    (memory,) = samples(rt, "modelport_replica_memory_bytes", "modelport_replica_memory_bytes",
                        service=SERVICE)
    assert memory > 1_000_000  # a Python process holds megabytes
    (cpu,) = samples(rt, "modelport_replica_cpu_seconds", "modelport_replica_cpu_seconds_total",
                     service=SERVICE)
    assert cpu > 0

    # the stats API over the same requests (the 404 belongs to no service)
    stats = httpx.get(f"{plat.url}/api/v1/services/{SERVICE}/stats",
                      headers=AUTH_HEADERS).json()
    minute = stats["windows"]["1m"]
    assert (minute["calls"], minute["success"], minute["failed"]) == (
        n, sent["2xx"], sent["4xx"] + sent["5xx"])
    lat = minute["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
    assert stats["phase"] == "running" and stats["ready_replicas"] == 1

    # `modelport top`, one frame
    top = cli("top", "--once", "--url", plat.url)
    assert top.returncode == 0, top.stderr
    row = next(line for line in top.stdout.splitlines() if SERVICE in line)
    cells = row.split()  # the 80-column table has no vertical rules
    assert cells[:4] == [SERVICE, "running", "1", "1/1"]
    assert cells[5] == str(n) and cells[6] == str(sent["4xx"] + sent["5xx"])


def test_top_redraws_live(plat: RunningPlatform) -> None:
    top = cli("top", "--iterations", "2", "--interval", "0.2", "--url", plat.url)
    assert top.returncode == 0, top.stderr
    assert SERVICE in top.stdout


def test_tracing_is_off_by_default_but_a_client_trace_id_is_echoed(plat: RunningPlatform
                                                                   ) -> None:
    plain = infer(plat, "plain")
    assert plain.status_code == 200 and "x-trace-id" not in plain.headers
    assert plain.headers["x-request-id"]
    header, trace_id, _ = traceparent()
    echoed = infer(plat, "traced", headers={"traceparent": header})
    assert echoed.headers["x-trace-id"] == trace_id


# --------------------------------------------------------------------------- logs


def _lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str | None]:
    q: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            q.put(line.rstrip("\n"))
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return q


def test_logs_follow_shows_a_line_the_model_printed(plat: RunningPlatform) -> None:
    proc = subprocess.Popen([str(BIN / "modelport"), "logs", SERVICE, "--follow", "--tail",
                             "5", "--url", plat.url], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines = _lines_of(proc)
        time.sleep(1.0)  # the follower is attached before the model prints
        marker = f"follow-marker-{time.time_ns()}"
        assert infer(plat, marker).status_code == 200
        deadline = time.monotonic() + 30
        seen = []
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            assert line is not None, f"`logs --follow` exited: {seen}"
            seen.append(line)
            if f"obs-model saw: {marker}" in line:
                break
        else:
            raise AssertionError(f"the model's line never came; got {seen[-10:]}")
        assert line.split(" ", 2)[1].startswith(f"[{SERVICE}-v1-")  # which replica said it
    finally:
        proc.terminate()
        proc.wait(10)


def test_logs_since_tail_and_the_access_and_error_logs(plat: RunningPlatform) -> None:
    assert infer(plat, "boom").status_code == 500
    out = cli("logs", SERVICE, "--since", "1h", "--url", plat.url)
    assert out.returncode == 0, out.stderr
    assert "obs-model: setup done" in out.stdout
    assert "ValueError: asked to fail" in out.stdout  # the traceback is in the app log
    assert cli("logs", SERVICE, "--tail", "1", "--url", plat.url).stdout.count("\n") == 1
    later = cli("logs", SERVICE, "--since", "2999-01-01T00:00:00Z", "--url", plat.url)
    assert later.returncode == 0 and later.stdout == ""

    access = [json.loads(ln) for ln in modelport.Client(plat.url).logs(
        SERVICE, kind="access", as_json=True)]
    assert {e["status"] for e in access} >= {200, 422, 500}
    assert all(e["service"] == SERVICE and e["request_id"] for e in access)
    errors = cli("logs", SERVICE, "--kind", "error", "--url", plat.url).stdout.splitlines()
    assert errors and all(" 500 " in ln or " 422 " in ln for ln in errors)
    assert any("model.error: ValueError: asked to fail" in ln for ln in errors)

    bad = httpx.get(f"{plat.url}/api/v1/services/{SERVICE}/logs", params={"since": "soon"},
                    headers=AUTH_HEADERS)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "logs.since_invalid"
    missing = httpx.get(f"{plat.url}/api/v1/services/{SERVICE}/logs",
                        params={"replica": "nope"}, headers=AUTH_HEADERS)
    assert missing.status_code == 404
    assert httpx.get(f"{plat.url}/api/v1/services/ghost/logs",
                     headers=AUTH_HEADERS).status_code == 404


def test_replica_logs_rotate_at_the_configured_size(plat: RunningPlatform) -> None:
    # each filler line is ~110 bytes: 400 of them are twice the rotation size
    for _ in range(3):
        assert infer(plat, "fill", repeat=400).status_code == 200
    replicas = sorted((plat.home / "runtime" / "replicas").glob(f"{SERVICE}-v1-*"))
    assert len(replicas) == 1
    files = sorted(replicas[0].glob("replica.log*"))
    names = {f.name for f in files}
    assert names == {"replica.log", "replica.log.1", "replica.log.2"}, names
    for f in files:
        assert f.stat().st_size <= MAX_LOG_BYTES, (f.name, f.stat().st_size)
    # reading spans the rotated files, oldest first
    lines = list(modelport.Client(plat.url).logs(SERVICE, tail=1000))
    fillers = [ln for ln in lines if "obs-model filler" in ln]
    assert len(fillers) > MAX_LOG_BYTES // 110
    numbers = [int(ln.split("filler ")[1][:5]) for ln in fillers]
    assert numbers[-1] == 399


def test_component_logs_are_json_with_the_request_id(plat: RunningPlatform) -> None:
    r = infer(plat, "boom", headers={"X-Request-ID": "json-log-probe"})
    assert r.status_code == 500
    deadline = time.monotonic() + 10
    while True:
        records = [json.loads(ln) for ln in (plat.home / "logs" / "runtime.log").read_text()
                   .splitlines() if ln.startswith("{")]
        hits = [r for r in records if r.get("request_id") == "json-log-probe"]
        if hits or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert hits, records[-5:]
    assert hits[0]["component"] == "runtime" and hits[0]["level"] == "warning"
    assert "model.error" in hits[0]["message"]
    gateway = (plat.home / "logs" / "gateway.log").read_text().splitlines()
    assert any(json.loads(ln).get("component") == "gateway" for ln in gateway
               if ln.startswith("{"))


# --------------------------------------------------------------------------- events


def test_events_per_service_and_version_and_in_get(plat: RunningPlatform) -> None:
    with modelport.Client(plat.url) as c:
        svc = c.get(SERVICE)
        assert "ReplicaStarting" in {e["reason"] for e in svc["events"]}
        v1 = c.events(SERVICE, version=1)
        assert v1 and all(e["version"] == 1 for e in v1)
        assert {"BuildStarted", "BuildSucceeded"} <= {e["reason"] for e in v1}
    model = httpx.get(f"{plat.url}/api/v1/models/{SERVICE}/versions/1/events",
                      headers=AUTH_HEADERS).json()
    assert {"VersionCreated", "BuildSucceeded"} <= {e["reason"] for e in model["events"]}
    shown = cli("get", SERVICE, "--url", plat.url)
    assert shown.returncode == 0 and "recent events:" in shown.stdout
    assert "ReplicaStarting" in shown.stdout
    listed = cli("events", SERVICE, "--version", "1", "--url", plat.url)
    assert "BuildSucceeded" in listed.stdout and "ServiceCreated" not in listed.stdout


def test_the_home_has_rotating_access_logs(plat: RunningPlatform) -> None:
    path = Path(plat.home / "logs" / "access.log")
    for _ in range(100):  # the gateway writes its lines in batches, within 0.2 s
        if path.exists() and path.read_text():
            break
        time.sleep(0.05)
    access = path.read_text().splitlines()
    entry = json.loads(access[-1])
    assert {"ts", "request_id", "service", "version", "status", "duration_ms"} <= set(entry)
