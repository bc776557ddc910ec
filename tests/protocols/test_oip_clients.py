"""Open Inference Protocol v2 and KServe v1 on a real `modelport up`, called by clients
nobody here wrote (tritonclient http + grpc, the kserve SDK's REST and gRPC clients) and
by plain HTTP for the wire details (binary extension, limits, errors)."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from tests.conftest import EXAMPLES, RunningPlatform, start_platform

HERE = Path(__file__).resolve().parent
X = (np.arange(6, dtype=np.float32).reshape(2, 3) + 0.5)
DOUBLED = (X * 2).tolist()


@pytest.fixture(scope="module")
def oip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    import modelport

    plat = start_platform(tmp_path_factory.mktemp("home"))
    try:
        with modelport.Client(plat.url, home=plat.home) as client:
            for path, name in ((HERE / "packages" / "oip_sum", "oip-sum"),
                               (HERE / "packages" / "oip_mixed", "oip-mixed"),
                               (EXAMPLES / "predictor-iris", "iris")):
                client.create(str(path), name=name)
        yield plat
    finally:
        plat.stop()


def run_client(plat: RunningPlatform, client: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(HERE / "client_checks.py"), client, plat.url,
                           f"127.0.0.1:{plat.grpc_port}"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_tritonclient_gets_correct_results(oip: RunningPlatform, kind: str) -> None:
    got = run_client(oip, f"triton-{kind}")
    assert got["live"] and got["ready"] and got["model_ready"] and got["server"] == "modelport"
    assert got["inputs"] == [["x", "FP32", [-1, -1]]]
    assert got["outputs"] == ["doubled", "row_sum", "label"]
    for binary in (True, False):
        res = got[f"binary={binary}"]
        assert res["doubled"] == DOUBLED and res["dtype"] == "float32"
        assert res["label"] == ["big"] and res["id"] == "req-7"
        assert res["row_sum"] is False  # only the requested outputs came back
    assert got["all_outputs"] == {"row_sum": X.sum(axis=1).tolist(), "label": ["big"]}
    assert got["iris"] == ["setosa", "virginica"]
    assert got["mixed"] == {"echo": ["ababab"], "size": [2], "first": ["00"],
                            "values": [[1.5, 2.5]]}
    assert "unknown input(s) 'nope'" in got["unknown_input"]
    assert "missing input(s) 'x'" in got["unknown_input"]
    assert ("422" if kind == "http" else "INVALID_ARGUMENT") in got["unknown_input"]
    assert got["missing_model"] is False if kind == "http" else "NOT_FOUND" in got[
        "missing_model"]


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_kserve_sdk_gets_correct_results(oip: RunningPlatform, kind: str) -> None:
    got = run_client(oip, f"kserve-{kind}")
    assert got["live"] and got["ready"] and got["model_ready"]
    for key in [k for k in got if k.startswith("binary=")]:
        assert got[key] == {"doubled": DOUBLED, "label": ["big"], "id": "req-9",
                            "names": ["doubled", "label"]}
    if kind == "rest":
        assert "binary=False" in got and got["v1_ready"] is True
        assert got["v1_iris"] == ["setosa", "virginica"]


def _binary_request(x: np.ndarray, **params: Any) -> tuple[bytes, dict[str, str]]:
    head = orjson.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": list(x.shape),
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "parameters": params})
    return head + x.tobytes(), {"Inference-Header-Content-Length": str(len(head)),
                                "Content-Type": "application/octet-stream"}


def test_binary_in_binary_out_carries_raw_little_endian_bytes(oip: RunningPlatform) -> None:
    x = np.random.default_rng(1).random((64, 256), dtype=np.float32)
    body, headers = _binary_request(x, binary_data_output=True)
    r = httpx.post(f"{oip.url}/v2/models/oip-sum/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    n = int(r.headers["inference-header-content-length"])
    head = orjson.loads(r.content[:n])
    assert [o["name"] for o in head["outputs"]] == ["doubled", "row_sum", "label"]
    pos, raws = n, {}
    for o in head["outputs"]:
        size = o["parameters"]["binary_data_size"]
        raws[o["name"]] = r.content[pos:pos + size]
        pos += size
    assert pos == len(r.content)
    assert raws["doubled"] == (x * 2).tobytes()  # bit-exact: no JSON round trip anywhere
    assert np.allclose(np.frombuffer(raws["row_sum"], dtype="<f4"), x.sum(axis=1), rtol=1e-5)
    assert raws["label"] == struct.pack("<I", 3) + b"big"


def test_versions_gzip_and_kserve_v1_per_instance(oip: RunningPlatform) -> None:
    doc = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]}
    r = httpx.post(f"{oip.url}/v2/models/oip-sum/versions/1/infer", content=gzip.compress(
        orjson.dumps(doc)), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["model_version"] == "1", r.text
    r = httpx.post(f"{oip.url}/v2/models/oip-sum/versions/latest/infer", json=doc)
    assert r.status_code == 404 and "versions are numbers" in r.json()["fix"]
    r = httpx.post(f"{oip.url}/v1/models/oip-mixed:predict", json={"instances": [
        {"prefix": "a", "n": 2, "blob": "AAE=", "values": [1]},
        {"prefix": "b", "n": 1, "blob": "", "values": {}}]})
    assert r.status_code == 200, r.text
    assert [p["echo"] for p in r.json()["predictions"]] == ["aa", "b"]
    assert [p["size"] for p in r.json()["predictions"]] == [2, 0]


@pytest.mark.parametrize("doc, status, words", [
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [1, 2, 3]}]},
     422, "3 elements; shape [2, 2] needs 4"),
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [4], "data": [1, 2, 3, 4]}]},
     422, "has shape [4], but config.json declares [-1, -1]"),
    ({"inputs": [{"name": "x", "datatype": "FP9", "shape": [1], "data": [1]}]},
     422, "unknown datatype 'FP9'"),
    ({"inputs": []}, 422, "missing input(s) 'x'"),
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1]}],
      "outputs": [{"name": "nope"}]}, 422, "unknown output(s) 'nope'"),
    ({"nothing": 1}, 422, "no \"inputs\" list"),
])
def test_bad_requests_get_a_4xx_that_says_what_to_send(oip: RunningPlatform, doc: Any,
                                                       status: int, words: str) -> None:
    r = httpx.post(f"{oip.url}/v2/models/oip-sum/infer", json=doc)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_body_limit_and_unknown_model(oip: RunningPlatform) -> None:
    big = np.zeros((13, 1024 * 256), dtype=np.float32)  # 13 MiB, over the 12 MiB default
    body, headers = _binary_request(big)
    r = httpx.post(f"{oip.url}/v2/models/oip-sum/infer", content=body, headers=headers)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    r = httpx.get(f"{oip.url}/v2/models/no-such-model")
    assert r.status_code == 404 and "no-such-model" in r.json()["error"]
    r = httpx.get(f"{oip.url}/v2/models/no-such-model/ready")
    assert r.status_code == 404


def test_grpc_health_and_reflection_list_the_oip_service(oip: RunningPlatform) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with grpc.insecure_channel(f"127.0.0.1:{oip.grpc_port}") as ch:
        status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(
            service="inference.GRPCInferenceService"), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        db = ProtoReflectionDescriptorDatabase(ch)
        assert "inference.GRPCInferenceService" in db.get_services()
        infer = db.FindFileContainingSymbol("inference.GRPCInferenceService")
        methods = {m.name for m in infer.service[0].method}
    assert {"ModelInfer", "ModelMetadata", "ModelReady", "ServerLive"} <= methods
