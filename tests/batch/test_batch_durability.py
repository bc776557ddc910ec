"""A batch job survives the whole platform killed mid-way: after `up` on the same home it
finishes, and its manifest has every item exactly once (items running at the kill are run
again; none is lost, none doubled)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import psutil
import pytest

import modelport
from tests.conftest import start_platform
from tests.e2e.packages import predictor

SLOWISH = """
import time

class Predictor:
    def predict(self, text):
        time.sleep(0.03)
        return {"echo": text}
"""
ITEMS = 300


def kill_everything(pid: int) -> None:
    """SIGKILL `modelport up` and every process under it, all at once."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)


@pytest.mark.timeout(600)
def test_a_job_killed_with_the_platform_finishes_after_up_with_each_item_once(
        tmp_path: Path) -> None:
    home = tmp_path / "home"
    bodies = tmp_path / "items.jsonl"
    bodies.write_text("".join(json.dumps({"text": f"item-{i}"}) + "\n" for i in range(ITEMS)))
    plat = start_platform(home)
    try:
        with modelport.Client(plat.url, home=home) as c:
            c.create(predictor(tmp_path, "slowish", SLOWISH), name="slowish")
            job = c.batch_create("slowish", bodies, concurrency=2)
            deadline = time.monotonic() + 120
            while c.batch(job["id"])["done"] < 20:
                assert time.monotonic() < deadline, c.batch(job["id"])
                time.sleep(0.05)
        kill_everything(plat.proc.pid)
    finally:
        if plat.proc.poll() is None:
            plat.stop()

    again = start_platform(home)
    try:
        with modelport.Client(again.url, home=home) as c:
            before = c.batch(job["id"])
            assert before["status"] in ("queued", "running"), before
            assert 20 <= before["done"] < ITEMS
            done = c.batch_wait(job["id"], timeout=400)
            assert done["status"] == "succeeded", done
            assert (done["total"], done["done"], done["failed"]) == (ITEMS, ITEMS, 0)
            manifest = c.batch_results(job["id"], tmp_path / "out")
            log = c.batch_log(job["id"])
    finally:
        again.stop()
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(lines) == ITEMS
    sources = [line["source"] for line in lines]
    assert sorted(sources) == sorted(f"items.jsonl:{n}" for n in range(1, ITEMS + 1))
    assert {line["result"] for line in lines} == {"SUCCESSFUL"}
    echoes = sorted(json.loads((tmp_path / "out" / line["inference-loc"]).read_text())["echo"]
                    for line in lines)
    assert echoes == sorted(f"item-{i}" for i in range(ITEMS))
    # what was in flight at the kill ran again, and the log says so
    assert done["retried"] >= 1 and "running it again" in log
