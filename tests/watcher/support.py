"""Real git repositories in temporary directories, and polling helpers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ECHO = ROOT / "tests" / "packages" / "echo"
CLI = str(Path(sys.executable).parent / "modelport")


def write_package(dest: Path) -> Path:
    """A one-input predictor: {"text": ...} -> {"text": ...}."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps({
        "name": "echo", "predictor": "predict:Echo", "input": [{"name": "text", "type": "text"}],
        "output": [{"name": "text", "type": "json"}]}))
    (dest / "predict.py").write_text("class Echo:\n    def setup(self):\n        pass\n\n"
                                     "    def predict(self, text):\n"
                                     "        return {'text': text}\n")
    return dest


def service_yaml(name: str, package: str = "../models/echo", replicas: int = 1,
                 extra: str = "") -> str:
    return (f"apiVersion: modelport/v1\nkind: ModelService\nmetadata: {{name: {name}}}\n"
            f"spec:\n  package: {package}\n  replicas: {replicas}\n{extra}")


class Repo:
    """A git work tree with `config/` (YAML) and `models/echo` (a package)."""

    def __init__(self, root: Path, branch: str = "main") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", branch)
        self.git("config", "user.email", "dev@example.invalid")
        self.git("config", "user.name", "dev")
        (root / "config").mkdir(exist_ok=True)
        write_package(root / "models" / "echo")

    @property
    def config(self) -> Path:
        return self.root / "config"

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True,
                              text=True).stdout.strip()

    def write(self, rel: str, text: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


def wait_until(check: Callable[[], Any], timeout: float = 120, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # not there yet
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or check}: last {last!r}")


def cli(url: str, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([CLI, *args, "--url", url], capture_output=True, text=True,
                         timeout=300)
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def cli_json(url: str, *args: str) -> Any:
    res = cli(url, *args, "--json")
    return json.loads(res.stdout)
