"""gRPC server streaming (`modelport.v1.Inference/PredictStream`): first chunk before the
last is made, a failure mid-stream is an error status, and the caller's deadline and
cancellation reach the model."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from modelport.v1 import inference_pb2, inference_pb2_grpc
from tests.conftest import RunningPlatform
from tests.streaming.conftest import model_log, ticker_inputs, wait_for_line, wait_until_still


@pytest.fixture
def stub(stream_platform: RunningPlatform):  # noqa: ANN201
    with grpc.insecure_channel(f"127.0.0.1:{stream_platform.grpc_port}") as ch:
        yield inference_pb2_grpc.InferenceStub(ch)


def _request(**kw: object) -> inference_pb2.PredictRequest:
    inputs = ticker_inputs(**kw)  # type: ignore[arg-type]
    return inference_pb2.PredictRequest(service="ticker", inputs=[
        inference_pb2.InputValue(name=k, text=v) if isinstance(v, str)
        else inference_pb2.InputValue(name=k, json=json.dumps(v).encode())
        for k, v in inputs.items()])


def _items(chunks: list[inference_pb2.PredictChunk]) -> list[int]:
    return [json.loads(c.output.json)["i"] for c in chunks if not c.final]


def test_first_chunk_before_the_last_is_made(stub, tmp_path: Path) -> None:  # noqa: ANN001
    gate, log = tmp_path / "gate", tmp_path / "model.log"
    stream = stub.PredictStream(_request(n=2, gate=str(gate), log=str(log)), timeout=60)
    first = next(stream)
    assert _items([first]) == [0] and first.version == 1
    assert model_log(log) == ["made 0"]
    (tmp_path / "gate.1").touch()
    rest = list(stream)
    assert _items(rest) == [1] and rest[-1].final


def test_failure_mid_stream_is_an_error_status(stub) -> None:  # noqa: ANN001
    stream = stub.PredictStream(_request(n=4, fail_at=2), timeout=60)
    got = []
    with pytest.raises(grpc.RpcError) as info:
        for chunk in stream:
            got.append(chunk)
    assert _items(got) == [0, 1]
    assert info.value.code() == grpc.StatusCode.ABORTED
    assert "item 2 failed" in info.value.details()


def test_cancel_stops_the_model(stub, tmp_path: Path) -> None:  # noqa: ANN001
    log = tmp_path / "model.log"
    stream = stub.PredictStream(_request(n=200, delay=0.05, log=str(log)), timeout=60)
    next(stream)
    stream.cancel()
    lines = wait_for_line(log, "closed")
    assert "finished" not in lines and len(lines) < 200
    assert wait_until_still(log, quiet=0.5) == lines


def test_deadline_travels_to_the_model(stub, tmp_path: Path) -> None:  # noqa: ANN001
    """The caller's 1.5 s deadline, not the service's 60 s timeout, bounds the model."""
    log = tmp_path / "model.log"
    stream = stub.PredictStream(_request(n=1000, delay=0.05, log=str(log)), timeout=1.5)
    with pytest.raises(grpc.RpcError) as info:
        for _ in stream:
            pass
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    lines = wait_for_line(log, "closed")
    assert "finished" not in lines
    assert wait_until_still(log, quiet=0.5) == lines
