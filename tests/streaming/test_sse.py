"""SSE on the infer URL: chunks as the model yields them, explicit end and error events,
and a client that leaves cancels the model's work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.streaming.conftest import model_log, ticker_inputs, wait_for_line, wait_until_still

SSE = {"Accept": "text/event-stream"}


def events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from an SSE line stream."""
    name, data = "message", []
    for line in lines:
        if line == "":
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def test_first_chunk_arrives_before_the_model_makes_the_last(ticker_url: str,
                                                            tmp_path: Path) -> None:
    gate, log = tmp_path / "gate", tmp_path / "model.log"
    body = ticker_inputs(3, gate=str(gate), log=str(log))
    with httpx.stream("POST", ticker_url, json=body, headers=SSE, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        it = events(r.iter_lines())
        name, data = next(it)
        assert (name, json.loads(data)["i"]) == ("chunk", 0)
        # the model is blocked on the gate: it has made item 0 and nothing after it
        assert model_log(log) == ["made 0"]
        (tmp_path / "gate.1").touch()
        assert next(it)[0] == "chunk"
        (tmp_path / "gate.2").touch()
        name, data = next(it)
        assert (name, json.loads(data)["i"]) == ("chunk", 2)
        name, data = next(it)
        assert name == "done"
        done = json.loads(data)
        assert done["chunks"] == 3 and done["version"] == 1 and done["request_id"]
    assert wait_for_line(log, "finished")


def test_failure_after_first_chunk_is_an_error_event(ticker_url: str) -> None:
    with httpx.stream("POST", ticker_url, json=ticker_inputs(5, fail_at=2), headers=SSE,
                      timeout=60) as r:
        assert r.status_code == 200
        got = list(events(r.iter_lines()))
    assert [n for n, _ in got] == ["chunk", "chunk", "error"]
    error = json.loads(got[-1][1])
    assert error["error"]["code"] == "model.error"
    assert "item 2 failed" in error["error"]["message"]
    assert error["metadata"]["chunks"] == 2


def test_failure_before_first_chunk_keeps_its_http_status(ticker_url: str) -> None:
    r = httpx.post(ticker_url, json={"n": 1}, headers=SSE, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["code"] == "request.inputs"
    r = httpx.post(ticker_url, json=ticker_inputs(3, fail_at=0), headers=SSE, timeout=30)
    assert r.status_code == 500 and "item 0 failed" in r.json()["error"]["message"]


def test_disconnect_cancels_the_model(ticker_url: str, tmp_path: Path) -> None:
    log = tmp_path / "model.log"
    with httpx.stream("POST", ticker_url, json=ticker_inputs(200, delay=0.05, log=str(log)),
                      headers=SSE, timeout=60) as r:
        it = events(r.iter_lines())
        assert next(it)[0] == "chunk"
    lines = wait_for_line(log, "closed")
    assert "finished" not in lines
    made = [line for line in lines if line.startswith("made")]
    assert len(made) < 200
    assert wait_until_still(log, quiet=0.5) == lines  # and it made nothing more


def test_slow_reader_holds_the_model_back(ticker_url: str, tmp_path: Path) -> None:
    """200 items of 256 KiB (50 MiB) with no delay: a client that stops reading after the
    first one must stop the model too, not make the platform buffer the rest."""
    log = tmp_path / "model.log"
    n = 200
    with httpx.stream("POST", ticker_url, json=ticker_inputs(n, log=str(log), size=256 * 1024),
                      headers=SSE, timeout=60) as r:
        it = events(r.iter_lines())
        assert next(it)[0] == "chunk"
        stalled = wait_until_still(log, quiet=1.5)
        assert "finished" not in stalled
        assert len(stalled) < n / 2, f"the model ran ahead of the reader: {len(stalled)} items"
        # reading on releases it again, to the end
        names = [name for name, _ in it]
    assert names[-1] == "done" and names.count("chunk") == n - 1
