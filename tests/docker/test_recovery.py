"""A container killed under the runtime (`docker kill`) and a worker exiting mid-request
inside one: each request gets an answer, a new container takes over, and the events say
what happened."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.docker.support import containers, docker_spec, wait_until
from tests.e2e.packages import predictor

WHO = """
import os, socket

class Predictor:
    def predict(self, text):
        if text == "die":
            os._exit(3)
        print("answering", text, flush=True)
        return {"echo": text, "host": socket.gethostname(), "pid": os.getpid()}
"""


def _answer(url: str, text: str) -> dict | None:
    try:
        r = httpx.post(url, json={"text": text}, timeout=60)
    except httpx.HTTPError:
        return None
    return r.json()["data"] if r.status_code == 200 else None


def test_killed_container_is_replaced_with_events(client, docker_client, home,
                                                  tmp_path: Path) -> None:
    svc = client.create(predictor(tmp_path, "who", WHO), name="who-docker",
                        spec=docker_spec())
    name, url = svc["name"], svc["url"]
    first = _answer(url, "hi")
    assert first is not None
    (box,) = [c for c in containers(docker_client, name) if c.status == "running"]
    assert first["host"] == box.id[:12]  # it answered from inside that container

    # the worker exits mid-request: that request gets a 5xx naming the exit
    r = httpx.post(url, json={"text": "die"}, headers={"X-Request-ID": "req-die-1"},
                   timeout=60)
    assert 500 <= r.status_code < 600, r.text
    assert r.json()["metadata"]["request_id"] == "req-die-1"
    assert "exit" in r.json()["error"]["message"]
    second = wait_until(lambda: _answer(url, "again"), 120, "a new container to answer")
    assert second["host"] != first["host"]

    # the container is killed from outside the platform
    (box,) = [c for c in containers(docker_client, name) if c.status == "running"]
    box.kill()
    third = wait_until(lambda: _answer(url, "after kill"), 120, "recovery from docker kill")
    assert third["host"] not in (first["host"], second["host"])

    events = client.events(name)
    restarts = [e["message"] for e in events if e["reason"] == "ReplicaRestarted"]
    assert any("code 3" in m for m in restarts), events
    assert any("SIGKILL" in m for m in restarts), events
    # what the model printed and what the supervisor saw are in the replica log
    (replica_dir,) = [d for d in (home / "runtime" / "replicas").iterdir()
                      if d.name.startswith(f"{name}-v1-")]
    text = (replica_dir / "replica.log").read_text()
    assert "answering hi" in text and "killed by SIGKILL" in text

    client.delete(name)
    wait_until(lambda: not containers(docker_client, name), 60, "containers to be removed")
