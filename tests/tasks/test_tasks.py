"""Async tasks end to end: submit, poll, result, failure, cancel, idempotency, webhook,
paging, on a real platform with the streaming `ticker` model."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

import modelport
from tests.conftest import RunningPlatform
from tests.streaming.conftest import model_log, wait_for_line
from tests.tasks.support import TICKER, ticker_inputs, wait_status


@pytest.fixture(scope="module")
def base(platform: RunningPlatform) -> str:
    with modelport.Client(platform.url) as c:
        c.create(TICKER, name="ticker")
    return platform.url


def submit(base: str, body: dict, **kw: object) -> httpx.Response:
    return httpx.post(f"{base}/v1/services/ticker/tasks", json=body, timeout=30, **kw)


def test_submit_poll_and_fetch_the_result(base: str, tmp_path: Path) -> None:
    gate, log = tmp_path / "gate", tmp_path / "model.log"
    r = submit(base, ticker_inputs(2, gate=str(gate), log=str(log)))
    assert r.status_code == 202, r.text
    task = r.json()
    assert r.headers["location"] == task["url"] == f"{base}/v1/tasks/{task['task_id']}"
    assert task["status"] in ("queued", "running")
    wait_for_line(log, "made 0")
    assert wait_status(base, task["task_id"], ("running",))["started_at"]
    early = httpx.get(task["result_url"], timeout=30)
    assert early.status_code == 409 and early.json()["error"]["code"] == "task.not_finished"
    (tmp_path / "gate.1").touch()
    done = wait_status(base, task["task_id"])
    assert done["status"] == "succeeded" and done["version"] == 1
    assert done["created_at"] <= done["started_at"] <= done["finished_at"] < done["expires_at"]
    result = httpx.get(task["result_url"], timeout=30)
    assert result.status_code == 200
    assert [item["i"] for item in result.json()["data"]] == [0, 1]
    assert result.headers["x-task-id"] == task["task_id"]


def test_failed_task_keeps_its_error(base: str) -> None:
    task = submit(base, ticker_inputs(3, fail_at=1)).json()
    done = wait_status(base, task["task_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "model.error"
    r = httpx.get(task["result_url"], timeout=30)
    assert r.status_code == 500 and "item 1 failed" in r.json()["error"]["message"]


def test_bad_submissions_are_refused_at_once(base: str) -> None:
    r = submit(base, {"n": 1})
    assert r.status_code == 422 and r.json()["error"]["code"] == "request.inputs"
    r = httpx.post(f"{base}/v1/services/nope/tasks", json={}, timeout=30)
    assert r.status_code == 404
    assert httpx.get(f"{base}/v1/tasks/nope", timeout=30).status_code == 404
    r = submit(base, ticker_inputs(1), params={"webhook": "ftp://x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "task.webhook_invalid"


def test_cancel_stops_the_model(base: str, tmp_path: Path) -> None:
    log = tmp_path / "model.log"
    task = submit(base, ticker_inputs(400, delay=0.05, log=str(log))).json()
    wait_for_line(log, "made 0")
    r = httpx.delete(task["url"], timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    lines = wait_for_line(log, "closed")
    assert "finished" not in lines and len(lines) < 400
    assert httpx.delete(task["url"], timeout=30).status_code == 409
    r = httpx.get(task["result_url"], timeout=30)
    assert r.status_code == 409 and r.json()["error"]["code"] == "task.cancelled"


def test_prefer_respond_async_and_idempotency_key(base: str, tmp_path: Path) -> None:
    log = tmp_path / "model.log"
    body = ticker_inputs(1, log=str(log))
    headers = {"Prefer": "respond-async", "Idempotency-Key": f"k-{tmp_path.name}"}
    url = f"{base}/v1/services/ticker/infer"
    first = httpx.post(url, json=body, headers=headers, timeout=30)
    assert first.status_code == 202 and first.headers["preference-applied"] == "respond-async"
    task_id = first.json()["task_id"]
    assert wait_status(base, task_id)["status"] == "succeeded"
    again = httpx.post(url, json=body, headers=headers, timeout=30)
    assert again.status_code == 202 and again.json()["task_id"] == task_id
    assert again.headers["idempotent-replayed"] == "true"
    assert model_log(log) == ["made 0", "finished"]  # the model ran once
    other = httpx.post(url, json=ticker_inputs(2), headers=headers, timeout=30)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "task.idempotency_key_reused"


class _Hook(BaseHTTPRequestHandler):
    calls: list[dict] = []
    fail_first = 1

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append(body)
        ok = len(type(self).calls) > type(self).fail_first
        self.send_response(200 if ok else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"calls": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/done", handler
    server.shutdown()


def test_webhook_is_retried_until_delivered(base: str, hook) -> None:  # noqa: ANN001
    url, handler = hook
    task = submit(base, ticker_inputs(2), params={"webhook": url}).json()
    assert task["webhook"] == {"url": url, "state": "pending", "attempts": 0}
    view = wait_status(base, task["task_id"])
    deadline = __import__("time").monotonic() + 30
    while view["webhook"]["state"] == "pending":
        assert __import__("time").monotonic() < deadline
        view = wait_status(base, task["task_id"])
    assert view["webhook"] == {"url": url, "state": "delivered", "attempts": 2}
    assert len(handler.calls) == 2
    delivered = handler.calls[-1]
    assert delivered["task_id"] == task["task_id"] and delivered["status"] == "succeeded"
    assert [item["i"] for item in delivered["data"]] == [0, 1]


def test_list_a_services_tasks_in_pages(base: str) -> None:
    ids = [submit(base, ticker_inputs(1)).json()["task_id"] for _ in range(5)]
    for task_id in ids:
        wait_status(base, task_id)
    seen, token = [], None
    while True:
        params = {"limit": 2, **({"page_token": token} if token else {})}
        page = httpx.get(f"{base}/v1/services/ticker/tasks", params=params, timeout=30).json()
        assert len(page["tasks"]) <= 2
        seen += [t["task_id"] for t in page["tasks"]]
        token = page["next_page_token"]
        if not token:
            break
    assert [i for i in seen if i in ids] == ids[::-1]  # newest first, each once
    assert len(seen) == len(set(seen))
    done = httpx.get(f"{base}/v1/services/ticker/tasks", params={"status": "succeeded",
                                                                 "limit": 500}, timeout=30)
    assert {t["status"] for t in done.json()["tasks"]} == {"succeeded"}
