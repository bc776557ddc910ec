"""The infer URL's body encodings, size limit, gRPC entry point and a setup that fails."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import grpc
import httpx
import pytest

import modelport
from modelport.v1 import inference_pb2, inference_pb2_grpc
from tests.e2e.packages import predictor

ECHO_BYTES = """
import hashlib

class Predictor:
    def predict(self, blob):
        return {"size": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
"""
ECHO_TEXT = """
class Predictor:
    def predict(self, text):
        return {"upper": text.upper()}
"""
RETURNS_BYTES = """
class Predictor:
    def predict(self, n):
        return bytes(range(int(n)))
"""


def test_octet_stream_and_multipart_file(client, tmp_path: Path) -> None:
    svc = client.create(predictor(tmp_path, "bytes-echo", ECHO_BYTES,
                                  [{"name": "blob", "type": "file"}]))
    payload = bytes(range(256)) * 40
    r = httpx.post(svc["url"], content=payload,
                   headers={"Content-Type": "application/octet-stream"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["size"] == len(payload)
    r = httpx.post(svc["url"], files={"blob": ("b.bin", payload)}, timeout=30)
    assert r.json()["data"]["size"] == len(payload)
    r = httpx.post(svc["url"], json={"blob": base64.b64encode(payload).decode()}, timeout=30)
    assert r.json()["data"]["size"] == len(payload)
    r = httpx.post(svc["url"], json={"blob": "not base64 !!"}, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["code"] == "request.input_encoding"
    # over the 12 MiB body limit: 413 naming the limit, nothing reaches the model
    r = httpx.post(svc["url"], content=b"\0" * (13 * 1024 * 1024),
                   headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
    client.delete(svc["name"])


def test_text_plain_and_grpc(client, platform, tmp_path: Path) -> None:
    svc = client.create(predictor(tmp_path, "text-echo", ECHO_TEXT))
    r = httpx.post(svc["url"], content="héllo", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json()["data"] == {"upper": "HÉLLO"}

    with grpc.insecure_channel(f"127.0.0.1:{platform.grpc_port}") as ch:
        stub = inference_pb2_grpc.InferenceStub(ch)
        resp = stub.Predict(inference_pb2.PredictRequest(
            service=svc["name"], inputs=[inference_pb2.InputValue(name="text", text="grpc")]),
            timeout=30)
        assert json.loads(resp.output.json) == {"upper": "GRPC"} and resp.version == 1
        with pytest.raises(grpc.RpcError) as exc:
            stub.Predict(inference_pb2.PredictRequest(service="no-such-service"), timeout=30)
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    client.delete(svc["name"])


def test_bytes_output(client, tmp_path: Path) -> None:
    svc = client.create(predictor(tmp_path, "bytes-out", RETURNS_BYTES,
                                  [{"name": "n", "type": "number"}]))
    r = httpx.post(svc["url"], json={"n": 5})
    assert r.json()["metadata"]["content_type"] == "bytes"
    assert base64.b64decode(r.json()["data"]) == bytes(range(5))
    r = httpx.post(svc["url"], json={"n": 5}, headers={"Accept": "application/octet-stream"})
    assert r.content == bytes(range(5))
    client.delete(svc["name"])


def test_setup_failure_fails_create_and_removes_service(client, tmp_path: Path) -> None:
    code = ("class Predictor:\n    def setup(self):\n"
            "        raise FileNotFoundError('weights.bin is missing')\n"
            "    def predict(self, text):\n        return text\n")
    with pytest.raises(modelport.DeployFailed) as exc:
        client.create(predictor(tmp_path, "no-weights", code), name="no-weights", timeout=120)
    assert "weights.bin is missing" in exc.value.reason
    assert exc.value.removed
    assert "no-weights" not in client.list()["message"]
