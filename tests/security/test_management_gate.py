"""Every management route refuses a missing or wrong credential (401) and a wrong scope (403).

The routes come from the gateway's own app (``build_app``), so a route added later is
covered without touching this test.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

import modelport
from services.gateway.auth.asgi import PUBLIC_ROUTES
from tests.conftest import RunningPlatform
from tests.security.conftest import ensure

BOGUS = "mp_0123456789abcdef.not-a-real-secret-at-all-000000"
ADMIN_ONLY = ("/api/v1/users", "/api/v1/audit", "/api/v1/gitops")


def management_routes(tmp_path: Path) -> list[tuple[str, str]]:
    """(method, path template) of every HTTP route under /api/v1 the gateway serves."""
    from services.gateway.dataplane import DataPlane
    from services.gateway.server import build_app
    from services.gateway.settings import GatewaySettings
    from services.rpc.server import channel

    async def build() -> list[tuple[str, str]]:
        from modelport.v1 import registry_pb2_grpc

        settings = GatewaySettings(home=tmp_path).resolved()
        registry = registry_pb2_grpc.RegistryStub(channel(settings.registry_address))
        app = build_app(settings, DataPlane(registry), registry)
        return sorted({(m, r.path) for r in app.routes if isinstance(r, Route)
                       for m in (r.methods or ()) if m != "HEAD"
                       and r.path.startswith("/api/v1")})

    return asyncio.run(build())


def concrete(template: str) -> str:
    """A path for the template, naming things that do not exist."""
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: "1" if m.group(2) == ":int"
                  else f"sec-nosuch-{m.group(1)}", template)


def call(base: str, method: str, template: str, headers: dict[str, str]) -> httpx.Response:
    kw: dict = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return httpx.request(method, base + concrete(template), headers=headers, timeout=30, **kw)


def test_the_route_list_is_the_real_one(tmp_path: Path) -> None:
    routes = management_routes(tmp_path)
    for expected in [("POST", "/api/v1/services"), ("DELETE", "/api/v1/services/{name}"),
                     ("GET", "/api/v1/services/{name}/logs"), ("POST", "/api/v1/keys"),
                     ("GET", "/api/v1/audit"), ("POST", "/api/v1/gitops/webhook")]:
        assert expected in routes
    assert PUBLIC_ROUTES <= set(routes)


def test_every_management_route_needs_a_valid_credential_with_the_right_scope(
        sec: RunningPlatform, admin: modelport.Client, tmp_path: Path) -> None:
    ensure(admin, "hello", "gate-svc")
    invoke = admin.create_key(["invoke:gate-svc"], name="gate-invoke")["token"]
    read = admin.create_key(["read"], name="gate-read")["token"]
    deploy = admin.create_key(["deploy"], name="gate-deploy")["token"]
    routes = [r for r in management_routes(tmp_path) if r not in PUBLIC_ROUTES]
    assert len(routes) > 15
    problems = []
    for method, template in routes:
        none = call(sec.url, method, template, {})
        if none.status_code != 401 or none.json()["error"]["code"] != "auth.required":
            problems.append(f"{method} {template} without a credential: {none.status_code}")
        elif "WWW-Authenticate" not in none.headers or not none.json()["error"].get("fix"):
            problems.append(f"{method} {template}: 401 without WWW-Authenticate or a fix")
        for header in ({"Authorization": f"Bearer {BOGUS}"}, {"apikey": BOGUS},
                       {"Authorization": "Bearer garbage"}):
            wrong = call(sec.url, method, template, header)
            if wrong.status_code != 401:
                problems.append(f"{method} {template} with {header}: {wrong.status_code}")
        scoped = call(sec.url, method, template, {"Authorization": f"Bearer {invoke}"})
        if scoped.status_code != 403 or scoped.json()["error"]["code"] != "auth.scope":
            problems.append(f"{method} {template} with an invoke key: {scoped.status_code}")
        writes = method != "GET" or template.startswith(ADMIN_ONLY)
        if writes and template != "/api/v1/users/{username}/password":
            r = call(sec.url, method, template, {"Authorization": f"Bearer {read}"})
            if r.status_code != 403:
                problems.append(f"{method} {template} with a read key: {r.status_code}")
        if template.startswith(ADMIN_ONLY) and "password" not in template:
            r = call(sec.url, method, template, {"Authorization": f"Bearer {deploy}"})
            if r.status_code != 403:
                problems.append(f"{method} {template} with a deploy key: {r.status_code}")
    assert not problems, "\n".join(problems)


def test_the_right_scope_passes_the_gate(sec: RunningPlatform, admin: modelport.Client) -> None:
    read = admin.create_key(["read"], name="gate-read2")["token"]
    r = httpx.get(f"{sec.url}/api/v1/services", headers={"Authorization": f"Bearer {read}"})
    assert r.status_code == 200
    assert httpx.get(f"{sec.url}/api/v1/audit",
                     headers={"Authorization": f"Bearer {read}"}).status_code == 403


@pytest.mark.parametrize("header", ["apikey", "X-Apig-AppCode"])
def test_keys_are_accepted_in_the_modelarts_headers(sec: RunningPlatform,
                                                    admin: modelport.Client,
                                                    header: str) -> None:
    token = admin.create_key(["read"], name=f"gate-{header}")["token"]
    assert httpx.get(f"{sec.url}/api/v1/services", headers={header: token}).status_code == 200


def test_a_revoked_or_expired_key_stops_working(sec: RunningPlatform,
                                                admin: modelport.Client) -> None:
    key = admin.create_key(["read"], name="gate-revoked")
    headers = {"Authorization": f"Bearer {key['token']}"}
    assert httpx.get(f"{sec.url}/api/v1/services", headers=headers).status_code == 200
    admin.revoke_key(key["id"])
    r = httpx.get(f"{sec.url}/api/v1/services", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "auth.revoked"
    short = admin.create_key(["read"], name="gate-expired", ttl_s=0.5)
    deadline = short["created_at"] + 0.5
    import time

    while time.time() < deadline + 2.5:  # past its end and past the gateway's 2 s cache
        time.sleep(0.25)
    r = httpx.get(f"{sec.url}/api/v1/services",
                  headers={"Authorization": f"Bearer {short['token']}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "auth.expired"
    listed = {k["id"]: k for k in admin.keys(revoked=True)}
    assert listed[key["id"]]["revoked_at"] and listed[key["id"]]["last_used_at"]
    assert "token" not in listed[key["id"]] and "secret_key" not in listed[key["id"]]


def test_a_key_grants_only_what_its_creator_holds(sec: RunningPlatform,
                                                  admin: modelport.Client) -> None:
    deploy = admin.create_key(["deploy"], name="gate-deployer")["token"]
    with modelport.Client(sec.url, token=deploy) as c:
        with pytest.raises(modelport.ModelportError) as exc:
            c.create_key(["admin"], name="escalate")
        assert exc.value.code == "key.scope_forbidden"
        assert c.create_key(["invoke:gate-svc"], name="ok")["scopes"] == ["invoke:gate-svc"]
