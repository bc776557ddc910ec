"""The bad-input guarantee as one assertion (issue 18 §5): an answer to a bad request is a
4xx whose JSON body says what went wrong and how to fix it, never a 5xx.

There are three shapes, by the API the path belongs to:

- modelport's own routes: ``{"result": false, "error": {"code", "message", "fix", ...}}``
  (rest/errors.py);
- the Open Inference Protocol and KServe v1 (``/v2``, ``/v2/...``, ``/v1/models/...``):
  ``{"error": message, "code", "fix"}`` (rest/oip_routes.py), since their clients read the
  string under ``error``;
- ModelArts' URL (``/v1/infers/...``): ``{"error_code", "error_msg"}`` whose message ends
  in the fix, ``"... (fix)"`` (rest/modelarts_infer.py), the only field those clients show.
"""

from __future__ import annotations

import json
from typing import Any


def shape_of(path: str) -> str:
    """``modelport`` | ``oip`` | ``modelarts``: the error shape ``path`` answers in."""
    if path.startswith("/v1/infers/") or path == "/v1/infers":
        return "modelarts"
    if path == "/v2" or path.startswith(("/v2/", "/v1/models/")):
        return "oip"
    return "modelport"


def problem(path: str, status: int, content_type: str, body: bytes) -> str | None:
    """Why this answer to a request for ``path`` breaks the guarantee, or None when it
    keeps it (a 2xx/3xx, or a 4xx in the path's error shape with a code and a fix)."""
    if status >= 500:
        return f"a {status}: {body[:300]!r}"
    if status < 400:
        return None
    if not content_type.split(";")[0].strip() == "application/json":
        return f"a {status} as {content_type or 'no Content-Type'}: {body[:200]!r}"
    try:
        doc = json.loads(body)
    except ValueError:
        return f"a {status} whose body is not JSON: {body[:200]!r}"
    if not isinstance(doc, dict):
        return f"a {status} whose body is not an object: {doc!r:.200}"
    shape = shape_of(path)
    if shape == "modelport":
        err: Any = doc.get("error")
        if doc.get("result") is not False or not isinstance(err, dict):
            return f"a {status} not in modelport's error shape: {doc!r:.300}"
        fields = err
    elif shape == "oip":
        if not isinstance(doc.get("error"), str):
            return f"a {status} not in the OIP error shape: {doc!r:.300}"
        fields = {"message": doc["error"], "code": doc.get("code"), "fix": doc.get("fix")}
    else:
        msg = doc.get("error_msg")
        if not isinstance(msg, str) or not isinstance(doc.get("error_code"), str):
            return f"a {status} not in ModelArts' error shape: {doc!r:.300}"
        if not (msg.endswith(")") and " (" in msg):
            return f"a {status} whose error_msg carries no (fix): {msg!r:.300}"
        fields = {"message": msg, "code": doc["error_code"], "fix": msg}
    missing = [k for k in ("code", "message", "fix")
               if not isinstance(fields.get(k), str) or not fields[k].strip()]
    if missing:
        return f"a {status} without {', '.join(missing)}: {doc!r:.300}"
    return None


def error_code(body: bytes) -> str:
    """The error's code, whichever shape carries it."""
    doc = json.loads(body)
    err = doc.get("error")
    if isinstance(err, dict):
        return str(err.get("code", ""))
    return str(doc.get("code") or doc.get("error_code") or "")


def assert_bad_input(path: str, status: int, content_type: str, body: bytes,
                     what: str = "") -> None:
    """A 4xx in ``path``'s error shape (``what`` names the input in the failure)."""
    assert 400 <= status < 500, f"{what or path}: a {status}, not a 4xx: {body[:400]!r}"
    found = problem(path, status, content_type, body)
    assert found is None, f"{what or path}: {found}"


def assert_response(resp: Any, what: str = "") -> None:
    """``assert_bad_input`` for an httpx response."""
    assert_bad_input(resp.request.url.path, resp.status_code,
                     resp.headers.get("content-type", ""), resp.content, what)
