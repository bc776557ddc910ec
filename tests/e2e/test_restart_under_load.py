"""A runtime or gateway SIGKILLed under a steady load costs at most the requests in flight
at the kill. A request that finds the runtime's socket gone never left the gateway, so it
is held (up to its deadline) until the restarted runtime has the replica back; a
connection made while the gateway restarts waits in the backlog of the port the launcher
owns, and the new gateway answers it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

import modelport
from tests.conftest import kill_component, start_platform
from tests.e2e.packages import predictor

ECHO = "class Predictor:\n    def predict(self, text):\n        return {'echo': text}\n"
CLIENTS = 4


@pytest.mark.parametrize("component", ["runtime", "gateway"])
def test_a_restart_under_load_fails_at_most_the_requests_in_flight(
        tmp_path: Path, component: str) -> None:
    home = tmp_path / "home"
    plat = start_platform(home)
    outcomes: list[tuple[float, int, str]] = []
    try:
        with modelport.Client(plat.url, home=home) as admin:
            url = admin.create(predictor(tmp_path, "echo", ECHO), name="steady")["url"]
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=60) as http:
                while not stop.is_set():
                    try:
                        r = http.post(url, json={"text": "x"})
                    except httpx.TransportError as exc:  # in flight on the killed gateway
                        outcomes.append((time.monotonic(), 0, type(exc).__name__))
                        continue
                    code = "" if r.status_code == 200 else r.json()["error"]["code"]
                    outcomes.append((time.monotonic(), r.status_code, code))

        threads = [threading.Thread(target=load) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        killed_at = time.monotonic()
        kill_component(plat, component)
        deadline = time.monotonic() + 90
        while not any(t > killed_at + 0.5 and s == 200 for t, s, _ in outcomes[-50:]):
            assert time.monotonic() < deadline, "the service did not answer again"
            time.sleep(0.2)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
    finally:
        plat.stop()
    failed = [o for o in outcomes if o[1] != 200]
    after = [o for o in outcomes if o[0] > killed_at]
    assert after, "no request finished after the kill"
    # each client had at most one request in flight at the kill
    assert len(failed) <= CLIENTS, f"{len(failed)} of {len(outcomes)} failed: {failed[:8]}"
