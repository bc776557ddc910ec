"""Users: members see and change only their own services; console sessions with CSRF;
the audit log says who did what, when, from where."""

from __future__ import annotations

import json
import time

import httpx
import pytest

import modelport
from tests.conftest import RunningPlatform
from tests.security.conftest import PACKAGES, deploy, ensure


@pytest.fixture(scope="module")
def members(sec: RunningPlatform, admin: modelport.Client) -> dict[str, modelport.Client]:
    for name in ("alice", "bob"):
        try:
            admin.create_user(name, f"{name}-password-1", "member")
        except modelport.ModelportError as exc:
            assert exc.code == "user.exists"
    clients = {}
    for name in ("alice", "bob"):
        c = modelport.Client(sec.url, token="-")
        c.login(name, f"{name}-password-1")
        clients[name] = c
    yield clients
    for c in clients.values():
        c.close()


def status(action) -> int:  # noqa: ANN001
    try:
        action()
    except modelport.ModelportError as exc:
        return int(exc.details["status"])
    return 200


def test_a_member_cannot_see_or_touch_another_members_services(
        sec: RunningPlatform, admin: modelport.Client,
        members: dict[str, modelport.Client]) -> None:
    alice, bob = members["alice"], members["bob"]
    ensure(alice, "hello", "alice-svc")
    ensure(bob, "hello", "bob-svc")
    assert alice.list()["message"] == ["alice-svc"]
    assert bob.list()["message"] == ["bob-svc"]
    assert {"alice-svc", "bob-svc"} <= set(admin.list()["message"])
    for action in (lambda: bob.get("alice-svc"), lambda: bob.events("alice-svc"),
                   lambda: bob.versions("alice-svc"), lambda: bob.build_log("alice-svc", 1),
                   lambda: bob.update("alice-svc", PACKAGES / "hello", wait=False),
                   lambda: bob.apply("alice-svc", json.dumps({"replicas": 0}), wait=False),
                   lambda: bob.delete("alice-svc"), lambda: bob.stats("alice-svc"),
                   lambda: list(bob.logs("alice-svc"))):
        assert status(action) == 404
    # a new service of bob's cannot take over alice's model either
    assert status(lambda: bob.apply("bob-steals", json.dumps(
        {"model": {"name": "alice-svc"}}), PACKAGES / "hello", wait=False)) == 403
    assert status(lambda: bob.create(PACKAGES / "hello", name="alice-svc", wait=False)) in (
        403, 409)
    assert [s["service"] for s in bob.stats()["services"]] == ["bob-svc"]
    assert alice.get("alice-svc")["phase"] == "running"
    # members cannot manage users or read the audit log, nor hold the admin scope
    assert status(alice.users) == 403 and status(alice.audit) == 403
    assert status(lambda: alice.create_key(["admin"])) == 403
    # a member's invoke:* key reaches only the member's services
    deploy(admin, "hello", "admin-guarded", auth={"required": True})
    key = alice.create_key(["invoke:*"], name="alice-star")
    r = httpx.post(f"{sec.url}/v1/services/admin-guarded/infer", json={"text": "x"},
                   headers={"Authorization": f"Bearer {key['token']}"})
    assert r.status_code == 403
    # an admin reaches everything
    assert admin.get("alice-svc")["name"] == "alice-svc"


def test_console_sessions_are_httponly_samesite_cookies_with_csrf(
        sec: RunningPlatform, members: dict[str, modelport.Client]) -> None:
    with httpx.Client(base_url=sec.url) as browser:
        bad = browser.post("/api/v1/auth/login", json={"username": "alice", "password": "no"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "auth.login_failed"
        r = browser.post("/api/v1/auth/login",
                         json={"username": "alice", "password": "alice-password-1"})
        assert r.status_code == 200
        cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie"
                      and v.startswith("modelport_session="))
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        csrf = r.json()["csrf_token"]
        assert browser.get("/api/v1/services").json()["services"][0]["name"] == "alice-svc"
        forged = browser.post("/api/v1/keys", json={"scopes": ["read"]})
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "auth.csrf"
        made = browser.post("/api/v1/keys", json={"scopes": ["read"]},
                            headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201
        assert browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}
                            ).status_code == 200
        assert browser.get("/api/v1/services").status_code == 401


def test_the_audit_log_records_who_what_when_and_from_where(
        sec: RunningPlatform, admin: modelport.Client,
        members: dict[str, modelport.Client]) -> None:
    since = time.time() - 1
    bob = members["bob"]
    status(lambda: bob.delete("alice-svc"))  # refused (not bob's)
    ensure(bob, "hello", "bob-audited")
    httpx.delete(f"{sec.url}/api/v1/services/bob-svc")  # no credential: 401
    deadline = time.monotonic() + 30
    while True:
        entries = [e for e in admin.audit(limit=200) if e["ts"] >= since]
        actions = {(e["user"], e["action"], e["target"], e["status"]) for e in entries}
        want = {("bob", "DELETE /api/v1/services/{name}", "name=alice-svc", 404),
                ("bob", "PUT /api/v1/services/{name}", "name=bob-audited", 201),
                ("", "DELETE /api/v1/services/{name}", "name=bob-svc", 401)}
        if want <= actions or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert want <= actions, sorted(actions)
    assert all(e["remote"] == "127.0.0.1" for e in entries)
    assert any(e["action"] == "POST /api/v1/auth/token" and e["user"] == "bob"
               for e in admin.audit(limit=500))
