"""A newcomer never types a URL, a port or a token (modelport/discovery.py): a real
`modelport up --port 0` on a private home, then clients in separate processes whose
environment holds HOME and nothing else, as in a second terminal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningPlatform, start_platform
from tests.e2e.test_cli_unreachable import closed_port_url

CLI = str(Path(sys.executable).parent / "modelport")
SDK = ("import json, modelport; c = modelport.Client(); "
       "print(json.dumps({'url': c.url, 'services': c.list()['services']}))")


def second_terminal(user: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``argv`` with only HOME (and ``env``) set: no MODELPORT_* of the test run."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          env={"HOME": str(user), **env})


def where(user: Path, **env: str) -> dict:
    return json.loads(second_terminal(user, CLI, "where", "--json", **env).stdout)


def up(tmp: Path, user: Path) -> RunningPlatform:
    """`modelport up --port 0` on a private home, as the user ``user`` (its state dir)."""
    return start_platform(tmp / "home", env={"HOME": str(user),
                                             "XDG_STATE_HOME": str(user / ".local" / "state")})


def one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    """The failure's line (a second one may carry the request id), never a traceback."""
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines[0].startswith("error: "), res.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("request id: ")), lines
    return lines[0]


def require_default_port_free() -> None:
    """What follows needs nothing on 127.0.0.1:8000 (the last place a client looks): a
    developer's own `make up` there skips it; under CI (nothing else runs there) it fails."""
    with socket.socket() as s:
        taken = s.connect_ex(("127.0.0.1", 8000)) == 0
    if taken:
        why = "something listens on 127.0.0.1:8000, the default URL"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("user")


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory, user: Path) -> Iterator[RunningPlatform]:
    p = up(tmp_path_factory.mktemp("platform"), user)
    yield p
    p.stop()


def test_a_second_terminal_finds_the_platform_and_its_token(plat: RunningPlatform,
                                                            user: Path) -> None:
    found = where(user)
    assert (found["url"], found["how"], found["home"]) == (plat.url, "pointer", str(plat.home))
    assert found["answering"] and found["token_source"] == str(plat.home / "admin.token")
    listed = second_terminal(user, CLI, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    who = second_terminal(user, CLI, "whoami", "--json")
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["role"] == "admin"
    sdk = second_terminal(user, sys.executable, "-c", SDK)
    assert sdk.returncode == 0, sdk.stderr
    assert json.loads(sdk.stdout) == {"url": plat.url, "services": []}


def test_the_discovery_order(plat: RunningPlatform, user: Path) -> None:
    elsewhere = closed_port_url()
    # the home's own running platform comes before the pointer (same platform here)
    assert where(user, MODELPORT_HOME=str(plat.home))["how"] == "home"
    # MODELPORT_URL before any platform found on disk; its home's token only when it matches
    env_url = where(user, MODELPORT_URL=elsewhere)
    assert (env_url["url"], env_url["how"], env_url["answering"]) == (
        elsewhere, "MODELPORT_URL", False)
    assert env_url["error"]["code"] == "gateway.unreachable"
    assert where(user, MODELPORT_URL=plat.url)["token_source"] == str(plat.home / "admin.token")
    # --url before MODELPORT_URL
    given = second_terminal(user, CLI, "list", "--json", "--url", plat.url,
                            MODELPORT_URL=elsewhere)
    assert given.returncode == 0, given.stderr
    # the token: MODELPORT_TOKEN before the home's admin.token; a refused one says so
    refused = second_terminal(user, CLI, "whoami", MODELPORT_TOKEN="mp_0.wrong")
    line = one_error_line(refused)
    assert "MODELPORT_TOKEN" in line and "modelport login" in line, line


def test_a_credential_short_of_a_scope_says_where_it_came_from(plat: RunningPlatform,
                                                              user: Path) -> None:
    made = second_terminal(user, CLI, "keys", "create", "--scope", "read", "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    line = one_error_line(second_terminal(user, CLI, "--token", token, "users", "list"))
    assert "MODELPORT_TOKEN" in line and "modelport whoami" in line, line  # --token sets it


def test_a_gateway_that_never_answers_is_a_timeout(user: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), answers nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        res = second_terminal(user, CLI, "where", "--json", "--url", url)
    assert res.returncode == 1
    error = json.loads(res.stdout)["error"]
    assert (error["code"], error["kind"]) == ("gateway.timeout", "deadline")
    assert "retry" in error["fix"]


def test_up_on_a_running_home_or_a_taken_port_is_one_line(plat: RunningPlatform, user: Path,
                                                          tmp_path: Path) -> None:
    again = second_terminal(user, CLI, "up", "--home", str(plat.home), "--port", "0", "--json")
    assert again.returncode == 1
    assert json.loads(again.stdout)["error"]["code"] == "platform.running"
    port = plat.url.rsplit(":", 1)[1]
    taken = second_terminal(user, CLI, "up", "--home", str(tmp_path / "home"), "--port", port)
    line = one_error_line(taken)
    assert f"port {port} on 127.0.0.1 is in use" in line and "--port 0" in line, line


def test_human_where_names_the_platform_and_how(plat: RunningPlatform, user: Path) -> None:
    res = second_terminal(user, CLI, "where")
    assert res.returncode == 0, res.stderr
    assert f"platform: {plat.url} (answering)" in res.stdout
    assert f"home:     {plat.home}" in res.stdout and "started last" in res.stdout


def test_a_killed_platform_is_not_found_and_a_stopped_one_says_so(tmp_path: Path) -> None:
    other_user = tmp_path / "user"
    killed = up(tmp_path, other_user)
    pointer = other_user / ".local" / "state" / "modelport" / "current.json"
    assert json.loads(pointer.read_text())["url"] == killed.url
    assert where(other_user)["how"] == "pointer"
    os.kill(killed.proc.pid, signal.SIGKILL)  # no chance to remove its records
    killed.proc.wait(30)
    assert pointer.exists() and (killed.home / "run" / "platform.json").exists()
    assert where(other_user)["how"] == "default"
    assert where(other_user, MODELPORT_HOME=str(killed.home))["how"] == "default"
    require_default_port_free()
    for argv in ([CLI, "list"], [CLI, "top", "--once"], [CLI, "logs", "iris"],
                 [CLI, "status"], [CLI, "diff", str(tmp_path)]):
        line = one_error_line(second_terminal(other_user, *argv))
        if argv[1] != "diff":  # diff finds no git work tree first
            assert line.startswith("error: no modelport platform is running"), line
            assert "modelport up" in line, line
    sdk = second_terminal(other_user, sys.executable, "-c", SDK)
    assert sdk.returncode == 1 and "ConnectError" in sdk.stderr  # the SDK raises, as before


def test_a_stopped_platform_removes_its_records(tmp_path: Path) -> None:
    user = tmp_path / "user"
    stopped = up(tmp_path, user)
    assert stopped.stop() == 0
    assert not (user / ".local" / "state" / "modelport" / "current.json").exists()
    assert not (stopped.home / "run" / "platform.json").exists()
    res = second_terminal(user, CLI, "where", "--json")
    assert res.returncode == 1 and json.loads(res.stdout)["how"] == "default"
    require_default_port_free()
    assert json.loads(res.stdout)["error"]["code"] == "platform.not_running"
    debug = second_terminal(user, CLI, "--debug", "list")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
