"""Schemathesis hooks for test_fuzz_routes.py (loaded through ``SCHEMATHESIS_HOOKS``; the
test sets ``FUZZ_URL`` and ``FUZZ_TOKEN``, the admin token ``AdminToken`` puts on every
request).

- Path parameters ``name``/``model``/``number`` get examples (``echo``, version 1), so
  the examples phase reaches a real service's routes, not only 404s.
- ``error_shape``: a check that every 4xx is a JSON error in its path's shape with a code,
  a message and a fix (tests/reliability/errors.py); ``not_a_server_error`` catches 5xx.
- The GitOps long poll (``GET /api/v1/gitops/wait``) waits ``timeout`` seconds (5 when
  not sent, up to 30): capped at 0.2 s here, so the run spends its time on inputs.
- The fuzzer must not take away its own credential: it learns key ids and user names from
  the answers and would revoke the admin token's key (``DELETE /api/v1/keys/{id}``,
  ``POST /api/v1/auth/logout``) or delete the admin user, after which every request is a
  401 and nothing more is tested. Those calls go to a key that does not exist, or a fresh
  throwaway token, instead.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis

from tests.reliability.errors import problem

#: package uploads and batch archives: bytes, as for application/octet-stream
schemathesis.serializer.alias("application/zip", "application/octet-stream")

URL = os.environ.get("FUZZ_URL", "")
TOKEN = os.environ.get("FUZZ_TOKEN", "")
WAIT_CAP_S = 0.2


def _whoami() -> dict[str, Any]:
    if not URL:
        return {}
    r = httpx.get(f"{URL}/api/v1/auth/whoami", headers={"Authorization": f"Bearer {TOKEN}"},
                  timeout=30)
    r.raise_for_status()
    return r.json()


ADMIN = _whoami()


#: a member whose login tokens the fuzzer's logouts end (logout takes only those)
LOGOUT_USER = {"username": "fuzz-logout", "password": "fuzz-logout-password"}


def _member() -> None:
    if URL:
        httpx.post(f"{URL}/api/v1/users", json={**LOGOUT_USER, "role": "member"},
                   headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)  # 409: there


_member()


def _throwaway_token() -> str:
    """A fresh login token of LOGOUT_USER, for a logout to end; when the fuzzer has changed
    that password (or logins are rate limited) a fresh read-only key's, which logout
    refuses (403) but which nothing else uses either."""
    r = httpx.post(f"{URL}/api/v1/auth/token", json=LOGOUT_USER, timeout=30)
    if r.status_code == 200:
        return str(r.json()["token"])
    r = httpx.post(f"{URL}/api/v1/keys", json={"name": "fuzz-logout", "scopes": ["read"]},
                   headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    r.raise_for_status()
    return str(r.json()["token"])


#: examples for path parameters, so the examples phase calls a real service and model
EXAMPLES = {"name": "echo", "model": "echo", "number": 1}


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    """Path parameters named in EXAMPLES get an example (the test's document only)."""
    for item in raw_schema.get("paths", {}).values():
        for op in [item, *(v for v in item.values() if isinstance(v, dict))]:
            for param in op.get("parameters", []):
                if param.get("in") == "path" and param.get("name") in EXAMPLES:
                    param["example"] = EXAMPLES[param["name"]]


@schemathesis.auth()
class AdminToken:
    """Every request carries the admin token (set on the case, so ``before_call`` can
    change it)."""

    def get(self, case: Any, ctx: Any) -> str:
        return TOKEN

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    op = (case.operation.method.upper(), case.operation.path)
    if op == ("GET", "/api/v1/gitops/wait"):
        query = dict(case.query or {})
        try:
            too_long = not float(query.get("timeout", 5)) <= WAIT_CAP_S
        except (TypeError, ValueError):
            too_long = False  # not a number: the gateway's 422, at once
        if too_long:
            query["timeout"] = str(WAIT_CAP_S)
        case.query = query
    elif op == ("DELETE", "/api/v1/keys/{id}"):
        if str((case.path_parameters or {}).get("id")) == ADMIN.get("key_id"):
            case.path_parameters = {**case.path_parameters, "id": "fuzz-no-such-key"}
    elif op == ("DELETE", "/api/v1/users/{username}"):
        if str((case.path_parameters or {}).get("username")) == ADMIN.get("user"):
            case.path_parameters = {**case.path_parameters, "username": "fuzz-no-such-user"}
    elif op == ("POST", "/api/v1/auth/logout"):
        headers = dict(case.headers or {})
        headers["Authorization"] = f"Bearer {_throwaway_token()}"
        case.headers = headers


@schemathesis.check
def error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx is a JSON error in its path's shape, with a code, a message and a fix."""
    ctype = (response.headers.get("content-type") or [""])[0]  # lowercase keys, lists
    found = problem(case.formatted_path, response.status_code, ctype, response.content)
    if found is not None and response.status_code < 500:
        raise AssertionError(f"{case.method} {case.formatted_path}: {found}")
    return None
