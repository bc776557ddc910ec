"""Startup, readiness and liveness probes (services/runtime/probes.py) on real workers: a
setup that hangs fails its startup probe; a worker that stops answering (SIGSTOP) leaves
load balancing, comes back when it answers again, and is restarted when it does not."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from services.runtime.backends.process import ProcessBackend
from services.runtime.probes import Probe, Probes
from services.runtime.supervisor import Supervisor
from tests.runtime.support import make_spec, run, wait_state


def test_defaults_flat_fields_and_per_probe_overrides() -> None:
    d = Probes.defaults(interval_s=10, timeout_s=5, failures=3, startup_s=120)
    assert d.startup_timeout_s == 120
    assert d.readiness == Probe(0, 10, 5, 1) and d.liveness == Probe(0, 10, 5, 3)
    p = d.with_health({"period_seconds": "4", "failure_threshold": 2,
                       "initial_delay_seconds": 6,
                       "startup": {"period_seconds": 2, "failure_threshold": 30},
                       "liveness": {"failure_threshold": 5}, "check_method": "HTTP"})
    assert p.startup_timeout_s == 6 + 2 * 30  # ModelArts writes numbers as strings too
    assert p.readiness == Probe(6, 4, 5, 2) and p.liveness == Probe(6, 4, 5, 5)
    assert p.period_s == 4 and p.timeout_s == 5
    assert d.with_health({"period_seconds": 0, "failure_threshold": -1}) == d
    assert d.with_health(None) == d


def _package(tmp_path: Path, name: str, code: str, health: dict) -> Path:
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "config.json").write_text(json.dumps({
        "name": name, "predictor": "predict:Predictor",
        "input": [{"name": "text", "type": "text"}], "health": health}))
    (pkg / "predict.py").write_text(code)
    return pkg


def test_setup_that_hangs_fails_the_startup_probe(shim_root: Path, tmp_path: Path) -> None:
    health = {"startup": {"period_seconds": 1, "failure_threshold": 1}}
    pkg = _package(tmp_path, "hangs", "import time\nclass Predictor:\n    def setup(self):\n"
                   "        time.sleep(3600)\n    def predict(self, text):\n        return text\n",
                   health)

    async def main() -> None:
        sup = Supervisor(tmp_path / "work", ProcessBackend(shim_root), restart_initial_s=30,
                         stop_grace_s=1)
        try:
            await sup.start(make_spec("echo", tmp_path, replica_id="hangs-1", package_dir=pkg,
                                      config=json.loads((pkg / "config.json").read_text())))
            info = await wait_state(sup, "hangs-1", "failed", timeout_s=30)
            assert "startup probe failed: setup() did not finish within 1s" in info.message
            assert "config.json health.startup" in info.message
            assert info.last_exit == info.message.split(" (retrying")[0]
        finally:
            await sup.close()

    run(main())


def test_unanswering_worker_leaves_load_balancing_then_is_restarted(
        shim_root: Path, tmp_path: Path) -> None:
    health = {"period_seconds": 1, "timeout_seconds": 1,
              "readiness": {"failure_threshold": 1}, "liveness": {"failure_threshold": 3}}
    pkg = _package(tmp_path, "frozen", "class Predictor:\n    def predict(self, text):\n"
                   "        return text\n", health)
    config = json.loads((pkg / "config.json").read_text())

    async def main() -> None:
        sup = Supervisor(tmp_path / "work", ProcessBackend(shim_root), restart_initial_s=0.1)
        try:
            await sup.start(make_spec("echo", tmp_path, replica_id="frozen-1", package_dir=pkg,
                                      config=config))
            ready = await wait_state(sup, "frozen-1", "ready")
            os.kill(ready.pid, signal.SIGSTOP)
            unready = await wait_state(sup, "frozen-1", "unready", timeout_s=20)
            assert "readiness probe failed" in unready.message
            os.kill(ready.pid, signal.SIGCONT)
            back = await wait_state(sup, "frozen-1", "ready", timeout_s=20)
            assert back.pid == ready.pid and back.restarts == 0
            os.kill(ready.pid, signal.SIGSTOP)
            restarted = await wait_state(sup, "frozen-1", "ready", timeout_s=40,
                                         where=lambda i: i.restarts == 1)
            assert restarted.pid != ready.pid
            assert "liveness probe failed" in restarted.last_exit
        finally:
            await sup.close()

    run(main())
