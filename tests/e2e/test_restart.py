"""Stop `modelport up` and start it again on the same home: services come back and answer,
without re-uploading anything."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

import modelport
from tests.conftest import start_platform
from tests.e2e.packages import EXAMPLES


def _answer(url: str, deadline: float) -> dict:
    while True:
        try:
            r = httpx.post(url, json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=30)
            if r.status_code == 200:
                return r.json()
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "service did not come back after restart"
        time.sleep(0.25)


def _processes_under(home: Path) -> list[str]:
    """Command lines of live processes that mention this home (components, workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(home) in cmd:
            found.append(cmd)
    return found


def test_services_survive_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    plat = start_platform(home)
    try:
        with modelport.Client(plat.url) as c:
            svc = c.create(EXAMPLES / "predictor-iris", name="survivor")
            assert c.predict("survivor", features=[5.1, 3.5, 1.4, 0.2])["data"]["label"] == \
                "setosa"
    finally:
        assert plat.stop() == 0
    assert _processes_under(home) == [], "components or workers outlived `modelport up`"
    envs_before = sorted(p.name for p in (home / "envs").iterdir())

    plat = start_platform(home)
    try:
        url = svc["url"].replace(svc["url"].split("/v1/")[0], plat.url)
        body = _answer(url, time.monotonic() + 120)
        assert body["data"]["label"] == "setosa" and body["metadata"]["version"] == 1
        with modelport.Client(plat.url) as c:
            assert [v["number"] for v in c.versions("survivor")] == [1]
            # the registry observes the replica on its next reconcile, which may come just
            # after the first answer: its phase is eventually "running", not at once
            deadline = time.monotonic() + 30
            while (phase := c.get("survivor")["phase"]) != "running":
                assert time.monotonic() < deadline, f"phase stayed {phase!r} after restart"
                time.sleep(0.2)
        assert sorted(p.name for p in (home / "envs").iterdir()) == envs_before
    finally:
        plat.stop()
