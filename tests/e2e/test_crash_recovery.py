"""A model that calls os._exit(1) mid-request: that request gets a 5xx carrying a request id,
the replica restarts, the next request succeeds."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.packages import predictor

CRASHY = """
import os

class Predictor:
    def setup(self):
        self.calls = 0

    def predict(self, text):
        if text == "die":
            os._exit(1)
        self.calls += 1
        return {"echo": text, "pid": os.getpid()}
"""


def test_worker_exit_mid_request(client, tmp_path: Path) -> None:
    svc = client.create(predictor(tmp_path, "crashy", CRASHY))
    url = svc["url"]
    first = httpx.post(url, json={"text": "hi"}, timeout=60)
    assert first.status_code == 200, first.text
    pid = first.json()["data"]["pid"]

    r = httpx.post(url, json={"text": "die"}, headers={"X-Request-ID": "req-crash-1"},
                   timeout=60)
    assert 500 <= r.status_code < 600, r.text
    body = r.json()
    assert body["result"] is False
    assert body["metadata"]["request_id"] == "req-crash-1"
    assert r.headers["x-request-id"] == "req-crash-1"
    assert "exit" in body["error"]["message"]

    after = httpx.post(url, json={"text": "again"}, timeout=120)
    assert after.status_code == 200, after.text
    assert after.json()["data"]["echo"] == "again"
    assert after.json()["data"]["pid"] != pid
    reasons = [e["reason"] for e in client.events(svc["name"])]
    assert "ServiceCreated" in reasons and "TrafficSwitched" in reasons
    client.delete(svc["name"])


def test_user_exception_is_a_clear_5xx(client, tmp_path: Path) -> None:
    code = ("class Predictor:\n    def predict(self, text):\n"
            "        raise ValueError('cannot handle ' + text)\n")
    svc = client.create(predictor(tmp_path, "raises", code))
    r = httpx.post(svc["url"], json={"text": "abc"}, timeout=60)
    assert r.status_code == 500
    err = r.json()["error"]
    assert "ValueError: cannot handle abc" in err["message"]
    assert r.json()["metadata"]["request_id"]
    # unknown and missing inputs are the caller's problem: 422 listing what is expected
    r = httpx.post(svc["url"], json={"txt": "abc"}, timeout=60)
    assert r.status_code == 422
    assert "text (text)" in r.json()["error"]["fix"]
    client.delete(svc["name"])
