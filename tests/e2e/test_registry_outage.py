"""The request path does not depend on the registry: with it SIGKILLed under a steady
load, and until the launcher has it back, open and key-guarded services keep answering
from what the gateway knows (services/gateway/registry_outage.py): no request fails."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

import modelport
from tests.conftest import component_pid, kill_component, start_platform
from tests.e2e.packages import predictor
from tests.security.conftest import deploy

ECHO = "class Predictor:\n    def predict(self, text):\n        return {'echo': text}\n"


def test_a_registry_restart_fails_no_request(tmp_path: Path) -> None:
    home = tmp_path / "home"
    plat = start_platform(home)
    try:
        with modelport.Client(plat.url, home=home) as admin:
            admin.create(predictor(tmp_path, "echo", ECHO), name="open-echo")
            deploy(admin, "hello", "guarded", auth={"required": True})
            key = admin.create_key(["invoke:guarded"], name="outage")
        calls = [("open-echo", {}), ("guarded", {"Authorization": f"Bearer {key['token']}"})]
        outcomes: list[tuple[float, str, int]] = []
        stop = threading.Event()

        def load(service: str, headers: dict[str, str]) -> None:
            with httpx.Client(timeout=30) as http:
                while not stop.is_set():
                    r = http.post(f"{plat.url}/v1/services/{service}/infer",
                                  json={"text": "x"}, headers=headers)
                    outcomes.append((time.monotonic(), service, r.status_code))

        threads = [threading.Thread(target=load, args=c) for c in calls for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        killed_at = time.monotonic()
        kill_component(plat, "registry")
        back_at = time.monotonic()
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        assert component_pid(plat.proc.pid, "registry") is not None
    finally:
        plat.stop()
    during = [o for o in outcomes if killed_at <= o[0] <= back_at]
    failed = [o for o in outcomes if o[2] != 200]
    assert during, "no request was made while the registry was away"
    assert {s for _, s, _ in during} == {"open-echo", "guarded"}
    assert not failed, f"{len(failed)} of {len(outcomes)} failed: {failed[:5]}"
