"""What a newcomer does in the first ten minutes, for real: a fresh clone, `make up PORT=0`
with a private HOME, then a second terminal with nothing but HOME set that runs the
README's quickstart blocks (the CLI lines, and the Python block with `modelport.Client()`).

Slow: the fresh clone's `make up` builds its own venv (the platform only, no dev tooling)
from the package index this suite installs from.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]

#: what a second terminal carries over from this one: the package index and proxies (so
#: the fresh venv installs as this suite's did), never a modelport setting
_CARRIED = re.compile(r"^(PIP_|UV_|https?_proxy$|HTTPS?_PROXY$|no_proxy$|NO_PROXY$|"
                      r"SSL_CERT_|REQUESTS_CA_BUNDLE$|LANG$|LC_)")


def newcomer_env(home: Path, clone: Path) -> dict[str, str]:
    """A terminal with only HOME set (and a PATH with the clone's venv, as after
    `source .venv/bin/activate`)."""
    env = {k: v for k, v in os.environ.items() if _CARRIED.match(k)}
    python_dir = str(Path(sys.base_prefix) / "bin")
    env.update(HOME=str(home), PATH=f"{clone}/.venv/bin:{python_dir}:/usr/local/bin:/usr/bin:/bin")
    return env


def readme_block(after: str, lang: str) -> str:
    """The first ```lang block after the line containing ``after`` in the README."""
    text = (ROOT / "README.md").read_text()
    start = text.index(after)
    m = re.compile(rf"```{lang}\n(.*?)```", re.S).search(text, start)
    assert m, f"README: no ```{lang} block after {after!r}"
    return m.group(1)


class Up:
    """`make up PORT=0` in the clone, its output collected by a thread."""

    def __init__(self, clone: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(["make", "-s", "up", "PORT=0"], cwd=clone, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := rx.search(line):
                    return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"`make up` never printed {pattern!r}:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def sh(script: str, env: dict[str, str], cwd: Path, timeout: float = 300
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_a_fresh_clone_runs_the_readme_with_nothing_but_home(tmp_path: Path) -> None:
    clone, home = tmp_path / "clone", tmp_path / "home"
    home.mkdir()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    env = newcomer_env(home, clone)
    up = Up(clone, env)
    try:
        url = up.wait_for(r"ready: (http://127\.0\.0\.1:\d+)", timeout=1500).group(1)
        up.wait_for(r"try: curl ", timeout=600)

        # the platform's venv has no test tooling
        for tool in ("pytest", "ruff", "schemathesis", "hypothesis"):
            probe = sh(f"python -c 'import {tool}'", env, clone)
            assert probe.returncode != 0, f"`make up` installed {tool}"

        # the README's second-terminal lines, as written, with nothing exported but HOME;
        # its curl lines name the default port, this platform's is {url}
        cli = readme_block("In a second terminal", "bash").replace("http://127.0.0.1:8000",
                                                                   url)
        done = sh(cli, env, clone, timeout=900)
        assert done.returncode == 0, f"README block failed:\n{done.stdout}\n{done.stderr}"
        assert "setosa" in done.stdout

        python = readme_block("From Python:", "python")
        ran = sh(f"python - <<'EOF'\n{python}\nEOF", env, clone, timeout=600)
        assert ran.returncode == 0, f"README Python failed:\n{ran.stdout}\n{ran.stderr}"
        assert "setosa" in ran.stdout

        # an unknown route answers JSON
        nope = sh(f"curl -sS -w '\\n%{{http_code}}' {url}/no/such/route", env, clone)
        body, status = nope.stdout.rsplit("\n", 1)
        assert status == "404" and json.loads(body)["error"]["code"]
    finally:
        up.stop()

    # with the platform stopped: one clear line, no traceback
    stopped = sh("modelport list", env, clone, timeout=120)
    assert stopped.returncode == 1
    assert "Traceback" not in stopped.stderr
    lines = stopped.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error:"), stopped.stderr
