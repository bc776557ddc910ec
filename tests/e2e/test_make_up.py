"""`make up` reaches `ready:` and the curl line it prints returns a prediction."""

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
    finally:
        plat.stop()
