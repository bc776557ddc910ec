"""`make up` reaches `ready:`, the curl line it prints returns a prediction, and the
console URL printed next to it answers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT, start_platform


def test_make_up_prints_working_curl(tmp_path: Path) -> None:
    env = {"MODELPORT_HOME": str(tmp_path / "home")}
    plat = start_platform(tmp_path / "home", env=env,
                          argv=["make", "-s", "up", "PORT=0"])
    try:
        curl = plat.wait_for(r"try: (curl .*)$", timeout=600).group(1)
        assert plat.url in curl
        res = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60,
                             cwd=ROOT, env={**os.environ})
        assert res.returncode == 0, res.stderr
        assert '"result":true' in res.stdout and "setosa" in res.stdout, res.stdout
        # next to the curl line: the console, which answers with its page
        console = plat.wait_for(r"console: (http://\S+/console)#/services/iris$").group(1)
        assert console == f"{plat.url}/console"
        page = subprocess.run(["curl", "-sS", console], capture_output=True, text=True,
                              timeout=60)
        assert "modelport console" in page.stdout, page.stdout
    finally:
        plat.stop()
