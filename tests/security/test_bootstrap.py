"""`modelport up` makes the admin token on its first start, stores only its hash, writes it
0600 to <home>/admin.token, prints it once; clients find it; --no-auth stays on loopback."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import httpx

from tests.conftest import BIN, start_platform

# a fresh platform that makes its own token (not the suite's MODELPORT_ADMIN_TOKEN), and
# clients that know none
FRESH = {"MODELPORT_ADMIN_TOKEN": "", "MODELPORT_TOKEN": ""}


def test_first_start_makes_the_admin_token_and_only_the_first_prints_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    plat = start_platform(home, env=FRESH)
    try:
        token = plat.wait_for(r"^token: (mp_\S+)$").group(1)
        path = home / "admin.token"
        assert path.read_text().strip() == token
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secret = token.split(".", 1)[1]
        for db in home.glob("registry.db*"):  # the hash only, never the token
            assert secret.encode() not in db.read_bytes()
        # the CLI against its own home needs no token typed
        env = {**os.environ, **FRESH, "MODELPORT_HOME": str(home)}
        out = subprocess.run([str(BIN / "modelport"), "whoami", "--url", plat.url],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0 and "admin (admin)" in out.stdout, out.stderr
        out = subprocess.run([str(BIN / "modelport"), "--home", str(home), "list", "--url",
                              plat.url, "--json"], capture_output=True, text=True,
                             env={**os.environ, **FRESH}, timeout=60)
        assert out.returncode == 0, out.stderr
        assert httpx.get(f"{plat.url}/api/v1/services").status_code == 401
        cli_users_keys_and_login(plat.url, env, tmp_path)
    finally:
        assert plat.stop() == 0
    # a later start prints no token; --no-auth (loopback) needs none at all
    again = start_platform(home, "--no-auth", env=FRESH)
    try:
        again.wait_for(r"^metrics: ")
        assert not any(line.startswith("token:") for line in again.lines)
        assert any(line.startswith("auth: off") for line in again.lines)
        assert httpx.get(f"{again.url}/api/v1/services").status_code == 200
    finally:
        again.stop()


def cli_users_keys_and_login(url: str, env: dict[str, str], tmp_path: Path) -> None:
    def mp(*args: str, stdin: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([str(BIN / "modelport"), *args, "--url", url], input=stdin,
                             capture_output=True, text=True, env={**env, **extra}, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        return out

    mp("users", "add", "carol", "--password-stdin", stdin="carol-password\n")
    config = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "MODELPORT_HOME": ""}
    mp("login", "-u", "carol", "--password-stdin", stdin="carol-password\n", **config)
    stored = tmp_path / "config" / "modelport" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert "carol (member)" in mp("whoami", **config).stdout
    made = mp("keys", "create", "--scope", "invoke:anything", "--ttl", "1h", **config).stdout
    assert "secret key:" in made and "token:      mp_" in made
    assert "invoke:anything" in mp("keys", "list", "--json", **config).stdout
    mp("logout", **config)
    assert "carol" in mp("audit", "--json").stdout


def test_no_auth_refuses_a_non_loopback_bind(tmp_path: Path) -> None:
    out = subprocess.run([str(BIN / "modelport"), "up", "--no-auth", "--host", "0.0.0.0",
                          "--home", str(tmp_path / "h"), "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "--no-auth" in out.stderr
    assert not (tmp_path / "h").exists()
