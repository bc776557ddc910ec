"""One request, one trace: spans from gateway, runtime and replica, rooted at the client's
traceparent, exported over OTLP/gRPC to a real receiver; controller and build traces too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import modelport
from tests.conftest import RunningPlatform, start_platform
from tests.observability.otlp import OtlpReceiver, Span
from tests.observability.support import observed_package, traceparent


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


@pytest.fixture(scope="module")
def traced(receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[RunningPlatform]:
    plat = start_platform(tmp_path_factory.mktemp("home"), env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100",
        "MODELPORT_GATEWAY_AUTH": "false"})  # auth is another concern
    try:
        with modelport.Client(plat.url) as c:
            c.create(observed_package(tmp_path_factory.mktemp("pkg")), name="traced")
        yield plat
    finally:
        plat.stop()


def _services(spans: list[Span]) -> set[str]:
    return {s.service for s in spans}


def test_one_request_is_one_trace_across_gateway_runtime_and_replica(
        traced: RunningPlatform, receiver: OtlpReceiver) -> None:
    header, trace_id, parent_id = traceparent()
    resp = httpx.post(f"{traced.url}/v1/services/traced/infer", json={"text": "hi", "repeat": 0},
                      headers={"traceparent": header, "X-Request-ID": "trace-test-1"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-trace-id"] == trace_id
    assert resp.headers["x-request-id"] == "trace-test-1"
    assert resp.headers["traceresponse"].split("-")[1] == trace_id

    wanted = {"modelport-gateway", "modelport-runtime", "modelport-replica"}

    def complete(all_spans: list[Span]) -> bool:
        """Every component exported and every parent arrived (batches come separately)."""
        mine = [s for s in all_spans if s.trace_id == trace_id]
        ids = {s.span_id for s in mine}
        return wanted <= _services(mine) and [s.parent_id for s in mine
                                              if s.parent_id not in ids] == [parent_id]

    receiver.wait_for(complete)
    spans = receiver.trace(trace_id)
    by_id = {s.span_id: s for s in spans}
    assert len(by_id) == len(spans), "span ids are unique"

    # a single tree whose root hangs off the client's span
    roots = [s for s in spans if s.parent_id not in by_id]
    assert len(roots) == 1, [(s.service, s.name, s.parent_id) for s in roots]
    root = roots[0]
    assert root.parent_id == parent_id
    assert root.service == "modelport-gateway" and root.name == "POST /v1/services/{name}/infer"
    assert root.attributes["modelport.request_id"] == "trace-test-1"
    for s in spans:  # every span reaches the root through its parents
        seen = s
        while seen is not root:
            seen = by_id[seen.parent_id]

    def chain(name: str) -> list[str]:
        node = next(s for s in spans if s.name == name)
        names = [node.name]
        while node.parent_id in by_id:
            node = by_id[node.parent_id]
            names.append(node.name)
        return names

    # gateway -> runtime (over gRPC) -> replica (the worker's phases)
    up = chain("worker.predict")
    assert up[:3] == ["worker.predict", "replica.request", "replica.call"]
    assert "/modelport.v1.Runtime/Predict" in up[3:] or "modelport.v1.Runtime/Predict" in up[3:]
    assert "runtime.call" in up and up[-1] == root.name
    names = {s.name for s in spans}
    assert {"auth", "route", "queue.wait", "worker.queue", "worker.preprocess",
            "worker.postprocess"} <= names
    replica = [s for s in spans if s.service == "modelport-replica"]
    assert {s.name for s in replica} == {"replica.request", "worker.queue",
                                         "worker.preprocess", "worker.predict",
                                         "worker.postprocess"}
    for s in replica:
        assert s.attributes["modelport.request_id"] == "trace-test-1"
        assert s.start_ns <= s.end_ns


def test_without_a_client_traceparent_the_gateway_starts_the_trace(
        traced: RunningPlatform, receiver: OtlpReceiver) -> None:
    resp = httpx.post(f"{traced.url}/v1/services/traced/infer", json={"text": "again", "repeat": 0})
    assert resp.status_code == 200
    trace_id = resp.headers["x-trace-id"]
    assert len(trace_id) == 32 and int(trace_id, 16)
    spans = receiver.wait_for(lambda spans: {"modelport-replica", "modelport-gateway"} <= {
        s.service for s in spans if s.trace_id == trace_id and (
            s.service == "modelport-replica" or not s.parent_id)})
    mine = [s for s in spans if s.trace_id == trace_id]
    roots = [s for s in mine if not s.parent_id]
    assert [r.service for r in roots] == ["modelport-gateway"]


def test_controller_and_build_work_are_traced(traced: RunningPlatform,
                                               receiver: OtlpReceiver) -> None:
    spans = receiver.wait_for(lambda spans: {"reconcile", "build", "replica.start"}
                              <= {s.name for s in spans})
    reconciles = [s for s in spans if s.name == "reconcile"]
    assert all(s.service == "modelport-registry" and not s.parent_id for s in reconciles)
    assert {s.attributes["modelport.service"] for s in reconciles} == {"traced"}
    build = next(s for s in spans if s.name == "build")
    assert build.service == "modelport-builder" and not build.parent_id
    # starting the replica is part of the reconcile pass that asked for it, via the runtime
    start = next(s for s in spans if s.name == "replica.start")
    assert start.service == "modelport-runtime"
    assert start.trace_id in {s.trace_id for s in reconciles}
    # controller polling (ListReplicas every pass) makes no traces of its own
    assert not [s for s in spans if "ListReplicas" in s.name and not s.parent_id]


def test_a_failing_request_is_an_error_span_with_its_request_id(
        traced: RunningPlatform, receiver: OtlpReceiver, tmp_path: Path) -> None:
    header, trace_id, _ = traceparent()
    resp = httpx.post(f"{traced.url}/v1/services/traced/infer", json={"text": "boom", "repeat": 0},
                      headers={"traceparent": header})
    assert resp.status_code == 500
    assert resp.headers["x-trace-id"] == trace_id
    rid = resp.json()["metadata"]["request_id"]
    spans = receiver.wait_for(lambda spans: any(
        s.trace_id == trace_id and s.name.startswith("POST") for s in spans))
    root = next(s for s in spans if s.trace_id == trace_id and s.name.startswith("POST"))
    assert root.status_code == 2  # STATUS_CODE_ERROR
    assert root.attributes["modelport.request_id"] == rid
    assert root.attributes["http.response.status_code"] == 500


def test_a_gitops_sync_is_a_trace_that_the_gateway_continues(
        traced: RunningPlatform, receiver: OtlpReceiver, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.watcher.support import Repo, service_yaml

    repo = Repo(tmp_path / "repo")
    repo.write("config/synced.yaml", service_yaml("synced"))
    repo.commit("add synced")
    out = subprocess.run(
        [sys.executable, "-m", "services.watcher", str(repo.config), "--once", "--url",
         traced.url], capture_output=True, text=True, timeout=300,
        env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
             "OTEL_BSP_SCHEDULE_DELAY": "100"})
    assert out.returncode == 0, out.stdout + out.stderr
    spans = receiver.wait_for(lambda spans: any(
        s.name == "gitops.sync" for s in spans) and any(
        s.name == "POST /api/v1/gitops/apply" for s in spans) and any(
        "ApplyCommit" in s.name and s.service == "modelport-registry" for s in spans))
    sync = next(s for s in spans if s.name == "gitops.sync")
    assert sync.service == "modelport-watcher" and not sync.parent_id
    assert sync.attributes["modelport.gitops.commit"] == repo.head()
    # the commit is one apply (issue 18 §3), after the intent report and the staged package
    in_sync = {s.name for s in spans if s.trace_id == sync.trace_id
               and s.service == "modelport-gateway"}
    assert {"POST /api/v1/gitops/reports", "POST /api/v1/gitops/packages",
            "POST /api/v1/gitops/apply"} <= in_sync, in_sync
    assert "PUT /api/v1/services/{name}" not in in_sync
    # ... and the registry's ApplyCommit ran inside the same trace
    assert any(s.service == "modelport-registry" and s.trace_id == sync.trace_id
               and "ApplyCommit" in s.name for s in spans), {
        s.name for s in spans if s.service == "modelport-registry"}
