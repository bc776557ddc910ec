"""The acceptance scenario: a task submitted before a full `modelport up` restart runs
after it, and its result is still there after another restart."""

from __future__ import annotations

from pathlib import Path

import httpx

import modelport
from tests.conftest import start_platform
from tests.tasks.support import TICKER, ticker_inputs, wait_status


def test_task_survives_two_restarts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # the first gateway accepts tasks but runs none, so the task is still queued at the stop
    plat = start_platform(home, env={"MODELPORT_GATEWAY_TASK_CONCURRENCY": "0"})
    try:
        with modelport.Client(plat.url) as c:
            c.create(TICKER, name="ticker")
        r = httpx.post(f"{plat.url}/v1/services/ticker/tasks", json=ticker_inputs(3),
                       timeout=30)
        assert r.status_code == 202, r.text
        task_id = r.json()["task_id"]
        assert httpx.get(f"{plat.url}/v1/tasks/{task_id}", timeout=30).json()["status"] == \
            "queued"
    finally:
        assert plat.stop() == 0

    plat = start_platform(home)
    try:
        done = wait_status(plat.url, task_id)
        assert done["status"] == "succeeded", done
        first = httpx.get(f"{plat.url}/v1/tasks/{task_id}/result", timeout=30).json()
        assert [item["i"] for item in first["data"]] == [0, 1, 2]
    finally:
        assert plat.stop() == 0

    plat = start_platform(home)
    try:
        view = httpx.get(f"{plat.url}/v1/tasks/{task_id}", timeout=30).json()
        assert view["status"] == "succeeded" and view["finished_at"] == done["finished_at"]
        again = httpx.get(f"{plat.url}/v1/tasks/{task_id}/result", timeout=30).json()
        assert again["data"] == first["data"]
        listed = httpx.get(f"{plat.url}/v1/services/ticker/tasks", timeout=30).json()
        assert [t["task_id"] for t in listed["tasks"]] == [task_id]
    finally:
        plat.stop()
