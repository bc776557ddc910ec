"""What crashed and when (issue 18 §1): a component of the platform SIGKILLed and restarted
by the launcher stays visible afterwards, in `GET /api/v1/platform/components` (admin only)
and at the top of `modelport status`: its state, pid, restarts and last crash (when, the
signal, how long it had run, the log to open). The record is the launcher's
`<run dir>/components.json` (modelport/supervision.py); a real platform, real SIGKILLs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

import modelport
from modelport import supervision
from modelport.cli import components_view
from modelport.home import HomeLayout
from tests.conftest import AUTH_HEADERS, BIN, component_pid, kill_component, start_platform
from tests.rollout.load import wait_until

COMPONENTS = ("builder", "runtime", "registry", "gateway")


def components(url: str) -> dict[str, dict]:
    r = httpx.get(f"{url}/api/v1/platform/components", headers=AUTH_HEADERS, timeout=60)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["supervised"] and doc["launcher"]["running"], doc
    return {c["name"]: c for c in doc["components"]}


def test_a_killed_component_shows_its_crash_in_the_api_and_in_status(tmp_path: Path) -> None:
    home = tmp_path / "home"
    plat = start_platform(home)
    try:
        first = components(plat.url)
        assert set(COMPONENTS) <= set(first), first
        for name in COMPONENTS:
            c = first[name]
            assert c["state"] == "running" and c["alive"], c
            assert c["pid"] == component_pid(plat.proc.pid, name), (name, c)
            assert c["restarts"] == 0 and c["last_crash"] is None, c
            assert c["log"] == str(home / "logs" / f"{name}.log")

        # management only: no credential is a 401, a key without admin a 403
        assert httpx.get(f"{plat.url}/api/v1/platform/components",
                         timeout=30).status_code == 401
        with modelport.Client(plat.url, home=home) as admin:
            key = admin.create_key(["read", "deploy"], name="not-admin")["token"]
        r = httpx.get(f"{plat.url}/api/v1/platform/components",
                      headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert r.status_code == 403 and r.json()["error"]["fix"], r.text

        before = time.time()
        old_pid = first["registry"]["pid"]
        kill_component(plat, "registry")
        after = time.time()
        now = wait_until(lambda: (c := components(plat.url))["registry"]["state"] == "running"
                         and c["registry"]["pid"] != old_pid and c, 60,
                         "the record of the registry's restart")
        reg = now["registry"]
        assert reg["restarts"] == 1 and reg["crash_count"] == 1 and reg["alive"], reg
        assert reg["pid"] == component_pid(plat.proc.pid, "registry")
        crash = reg["last_crash"]
        assert crash["exit_code"] == -9 and crash["reason"] == "killed by SIGKILL", crash
        assert before - 1 <= crash["at"] <= after + 1, (before, crash, after)
        assert crash["uptime_s"] > 0 and reg["started_at"] >= crash["at"]
        # the others did not move
        for name in ("builder", "runtime", "gateway"):
            assert now[name]["pid"] == first[name]["pid"] and now[name]["restarts"] == 0

        # a gateway killed too: its record survives its own restart (the launcher wrote it)
        kill_component(plat, "gateway")
        gw = wait_until(lambda: (c := components(plat.url))["gateway"]["restarts"] == 1
                        and c["gateway"]["state"] == "running" and c["gateway"], 60,
                        "the gateway's restart in the record")
        assert gw["last_crash"]["reason"] == "killed by SIGKILL"
        assert components(plat.url)["registry"]["restarts"] == 1

        # modelport status: the components first, the crash said in one line, then GitOps
        env = {**os.environ, "MODELPORT_HOME": str(home)}
        text = subprocess.run([str(BIN / "modelport"), "status"], capture_output=True,
                              text=True, timeout=120, env=env)
        assert text.returncode == 0, text.stdout + text.stderr
        out = text.stdout
        assert out.startswith("platform components (launcher pid "
                              f"{plat.proc.pid}, running"), out
        assert "COMPONENT" in out and "RESTARTS" in out, out
        assert out.index("COMPONENT") < out.index("gitops: no repository synced"), out
        crash_line = next(ln for ln in out.splitlines() if "registry last crash" in ln)
        assert "killed by SIGKILL" in crash_line, out
        assert str(home / "logs" / "registry.log") in crash_line, out
        assert any("gateway last crash" in ln for ln in out.splitlines()), out
        assert not any("builder last crash" in ln for ln in out.splitlines()), out

        js = subprocess.run([str(BIN / "modelport"), "status", "--json"], capture_output=True,
                            text=True, timeout=120, env=env)
        assert js.returncode == 0, js.stderr
        doc = json.loads(js.stdout)
        listed = {c["name"]: c for c in doc["platform"]["components"]}
        assert listed["registry"]["last_crash"]["reason"] == "killed by SIGKILL"
        assert "sources" in doc and "services" in doc  # GitOps, as before

        # a gateway that does not answer: `modelport status` reads the home's record itself
        gw_pid = component_pid(plat.proc.pid, "gateway")
        assert gw_pid is not None
        os.kill(gw_pid, signal.SIGSTOP)
        try:
            with modelport.Client(home=home, timeout=2.0) as c:
                assert c.platform.how == "home", c.platform
                doc, source = components_view.fetch(c)
        finally:
            os.kill(gw_pid, signal.SIGCONT)
        assert doc is not None and source.startswith("read from "), source
        assert {c["name"]: c for c in doc["components"]}["registry"]["restarts"] == 1
    finally:
        plat.stop()
    # stopped: the record stays, and says nothing runs
    doc = supervision.read(HomeLayout(home).run)
    assert doc["supervised"] and not doc["launcher"]["running"]
    assert {c["state"] for c in doc["components"]} == {"stopped"}
    assert {c["name"]: c for c in doc["components"]}["registry"]["crash_count"] == 1


def test_the_crash_record_names_the_first_error_of_the_log(tmp_path: Path) -> None:
    """A component that dies of an error (not a SIGKILL): the record quotes the first
    error-level line of the log since this start, else an uncaught exception's last line,
    and keeps at most KEEP_CRASHES crashes; the file is replaced whole each time."""
    run = tmp_path / "run"
    run.mkdir()
    log = tmp_path / "registry.log"
    log.write_text(json.dumps({"level": "error", "message": "an earlier start's error"}) + "\n")
    offset = log.stat().st_size
    with log.open("a") as f:
        f.write(json.dumps({"level": "info", "message": "starting"}) + "\n")
        f.write(json.dumps({"level": "error", "message": "database is locked\nmore"}) + "\n")
        f.write(json.dumps({"level": "critical", "message": "fallout"}) + "\n")
    proc = subprocess.run(["python3", "-c", "import sys; sys.exit(3)"], check=False)
    supervision.record(run, "registry", "running", pid=os.getpid(), log=log)
    supervision.record(run, "registry", "exited", code=proc.returncode, uptime_s=2.5, log=log,
                       log_offset=offset, retry_in_s=2, restarts=0)
    doc = supervision.read(run)
    (reg,) = doc["components"]
    assert reg["state"] == "restarting" and "restarting in 2s" in reg["detail"], reg
    assert reg["last_crash"]["error"] == "database is locked"
    assert reg["last_crash"]["reason"] == "exited with code 3"

    traceback = tmp_path / "gateway.log"
    traceback.write_text("Traceback (most recent call last):\n  File \"x\", line 1\n"
                         "OSError: [Errno 28] No space left on device\n")
    for i in range(supervision.KEEP_CRASHES + 3):
        supervision.record(run, "gateway", "exited", code=-signal.SIGSEGV, log=traceback,
                           restarts=i)
    gw = next(c for c in supervision.read(run)["components"] if c["name"] == "gateway")
    assert gw["last_crash"]["error"] == "OSError: [Errno 28] No space left on device"
    assert gw["last_crash"]["reason"] == "killed by SIGSEGV"
    assert len(gw["crashes"]) == supervision.KEEP_CRASHES
    assert gw["crash_count"] == supervision.KEEP_CRASHES + 3
    assert [p.name for p in run.iterdir()] == [supervision.FILE]  # no temporary left


@pytest.mark.parametrize("content", ["", "{not json", "[]"])
def test_a_missing_or_unreadable_record_says_so(tmp_path: Path, content: str) -> None:
    if content:
        (tmp_path / supervision.FILE).write_text(content)
    doc = supervision.read(tmp_path)
    assert doc["supervised"] is False and doc["components"] == [] and doc["message"]
    supervision.record(tmp_path, "builder", "running", pid=os.getpid())  # replaces it
    assert [c["name"] for c in supervision.read(tmp_path)["components"]] == ["builder"]
