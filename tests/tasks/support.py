"""Helpers for the task tests: the ticker model's inputs and polling a task to its end."""

from __future__ import annotations

import time

import httpx

from tests.streaming.conftest import TICKER, ticker_inputs  # noqa: F401 - re-exported

TERMINAL = ("succeeded", "failed", "cancelled")


def wait_status(base: str, task_id: str, states: tuple[str, ...] = TERMINAL,
                timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{base}/v1/tasks/{task_id}", timeout=30)
        assert r.status_code == 200, r.text
        view = r.json()
        if view["status"] in states:
            return view
        assert time.monotonic() < deadline, f"task stayed {view['status']}: {view}"
        time.sleep(0.1)
