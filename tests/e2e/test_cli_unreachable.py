"""A client command with no gateway to talk to: one clear error, in both output forms,
never a traceback (a real CLI process against a loopback port nothing listens on)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "modelport")


def closed_port_url() -> str:
    """A loopback URL whose port was free a moment ago (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("command", [["list"], ["get", "iris"], ["users", "list"],
                                     ["keys", "revoke", "k1"], ["events", "iris"]])
def test_an_unreachable_gateway_is_one_error_line_with_the_fix(command: list[str]) -> None:
    url = closed_port_url()
    human = subprocess.run([CLI, *command, "--url", url], capture_output=True, text=True,
                           timeout=60)
    assert human.returncode == 1
    assert "Traceback" not in human.stderr
    assert human.stderr.startswith(f"error: cannot reach the modelport gateway at {url}")
    assert "modelport up" in human.stderr and len(human.stderr.strip().splitlines()) == 1
    as_json = subprocess.run([CLI, *command, "--url", url, "--json"], capture_output=True,
                             text=True, timeout=60)
    assert as_json.returncode == 1
    error = json.loads(as_json.stdout)["error"]
    assert error["code"] == "gateway.unreachable" and error["kind"] == "unavailable"
    assert "MODELPORT_URL" in error["fix"]
