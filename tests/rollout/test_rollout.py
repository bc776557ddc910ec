"""Rolling updates and canaries on a real platform, under steady concurrent load.

An update brings up the new version next to the old, switches traffic once it is ready
and drains the old replicas: no request fails. A broken update is rolled back: the old
version keeps serving, no request fails, and events say what happened. A 90/10 split
sends 90/10 of the traffic, a pinned request goes to its version, and every response
says which version answered.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from modelport.client import DeployFailed
from tests.e2e.packages import predictor
from tests.rollout.load import Load, wait_until

CODE = """
import os, time

class Predictor:
    def setup(self):
        {setup}

    def predict(self, text):
        time.sleep({delay})
        return {{"text": text, "answer": {answer!r}, "pid": os.getpid()}}
"""


def package(tmp: Path, name: str, answer: str, setup: str = "pass",
            delay: float = 0.02) -> Path:
    return predictor(tmp / answer, name, CODE.format(answer=answer, setup=setup, delay=delay))


def reasons(client, name: str) -> list[str]:
    return [e["reason"] for e in client.events(name, limit=500)]


def test_update_under_load_fails_no_request(client, tmp_path: Path) -> None:
    svc = client.create(package(tmp_path, "roll", "one"), name="roll")
    client.apply("roll", json.dumps({"metadata": {"name": "roll"}, "spec": {"replicas": 2}}))
    with Load(svc["url"], {"text": "hi"}, workers=4) as load:
        load.wait_for(20)
        new = client.update("roll", package(tmp_path, "roll", "two"))  # waits for the switch
        assert new["serving_version"] == 2
        load.wait_for(20)  # served by version 2 alone, the old replicas drained
        wait_until(lambda: all(r["version"] == 2 for r in client.get("roll")["replicas"]),
                   60, "old replicas to stop")
        load.wait_for(10)
    assert not load.errors, load.errors[:5]
    assert not load.failures(), load.failures()[:5]
    versions = load.versions()
    assert versions["1"] > 0 and versions["2"] > 0, versions
    assert load.answers[-1].body["data"]["answer"] == "two"
    events = reasons(client, "roll")
    assert {"UpdateStarted", "TrafficSwitched", "ReplicaStopped"} <= set(events)
    stopped = [e["message"] for e in client.events("roll", limit=500)
               if e["reason"] == "ReplicaStopped"]
    assert any("requests in flight finish first" in m for m in stopped), stopped
    client.delete("roll")


def test_broken_update_rolls_back_and_fails_no_request(client, tmp_path: Path) -> None:
    svc = client.create(package(tmp_path, "brk", "good"), name="brk")
    with Load(svc["url"], {"text": "hi"}, workers=3) as load:
        load.wait_for(10)
        broken = package(tmp_path, "brk", "broken",
                         setup="raise RuntimeError('weights file is corrupt')")
        with pytest.raises(DeployFailed) as exc:
            client.update("brk", broken)
        assert "weights file is corrupt" in exc.value.reason
        load.wait_for(10)
    assert not load.errors, load.errors[:5]
    assert not load.failures(), load.failures()[:5]
    assert set(load.versions()) == {"1"}
    now = client.get("brk")
    assert now["phase"] == "running" and now["serving_version"] == 1
    assert now["target_version"] == 2 and "rolled back" in now["message"]
    assert any(c["reason"] == "RolledBack" and c["status"] for c in now["conditions"])
    events = client.events("brk", limit=500)
    failed = next(e for e in events if e["reason"] == "UpdateFailed")
    assert "weights file is corrupt" in failed["message"] and failed["type"] == "Warning"
    assert any(e["reason"] == "RolledBack" and "version 1 keeps serving" in e["message"]
               for e in events)
    # the failed version is not retried while the spec stays the same
    wait_until(lambda: all(r["version"] == 1 for r in client.get("brk")["replicas"]),
               60, "the broken replicas to stop")
    client.delete("brk")


def test_canary_split_pinning_and_version_header(client, tmp_path: Path) -> None:
    client.create(package(tmp_path, "can", "stable", delay=0), name="can")
    svc = client.update("can", package(tmp_path, "can", "canary", delay=0))
    assert svc["serving_version"] == 2
    split = {"metadata": {"name": "can"},
             "spec": {"traffic": [{"version": 1, "percent": 90}, {"version": 2, "percent": 10}]}}
    svc = client.apply("can", json.dumps(split))
    assert svc["traffic"] == [{"version": 1, "percent": 90.0}, {"version": 2, "percent": 10.0}]
    url = svc["url"]
    seen: list[str] = []
    with httpx.Client(timeout=60) as http:
        for i in range(1000):
            r = http.post(url, json={"text": str(i)})
            assert r.status_code == 200, r.text
            answer = r.json()["data"]["answer"]
            assert r.headers["x-model-version"] == str(r.json()["metadata"]["version"])
            assert answer == ("stable" if r.headers["x-model-version"] == "1" else "canary")
            seen.append(r.headers["x-model-version"])
        ones, twos = seen.count("1"), seen.count("2")
        assert 850 <= ones <= 950 and 50 <= twos <= 150, (ones, twos)
        # a pinned version answers whatever the split
        for _ in range(5):
            r = http.post(url, json={"text": "pin"}, headers={"X-Model-Version": "2"})
            assert r.status_code == 200 and r.json()["data"]["answer"] == "canary"
            assert r.headers["x-model-version"] == "2"
        bad = http.post(url, json={"text": "pin"}, headers={"X-Model-Version": "two"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "request.version_header"
        missing = http.post(url, json={"text": "pin"}, headers={"X-Model-Version": "9"})
        assert missing.status_code == 404, missing.text
    client.delete("can")
