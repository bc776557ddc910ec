"""Credentials on the command line: `login`, `logout`, `whoami`, `keys`, `users`, `audit`.

A client command sends `--token`, else MODELPORT_TOKEN, else the token `modelport login`
stored for the URL, else the `admin.token` of the home the platform was found in (what
`modelport up` wrote): a local user never types a token. modelport/discovery.py finds
both; see docs/security.md.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelport.cli.output import JsonOpt, UrlOpt, act, answered, emit, listing, out
from modelport.client import Client
from modelport.discovery import credentials_file

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if not m:
        raise typer.BadParameter(f"{text!r} is not a duration like 3600, 12h, 30d")
    return float(m.group(1)) * _SECONDS[m.group(2)]


def _when(ts: float | None) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def _password(prompt: str, stdin: bool, confirm: bool = False) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)


def _store(url: str, token: str | None) -> Path:
    """Keep (or forget, with None) the login token of a gateway URL, mode 0600."""
    path = credentials_file()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    if token is None:
        data.pop(url.rstrip("/"), None)
    else:
        data[url.rstrip("/")] = token
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(path.with_suffix(".tmp"), path)
    return path


# ------------------------------------------------------------------------ login


def login(
    url: UrlOpt = None,
    username: Annotated[str | None, typer.Option("-u", "--username")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the password from stdin")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Log in with a username and password; later commands against this URL use the token."""
    name = username or typer.prompt("username")
    password = _password("password", password_stdin)
    with Client(url) as c:
        c.http.headers.pop("Authorization", None)  # a login sends only the password
        data = answered(lambda: c.login(name, password, name=f"cli@{os.uname().nodename}"),
                        as_json, c)
    path = _store(c.url, data["token"])
    shown = {k: v for k, v in data.items() if k != "token"}
    emit({**shown, "stored": str(path)}, as_json,
          f"logged in as {data['user']} ({data['role']}); token stored in {path}")


def logout(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """End this URL's login token and forget it."""
    with Client(url) as c:
        answered(lambda: c._json("POST", "/api/v1/auth/logout"), as_json, c)
    _store(c.url, None)
    emit({"logged_out": True}, as_json, "logged out")


def whoami(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Show who the current credential belongs to and what it may do."""
    with Client(url) as c:
        data = answered(c.whoami, as_json, c)
    emit(data, as_json, f"{data['user']} ({data['role']}), {data['kind']} {data['key_id']}: "
          f"{', '.join(data['scopes'])}")


# ------------------------------------------------------------------------ keys

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option(
        "--scope", "-s", help="admin | deploy | read | invoke:* | invoke:SERVICE (repeatable)")],
    name: Annotated[str, typer.Option(help="what the key is for")] = "",
    ttl: Annotated[str, typer.Option(help="expires after e.g. 3600, 12h, 30d; empty = never")]
    = "",
    rate_limit: Annotated[float, typer.Option(help="requests/s for this key; 0 = none")] = 0,
    user: Annotated[str, typer.Option(help="for another user (admins)")] = "",
    url: UrlOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create an API key; prints its token and its AK/SK pair once."""
    ttl_s = _duration(ttl) if ttl else 0.0
    with Client(url) as c:
        data = answered(lambda: c.create_key(scope, name, ttl_s, rate_limit, user), as_json,
                        c)
    emit(data, as_json,
          f"key {data['id']} ({', '.join(data['scopes'])}) for {data['user']}\n"
          f"token:      {data['token']}\n"
          f"access key: {data['access_key']}\nsecret key: {data['secret_key']}\n"
          "(shown once: store them now. Send the token as 'Authorization: Bearer ...', "
          "'apikey: ...' or 'X-Apig-AppCode: ...', or sign requests with the AK/SK pair)")


@keys_app.command("list")
def keys_list(
    all_users: Annotated[bool, typer.Option("--all", help="every user's (admins)")] = False,
    revoked: Annotated[bool, typer.Option(help="include revoked keys")] = False,
    url: UrlOpt = None, as_json: JsonOpt = False,
) -> None:
    """List API keys, login tokens and sessions (never their secrets)."""
    listing(url, as_json, lambda c: c.keys(all_users, revoked),
            ("ID", "USER", "KIND", "NAME", "SCOPES", "CREATED", "EXPIRES", "LAST USED",
             "REVOKED"),
            lambda k: (k["id"], k["user"], k["kind"], k["name"], ", ".join(k["scopes"]),
                       _when(k["created_at"]), _when(k["expires_at"]),
                       _when(k["last_used_at"]), _when(k["revoked_at"])))


@keys_app.command("revoke")
def keys_revoke(key_id: str, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a key: it stops working at once."""
    act(url, as_json, lambda c: c.revoke_key(key_id), lambda data: f"revoked {data['id']}")


# ------------------------------------------------------------------------ users

users_app = typer.Typer(help="Users (admins): add, list, remove, passwd.", no_args_is_help=True)


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="admin | member")] = "member",
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    url: UrlOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a user (members see and change only their own services)."""
    password = _password("password", password_stdin, confirm=not password_stdin)
    act(url, as_json, lambda c: c.create_user(username, password, role),
        lambda data: f"created {data['username']} ({data['role']})")


@users_app.command("list")
def users_list(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """List users."""
    listing(url, as_json, lambda c: c.users(),
            ("USER", "ROLE", "CREATED", "DISABLED"),
            lambda u: (u["username"], u["role"], _when(u["created_at"]),
                       "yes" if u["disabled"] else ""))


@users_app.command("remove")
def users_remove(username: str, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Disable a user and revoke all their keys and sessions."""
    act(url, as_json, lambda c: c.delete_user(username), lambda data: f"removed {data['username']}")


@users_app.command("passwd")
def users_passwd(username: str,
                 password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
                 url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Set a password (your own, or anyone's as an admin); other sessions end."""
    password = _password("new password", password_stdin, confirm=not password_stdin)
    act(url, as_json, lambda c: c.set_password(username, password),
        lambda data: f"password of {data['username']} changed")


# ------------------------------------------------------------------------ audit


def audit(
    limit: Annotated[int, typer.Option(help="newest N")] = 50,
    user: Annotated[str, typer.Option(help="only this user's")] = "",
    url: UrlOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show the audit log (admins): who did what, when, from where."""
    with Client(url) as c:
        data = answered(lambda: c.audit(limit, user), as_json, c)
    if as_json:
        emit(data, True, "")
        return
    table = Table("TIME", "USER", "ACTION", "TARGET", "STATUS", "FROM", "DETAIL")
    for e in reversed(data):
        table.add_row(datetime.datetime.fromtimestamp(e["ts"]).strftime("%Y-%m-%d %H:%M:%S"),
                      e["user"] or "-", e["action"], e["target"], str(e["status"]), e["remote"],
                      e["detail"])
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(whoami)
    app.command()(audit)
    app.add_typer(keys_app, name="keys")
    app.add_typer(users_app, name="users")
