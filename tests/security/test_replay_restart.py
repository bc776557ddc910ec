"""A signed request's replay is refused after a registry restart too: the signatures seen
inside their window are in the registry's database (an attacker cannot wait for a
restart inside the 15 minutes)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

import modelport
from modelport import signing
from tests.conftest import kill_component, start_platform
from tests.security.conftest import deploy


def test_a_replay_after_the_registry_restarted_is_refused(tmp_path: Path) -> None:
    plat = start_platform(tmp_path / "home")
    try:
        with modelport.Client(plat.url, home=tmp_path / "home") as admin:
            deploy(admin, "hello", "guarded", auth={"required": True})
            key = admin.create_key(["invoke:guarded"], name="signer")
        body = json.dumps({"text": "once"}).encode()
        url = plat.url + "/v1/services/guarded/infer"
        headers = {"Content-Type": "application/json"}
        headers |= signing.sign("POST", url, headers, body, key["access_key"],
                                key["secret_key"])
        assert httpx.post(url, content=body, headers=headers, timeout=60).status_code == 200

        kill_component(plat, "registry")
        deadline = time.monotonic() + 60
        while True:  # back on the same socket, answering
            try:
                with modelport.Client(plat.url, home=tmp_path / "home") as admin:
                    admin.list()
                break
            except modelport.ModelportError:
                assert time.monotonic() < deadline, "the registry did not come back"
                time.sleep(0.2)

        replay = httpx.post(url, content=body, headers=headers, timeout=60)
        assert replay.status_code == 401, replay.text
        assert replay.json()["error"]["code"] == "auth.replayed"
        # a fresh signature of the same body still passes
        fresh = {"Content-Type": "application/json"}
        fresh |= signing.sign("POST", url, fresh, body, key["access_key"], key["secret_key"],
                              now=time.time() + 1)
        assert httpx.post(url, content=body, headers=fresh, timeout=60).status_code == 200
    finally:
        plat.stop()
