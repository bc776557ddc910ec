"""WebSocket `/v1/services/{name}/ws`: many requests on one connection, chunks as the
model yields them, explicit error frames, and a disconnect cancels the model's work."""

from __future__ import annotations

import json
from pathlib import Path

from websockets.sync.client import connect

from tests.conftest import RunningPlatform
from tests.streaming.conftest import model_log, ticker_inputs, wait_for_line, wait_until_still


def _ws_url(plat: RunningPlatform, service: str = "ticker") -> str:
    return plat.url.replace("http://", "ws://") + f"/v1/services/{service}/ws"


def _frames_until_end(ws) -> list[dict]:  # noqa: ANN001
    frames = []
    while True:
        frames.append(json.loads(ws.recv(timeout=60)))
        if frames[-1]["type"] in ("done", "error"):
            return frames


def test_requests_on_one_connection(stream_platform: RunningPlatform, tmp_path: Path) -> None:
    gate, log = tmp_path / "gate", tmp_path / "model.log"
    with connect(_ws_url(stream_platform)) as ws:
        ws.send(json.dumps(ticker_inputs(2, gate=str(gate), log=str(log))))
        first = json.loads(ws.recv(timeout=60))
        assert (first["type"], first["index"], first["data"]["i"]) == ("chunk", 0, 0)
        assert model_log(log) == ["made 0"]  # the model waits on the gate for the last item
        (tmp_path / "gate.1").touch()
        rest = _frames_until_end(ws)
        assert [f["type"] for f in rest] == ["chunk", "done"]
        assert rest[-1]["chunks"] == 2 and rest[-1]["request_id"] == first["request_id"]

        # the same connection: an error after the first chunk, then a bad request, then a good one
        ws.send(json.dumps(ticker_inputs(4, fail_at=1)))
        failed = _frames_until_end(ws)
        assert [f["type"] for f in failed] == ["chunk", "error"]
        assert failed[-1]["error"]["code"] == "model.error" and failed[-1]["chunks"] == 1
        ws.send(json.dumps({"n": 2}))
        bad = _frames_until_end(ws)
        assert bad[-1]["type"] == "error" and bad[-1]["error"]["code"] == "request.inputs"
        ws.send("not json")
        assert _frames_until_end(ws)[-1]["error"]["code"] == "request.invalid_json"
        ws.send(json.dumps(ticker_inputs(3)))
        ok = _frames_until_end(ws)
        assert [f["data"]["i"] for f in ok if f["type"] == "chunk"] == [0, 1, 2]
        assert len({f["request_id"] for f in (*failed, *bad, *ok)}) == 3


def test_unknown_service_is_an_error_frame(stream_platform: RunningPlatform) -> None:
    with connect(_ws_url(stream_platform, "nope")) as ws:
        ws.send(json.dumps({"x": 1}))
        frame = json.loads(ws.recv(timeout=30))
        assert frame["type"] == "error" and frame["error"]["code"] == "service.not_found"


def test_disconnect_cancels_the_model(stream_platform: RunningPlatform, tmp_path: Path) -> None:
    log = tmp_path / "model.log"
    with connect(_ws_url(stream_platform)) as ws:
        ws.send(json.dumps(ticker_inputs(200, delay=0.05, log=str(log))))
        assert json.loads(ws.recv(timeout=60))["type"] == "chunk"
    lines = wait_for_line(log, "closed")
    assert "finished" not in lines and len(lines) < 200
    assert wait_until_still(log, quiet=0.5) == lines
