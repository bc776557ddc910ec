"""Raw malformed HTTP (issue 18 §5): a few hundred requests a client library would never
send, over httpx and a bare socket, to a real platform serving ``echo`` and ``oip-sum``.
Each gets a 4xx JSON error in its path's shape with a code, a message and a fix
(tests/reliability/errors.py), never a 5xx, a hang or a dropped connection.

Families: bad JSON bodies (truncated, lone surrogates, non-UTF-8, NaN, 1e400, 5,000-digit
and 100,000-deep) on every JSON route; wrong content types; broken multipart; fake gzip
and a gzip bomb; path tricks (``..``, ``%2e%2e``, ``//``, NUL, ``%ff``, non-ASCII digits,
20-digit versions); bad ``Inference-Header-Content-Length``, ``X-Model-Version``,
``Idempotency-Key`` and ``Authorization`` headers, and oversized ones; service specs that
are not ModelService documents (a YAML alias bomb, lone surrogates in env/annotations,
GPU counts and versions beyond int32, NaN timeouts); batch inputs whose items.jsonl is
not UTF-8, nests 100,000 deep or names a lone surrogate.

One exception, by design: what uvicorn's HTTP parser (httptools) itself refuses, a
request line or header that is not HTTP/1.1 (a bare LF, a space in the path, NUL or a
control byte in a header, a bad chunk size, both Content-Length and Transfer-Encoding),
never reaches the gateway's code; uvicorn answers it with its own plain-text
``400 Bad Request`` and closes the connection. The raw-socket cases accept exactly that.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import socket
import zipfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import AUTH_HEADERS, RunningPlatform
from tests.reliability.errors import assert_bad_input, assert_response

JSON = {"Content-Type": "application/json"}
TIMEOUT = 60

# ------------------------------------------------------------------ bodies and routes

BAD_JSON = {
    "truncated": b'{"text": "a',
    "not_json": b"not json at all",
    "lone_surrogate": b'{"text": "\\ud800"}',
    "lone_low_surrogate": b'{"text": "a\\udfffb"}',
    "surrogate_key": b'{"\\ud800": 1}',
    "not_utf8": b'{"text": "\xff\xfe"}',
    "utf16": '{"text": "x"}'.encode("utf-16"),
    "nan": b'{"text": NaN}',
    "infinity": b'{"x": [[Infinity]]}',
    "huge_float": b'{"x": [[1e400]]}',
    "huge_int": b'{"x": [[' + b"9" * 5000 + b"]]}",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "deep_object": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    "empty": b"",
    "null": b"null",
    "array": b"[1, 2]",
    "string": b'"text"',
    "trailing_comma": b'{"text": "a",}',
    "bom": b'\xef\xbb\xbf{"text": "a"}',
    "nul": b'{"text": "a\x00"}',
}
#: (method, path) of every route that reads a JSON body; none of them is sent a valid one
JSON_ROUTES = [
    ("POST", "/v1/services/echo/infer"),
    ("POST", "/v1/services/oip-sum/infer"),
    ("POST", "/v2/models/echo/infer"),
    ("POST", "/v2/models/oip-sum/infer"),
    ("POST", "/v2/models/oip-sum/versions/1/infer"),
    ("POST", "/v1/models/echo:predict"),
    ("POST", "/v1/infers/echo"),
    ("POST", "/v1/services/echo/tasks"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/keys"),
    ("POST", "/api/v1/users"),
    ("PUT", "/api/v1/users/nobody-here/password"),
    ("PUT", "/api/v1/services/echo/traffic"),
    ("POST", "/api/v1/gitops/reports"),
    ("POST", "/api/v1/gitops/webhook"),
    ("POST", "/api/v1/gitops/apply"),
    ("POST", "/api/v1/services"),
]
#: the bodies that are valid JSON and would mean something to these routes stay out
_MEANINGFUL = {("POST", "/api/v1/gitops/webhook"): {"empty"},  # an empty push: a 404
               ("POST", "/api/v1/services"): set()}


def json_cases() -> Iterator[Any]:
    for method, path in JSON_ROUTES:
        for name, body in BAD_JSON.items():
            if name in _MEANINGFUL.get((method, path), set()):
                continue
            yield pytest.param(method, path, body, id=f"{method} {path} {name}")


def _send(plat: RunningPlatform, method: str, path: str, body: bytes = b"",
          headers: dict[str, str] | None = None, auth: bool = True) -> httpx.Response:
    """One request through httpx; header values go as their UTF-8 bytes, unchecked."""
    sent = {k: v.encode() for k, v in {**(AUTH_HEADERS if auth else {}),
                                       **(headers or {})}.items()}
    return httpx.request(method, f"{plat.url}{path}", content=body, headers=sent,
                         timeout=TIMEOUT)


@pytest.mark.parametrize(("method", "path", "body"), list(json_cases()))
def test_bad_json_bodies(bad_input: RunningPlatform, method: str, path: str,
                         body: bytes) -> None:
    assert_response(_send(bad_input, method, path, body, JSON))


#: valid JSON whose fields have the wrong type or range, per route
BAD_FIELDS = [
    ("POST", "/api/v1/keys", {"scopes": ["read"], "ttl_s": "abc"}),
    ("POST", "/api/v1/keys", {"scopes": ["read"], "ttl_s": [1]}),
    ("POST", "/api/v1/keys", {"scopes": ["read"], "ttl_s": "nan"}),
    ("POST", "/api/v1/keys", {"scopes": ["read"], "rate_limit": {"a": 1}}),
    ("POST", "/api/v1/keys", {"scopes": ["read"], "rate_limit": "inf"}),
    ("POST", "/api/v1/keys", {"scopes": "read"}),
    ("POST", "/api/v1/keys", {"scopes": [1, 2]}),
    ("POST", "/api/v1/keys", {"scopes": ["read"], "user": "nobody-here"}),
    ("POST", "/api/v1/auth/token", {"username": "x", "password": "y", "ttl_s": [None]}),
    ("POST", "/api/v1/auth/token", {"username": "x", "password": "y", "ttl_s": -5}),
    ("POST", "/api/v1/users", {"username": ["a"], "password": {"b": 1}}),
    ("POST", "/api/v1/users", {"username": "ok-name", "password": "short"}),
    ("PUT", "/api/v1/services/echo/traffic", {"traffic": "all"}),
    ("PUT", "/api/v1/services/echo/traffic", {"traffic": [{"version": "x", "percent": 100}]}),
    ("PUT", "/api/v1/services/echo/traffic", {"traffic": [{"version": 2**40, "percent": 100}]}),
    ("PUT", "/api/v1/services/echo/traffic", {"traffic": [{"version": 1, "percent": 50}]}),
    ("PUT", "/api/v1/services/echo/traffic", {"traffic": [1]}),
    ("POST", "/api/v1/gitops/reports", {"source": "a string"}),
    ("POST", "/api/v1/gitops/reports", {"source": {"id": "x", "sync_requests": "abc"}}),
    ("POST", "/api/v1/gitops/reports", {"source": {"id": "x", "history": {"a": 1}}}),
    ("POST", "/api/v1/gitops/reports", {"source": {"id": "x"}, "sync": {"ts": "yesterday"}}),
    ("POST", "/api/v1/gitops/reports", {"source": {"id": "x"}, "services": [1]}),
    ("POST", "/api/v1/gitops/reports", {"source": {"id": "x", "sync_requests": 2**70}}),
    ("POST", "/api/v1/gitops/reports", {"source": {"id": ""}}),
    ("POST", "/api/v1/gitops/reports", {"nope": 1}),
    ("POST", "/api/v1/gitops/apply", {"source": {"id": "x"}, "commit": "c",
                                      "services": [{"name": "a", "spec": {"replicas": "x"}}]}),
    ("POST", "/api/v1/gitops/apply", {"source": {"id": "x"}, "commit": 5, "services": "a"}),
    ("POST", "/api/v1/gitops/apply", {"source": {"id": "x"}, "commit": "c",
                                      "services": [{"spec": {}}]}),
    ("POST", "/api/v1/gitops/apply", {"source": {"id": "x"}, "commit": "c", "prune": "all"}),
    ("POST", "/v2/models/oip-sum/infer", {"inputs": [{"name": "x", "datatype": "FP32",
                                                      "shape": [2**40, 2**40], "data": [1]}]}),
    ("POST", "/v2/models/oip-sum/infer", {"inputs": [{"name": "x", "datatype": "FP32",
                                                      "shape": [-1], "data": [1]}]}),
    ("POST", "/v2/models/oip-sum/infer", {"inputs": [{"name": "x", "datatype": "NOPE",
                                                      "shape": [1], "data": [1]}]}),
    ("POST", "/v2/models/oip-sum/infer", {"inputs": [{"name": "x", "datatype": "FP32",
                                                      "shape": [1, 1], "data": ["a"]}]}),
    ("POST", "/v2/models/oip-sum/infer", {"inputs": [{"name": "x", "datatype": "FP32",
                                                      "shape": [1, 1], "data": [1],
                                                      "parameters": {"binary_data_size":
                                                                     -1}}]}),
    ("POST", "/v2/models/oip-sum/infer", {"inputs": [], "outputs": "all"}),
    ("POST", "/v1/models/oip-sum:predict", {"instances": [[["a"]]]}),
    ("POST", "/v1/models/echo:predict", {"instances": [{"text": 1}]}),
    ("POST", "/v1/services/oip-sum/infer", {"x": "not a tensor"}),
    ("POST", "/v1/services/echo/infer", {"text": ["a"]}),
    ("POST", "/v1/services/echo/infer", {"text": "a", "extra": 1}),
]


@pytest.mark.parametrize(("method", "path", "doc"), BAD_FIELDS,
                         ids=[f"{m} {p} {i}" for i, (m, p, _) in enumerate(BAD_FIELDS)])
def test_wrong_field_types_and_ranges(bad_input: RunningPlatform, method: str, path: str,
                                      doc: Any) -> None:
    assert_response(_send(bad_input, method, path, json.dumps(doc).encode(), JSON))


WEBHOOKS = [{"push": {"changes": [1]}}, {"push": {"changes": "x"}},
            {"push": {"changes": [{"new": "x"}]}}, {"push": {}, "repository": "str"},
            {"push": {}, "repository": {"links": []}},
            {"push": {"changes": [{"new": {"type": "branch", "name": 5}}]}},
            {"push": {"changes": [{"new": {"type": "branch", "name": "main"}}]},
             "repository": {"links": {"html": "x"}}},
            {"ref": 5}, {"ref": "refs/heads/main", "repository": [1]},
            {"ref": "refs/heads/main", "project": "p"}, {"repo": ["a"], "branch": {"x": 1}},
            {"ref": "refs/tags/v1"}]


@pytest.mark.parametrize("payload", WEBHOOKS, ids=[str(i) for i in range(len(WEBHOOKS))])
def test_webhook_payloads_of_the_wrong_shape(bad_input: RunningPlatform,
                                             payload: dict[str, Any]) -> None:
    """Read as a push that names no followed repository (404 gitops.no_source) or as no
    branch push at all (200, ignored); never indexed as if it had the right shape."""
    r = _send(bad_input, "POST", "/api/v1/gitops/webhook", json.dumps(payload).encode(),
              {**JSON, "X-GitHub-Event": "push"})
    if r.status_code == 200:
        assert r.json()["synced"] == [], r.text
        return
    assert_response(r, json.dumps(payload))


# ------------------------------------------------------------------ content types, multipart


CONTENT_TYPES = {
    "xml": ("text/xml", b"<text>a</text>"),
    "form_urlencoded_json": ("application/x-www-form-urlencoded", b'{"text": "a"}'),
    "multipart_no_boundary": ("multipart/form-data", b"--x\r\n\r\n"),
    "multipart_empty_boundary": ("multipart/form-data; boundary=", b"--\r\n"),
    "image": ("image/png", b"\x89PNG\r\n\x1a\n"),
    "latin1_json": ("application/json; charset=latin-1", '{"text": "é"}'.encode("latin-1")),
    "wildcard": ("*/*", b"{}"),
    "garbage_type": ("no such type at all", b"{}"),
    "text_for_tensor": ("text/plain", b"1,2,3"),
    "octet_for_tensor": ("application/octet-stream", b"\x00\x01"),
}
CT_ROUTES = [("POST", "/v1/services/oip-sum/infer"), ("POST", "/v1/infers/oip-sum"),
             ("POST", "/api/v1/services"), ("PUT", "/api/v1/services/echo/package"),
             ("POST", "/v1/services/oip-sum/tasks"), ("POST", "/api/v1/gitops/packages")]


@pytest.mark.parametrize(("method", "path"), CT_ROUTES, ids=[f"{m} {p}" for m, p in CT_ROUTES])
@pytest.mark.parametrize("kind", sorted(CONTENT_TYPES))
def test_wrong_content_types(bad_input: RunningPlatform, method: str, path: str,
                             kind: str) -> None:
    ctype, body = CONTENT_TYPES[kind]
    assert_response(_send(bad_input, method, path, body, {"Content-Type": ctype}), kind)


def _multipart(*parts: bytes, boundary: bytes = b"b0undary", close: bool = True) -> bytes:
    out = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    return out + (b"--" + boundary + b"--\r\n" if close else b"")


MULTIPART = {
    "truncated": _multipart(b'Content-Disposition: form-data; name="text"\r\n\r\nab',
                            close=False)[:-10],
    "boundary_mismatch": _multipart(b'Content-Disposition: form-data; name="text"\r\n\r\na',
                                    boundary=b"other"),
    "no_disposition": _multipart(b"Content-Type: text/plain\r\n\r\na"),
    "no_name": _multipart(b"Content-Disposition: form-data\r\n\r\na"),
    "header_without_colon": _multipart(b"Content-Disposition form-data\r\n\r\na"),
    "package_as_text": _multipart(b'Content-Disposition: form-data; name="package"\r\n\r\nzip'),
    "package_not_a_zip": _multipart(b'Content-Disposition: form-data; name="package"; '
                                    b'filename="m.zip"\r\n\r\nnot a zip'),
    "two_packages": _multipart(*[b'Content-Disposition: form-data; name="package"; '
                                 b'filename="m.zip"\r\n\r\nPK\x05\x06' + b"\0" * 18] * 2),
    "non_utf8_name": _multipart(b'Content-Disposition: form-data; name="\xff\xfe"\r\n\r\na'),
    "non_utf8_value": _multipart(b'Content-Disposition: form-data; name="text"\r\n\r\n\xff'),
    "spec_not_yaml": _multipart(b'Content-Disposition: form-data; name="spec"\r\n\r\n{[:'),
    "huge_part_header": _multipart(b"X-Pad: " + b"a" * 20_000 + b"\r\nContent-Disposition: "
                                   b'form-data; name="text"\r\n\r\na'),
    "nested_multipart": _multipart(b'Content-Disposition: form-data; name="text"\r\n'
                                   b"Content-Type: multipart/mixed; boundary=in\r\n\r\n"
                                   b"--in\r\n\r\nx\r\n--in--"),
    "filename_star": _multipart(b"Content-Disposition: form-data; name=\"package\"; "
                                b"filename*=UTF-8''%FF%FE.zip\r\n\r\nPK"),
    "only_closing": b"--b0undary--\r\n",
    "empty": b"",
}
MP_ROUTES = [("POST", "/v1/services/echo/infer"), ("POST", "/v1/services/oip-sum/infer"),
             ("POST", "/api/v1/services"), ("PUT", "/api/v1/services/multipart-fuzz"),
             ("POST", "/v1/infers/echo")]


@pytest.mark.parametrize(("method", "path"), MP_ROUTES, ids=[f"{m} {p}" for m, p in MP_ROUTES])
@pytest.mark.parametrize("kind", sorted(MULTIPART))
def test_broken_multipart(bad_input: RunningPlatform, method: str, path: str,
                          kind: str) -> None:
    r = _send(bad_input, method, path, MULTIPART[kind],
              {"Content-Type": "multipart/form-data; boundary=b0undary"})
    if r.status_code == 200 and path in ("/v1/services/echo/infer", "/v1/infers/echo"):
        # a part that is valid multipart after all (a stray header, a nested part as the
        # text, bytes read as Latin-1): the model answered, as it should
        assert "echo" in r.text, r.text
        return
    assert_response(r, kind)


# ------------------------------------------------------------------ compression


def test_fake_gzip_and_a_gzip_bomb(bad_input: RunningPlatform) -> None:
    path = "/v2/models/oip-sum/infer"
    bomb = gzip.compress(b"\0" * (20 << 20), 9)  # 20 MiB out of ~20 KiB: over max_body
    assert len(bomb) < 100_000
    for what, encoding, body in (
            ("not gzip", "gzip", b'{"inputs": []}'),
            ("cut gzip", "gzip", gzip.compress(b'{"inputs": []}')[:-8]),
            ("not deflate", "deflate", b"\x78\x9c garbage"),
            ("unknown coding", "br", b"\x00"),
            ("two codings", "gzip, gzip", gzip.compress(gzip.compress(b"{}"))),
            ("bomb", "gzip", bomb),
            ("gzip of garbage json", "gzip", gzip.compress(b'{"inputs": [nope')),
    ):
        r = _send(bad_input, "POST", path, body, {**JSON, "Content-Encoding": encoding})
        assert_response(r, what)
        if what == "bomb":
            assert r.status_code == 413, r.text
    # elsewhere a Content-Encoding is no reason to fail differently
    assert_response(_send(bad_input, "POST", "/v1/services/echo/infer", bomb,
                          {**JSON, "Content-Encoding": "gzip"}), "bomb at /infer")


# ------------------------------------------------------------------ paths (raw, unnormalised)


PATHS = [
    "/v1/services/../api/v1/services", "/v1/services/%2e%2e/infer",
    "/v1/services/%2e%2e%2fapi/infer", "/v1/services/echo%2finfer", "//v1/services/echo/infer",
    "/v1/services//infer", "/v1/services/echo/infer%00", "/v1/services/%00/infer",
    "/v1/services/%ff/infer", "/v1/services/%c0%ae%c0%ae/infer", "/v2/models/%ff",
    "/v2/models/echo/versions/%C2%B2/ready", "/v2/models/echo/versions/%D9%A1/infer",
    "/v2/models/echo/versions/99999999999999999999/infer",
    "/v2/models/echo/versions/-1/ready", "/v2/models/echo/versions/0/ready",
    "/v2/models/echo/versions/1.5", "/v2/models/echo/versions/%20/ready",
    "/api/v1/models/echo/versions/99999999999999999999/build-log",
    "/api/v1/models/echo/versions/99999999999999999999/events",
    "/api/v1/models/echo/versions/0/events", "/api/v1/models/echo/versions/%C2%B2/build-log",
    "/api/v1/services/echo/events?limit=99999999999999999999",
    "/api/v1/services/echo/events?version=%C2%B2",
    "/api/v1/services/echo/logs?tail=99999999999999999999",
    "/api/v1/services/echo/logs?tail=%C2%B2",
    "/api/v1/services/echo/logs?since=2026-01-01T00:00:00.%C2%B2%C2%B2%C2%B2Z",
    "/api/v1/services/echo/logs?since=%C2%B2m", "/api/v1/services/echo/logs?kind=%00",
    "/api/v1/services/echo/stats?series=99999999999999999999",
    "/api/v1/audit?limit=99999999999999999999", "/api/v1/audit?before_id=%C2%B2",
    "/api/v1/audit?since=nan", "/api/v1/batches?limit=-99999999999999999999",
    "/v1/services/echo/tasks?limit=99999999999999999999",
    "/api/v1/gitops/wait?after=99999999999999999999&timeout=0.1",
    "/api/v1/gitops/wait?timeout=nan", "/api/v1/gitops/wait?timeout=-inf",
    "/console/assets/../../../etc/passwd", "/console/assets/%2e%2e/%2e%2e/etc/passwd",
    "/console/assets/%00", "/console/assets/" + "a" * 5000, "/v1/tasks/%00", "/v1/tasks/..",
    "/api/v1/batches/..%2f..%2f", "/api/v1/keys/%00", "/v1/services/echo/" + "x/" * 2000,
    "/" + "a" * 7000, "/api/v1/services/" + "%ff" * 100, "/v2/models/" + "n" * 3000,
    "/api/v1/services/echo/%2e%2e/%2e%2e/gitops",
]


@pytest.mark.parametrize("path", PATHS)
def test_path_tricks(bad_input: RunningPlatform, path: str) -> None:
    status, headers, body = raw_request(bad_input, f"GET {path} HTTP/1.1\r\n".encode()
                                        + _auth_lines() + b"Host: x\r\n")
    assert_bad_input(urlsplit(path).path, status, headers.get("content-type", ""), body,
                     path)


# ------------------------------------------------------------------ headers


def test_bad_oip_header_length(bad_input: RunningPlatform) -> None:
    body = b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [1]}]}'
    for value in ("abc", "-1", "\u00b2", "99999999999999999999",
                  "", "+5", "1e3", "0x10", str(len(body) + 1), "0"):
        r = _send(bad_input, "POST", "/v2/models/oip-sum/infer", body,
                  {**JSON, "Inference-Header-Content-Length": value})
        assert_response(r, f"Inference-Header-Content-Length {value!r}")


@pytest.mark.parametrize("path", ["/v1/services/echo/infer", "/v1/infers/echo",
                                  "/v1/services/echo/anything", "/v2/models/echo/infer"])
def test_bad_model_version_header(bad_input: RunningPlatform, path: str) -> None:
    body = b'{"text": "a"}' if "/v2/" not in path else (
        b'{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}')
    for value in ("abc", "\u00b2", "\u0661", "0", "-1", "99999999999999999999", "v", "1.5",
                  "2147483648", "1 2"):
        r = _send(bad_input, "POST", path, body, {**JSON, "X-Model-Version": value})
        if r.status_code == 200 and "/v2/" in path:
            continue  # OIP names versions in the path; this header means nothing there
        assert_response(r, f"{path} X-Model-Version {value!r}")


def test_bad_idempotency_keys(bad_input: RunningPlatform) -> None:
    for value in ("x" * 300, "a b", "\u00e9", "a\tb", "\x7f", "key\u00ff"):
        for path, extra in (("/v1/services/echo/tasks", {}),
                            ("/v1/services/echo/infer", {"Prefer": "respond-async"})):
            r = _send(bad_input, "POST", path, b'{"text": "a"}',
                      {**JSON, **extra, "Idempotency-Key": value})
            _accept_parser_400_or_shape(path, r.status_code, r.headers.get(
                "content-type", ""), r.content, f"{path} Idempotency-Key {value!r}")  # DEL


AUTHORIZATION = ["Bearer", "Bearer ", "Bearer x", "Bearer mp_x.y", "Basic !!!",
                 "Basic " + base64.b64encode(b"a:b").decode(), "Bearer " + "x" * 8000,
                 "SDK-HMAC-SHA256 garbage", "SDK-HMAC-SHA256 Access=a, SignedHeaders=, "
                 "Signature=zz", "Token \u00e9", "Bearer \u00ff\u00fe", ",,,,", "Bearer a,Bearer b"]


@pytest.mark.parametrize("path", ["/api/v1/services", "/api/v1/keys", "/api/v1/auth/whoami",
                                  "/api/v1/platform/components"])
def test_bad_authorization(bad_input: RunningPlatform, path: str) -> None:
    for value in AUTHORIZATION:  # raw: httpx would refuse "Bearer " and non-ASCII
        status, headers, body = raw_request(
            bad_input, f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode()
            + b"Authorization: " + value.encode() + b"\r\n")
        assert_bad_input(path, status, headers.get("content-type", ""), body,
                         f"{path} Authorization {value[:30]!r}")
        assert status == 401, (value[:30], status, body[:200])


def test_bad_cookies_and_request_ids(bad_input: RunningPlatform) -> None:
    for headers in ({"Cookie": "mp_session=\x01\x02"}, {"Cookie": "mp_session=garbage"},
                    {"Cookie": "=" * 500}, {"Cookie": "a=\"unterminated"},
                    {"X-CSRF-Token": "x", "Cookie": "mp_session=x; mp_csrf=x"}):
        r = _send(bad_input, "POST", "/api/v1/keys", b"{}", {**JSON, **headers}, auth=False)
        _accept_parser_400_or_shape("/api/v1/keys", r.status_code,
                                    r.headers.get("content-type", ""), r.content, str(headers))
    for rid in ("x" * 5000, "\u00ff", "a\tb", ""):
        r = _send(bad_input, "POST", "/v1/services/echo/infer", b"{", {**JSON,
                  "X-Request-ID": rid})
        assert_response(r, f"X-Request-ID {rid[:20]!r}")


def test_oversized_headers(bad_input: RunningPlatform) -> None:
    """Huge or countless headers: refused (uvicorn's plain 400 when its parser refuses,
    else the gateway's 4xx), the gateway still answering afterwards."""
    for lines in ([b"X-Big: " + b"a" * 200_000], [b"X-H%d: v" % i for i in range(5000)],
                  [b"Content-Type: application/json; " + b"p=1; " * 20_000]):
        status, headers, body = raw_request(
            bad_input, b"POST /v1/services/echo/infer HTTP/1.1\r\nHost: x\r\n"
            + b"\r\n".join(lines) + b"\r\nContent-Length: 2\r\n" + _auth_lines(), b"{}")
        _accept_parser_400_or_shape("/v1/services/echo/infer", status, headers, body)
    assert _send(bad_input, "POST", "/v1/services/echo/infer", b'{"text": "a"}',
                 JSON).status_code == 200


# ------------------------------------------------------------------ raw HTTP


#: (request line and headers, body): raw_request adds "Connection: close" and the blank line
RAW = {
    "bare_lf": (b"GET /health HTTP/1.1\nHost: x\n", b""),
    "space_in_path": (b"GET /v1/services/e cho/infer HTTP/1.1\r\nHost: x\r\n", b""),
    "nul_in_header": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n", b""),
    "control_in_header": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n", b""),
    "no_colon": (b"GET /health HTTP/1.1\r\nHost: x\r\nBroken header\r\n", b""),
    "bad_version": (b"GET /health HTTP/9.9\r\nHost: x\r\n", b""),
    "bad_chunk": (b"POST /v1/services/echo/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                  b"chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"),
    "cl_and_te": (b"POST /v1/services/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2"
                  b"\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    "negative_cl": (b"POST /v1/services/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Length: -1"
                    b"\r\n", b""),
    "cl_superscript": ("POST /v1/services/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Length: "
                       "\u00b2\r\n".encode(), b""),
    "two_cl": (b"POST /v1/services/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
               b"Content-Length: 3\r\n", b"{}"),
    "huge_cl": (b"POST /v1/services/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Type: "
                b"application/json\r\nContent-Length: 99999999999999999999\r\n", b"{}"),
    "big_cl": (b"POST /v1/services/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Type: "
               b"application/json\r\nContent-Length: 999999999999\r\n", b"{}"),
    "method_garbage": (b"G\x00T /health HTTP/1.1\r\nHost: x\r\n", b""),
    "unknown_method": (b"BREW /v1/services/echo/infer HTTP/1.1\r\nHost: x\r\n", b""),
    "absolute_uri": (b"GET http://evil.example/v1/services/echo/infer HTTP/1.1\r\nHost: x"
                     b"\r\n", b""),
    "asterisk": (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n", b""),
    "non_ascii_path": ("GET /v1/services/\u00e9cho/infer HTTP/1.1\r\nHost: x\r\n".encode(),
                       b""),
    "chunked_lone_surrogate": (b"POST /v1/services/echo/infer HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Type: application/json\r\nTransfer-Encoding: "
                               b"chunked\r\n", b'5\r\n{"tex\r\nb\r\nt": "\\ud800"\r\n'
                               b"1\r\n}\r\n0\r\n\r\n"),
    "no_host": (b"GET /v1/services/echo/infer HTTP/1.1\r\n", b""),
    "http10": (b"POST /v1/services/echo/infer HTTP/1.0\r\nContent-Type: application/json\r\n"
               b"Content-Length: 1\r\n", b"{"),
}


@pytest.mark.parametrize("kind", sorted(RAW))
def test_raw_malformed_requests(bad_input: RunningPlatform, kind: str) -> None:
    head, body = RAW[kind]
    status, headers, answer = raw_request(bad_input, head, body)
    target = head.split(b" ")[1].decode("latin-1") if head.count(b" ") >= 2 else "/"
    _accept_parser_400_or_shape(urlsplit(target).path or "/", status, headers, answer, kind)


def _accept_parser_400_or_shape(path: str, status: int, headers: dict[str, str] | str,
                                body: bytes, what: str = "") -> None:
    ctype = headers if isinstance(headers, str) else headers.get("content-type", "")
    if status == 400 and not ctype.startswith("application/json"):
        # uvicorn's own answer to what httptools refuses (see the module docstring)
        assert b"Invalid HTTP request" in body or body in (b"", b"Bad Request"), (what, body)
        return
    assert_bad_input(path, status, ctype, body, what)


# ------------------------------------------------------------------ service specs


SPECS = {
    "alias_bomb": "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                  "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                  "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                  "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                  "spec: {env: {A: *h}}\n",
    "surrogate_env": '{"model": {"name": "echo"}, "env": {"A": "\\ud800"}}',
    "surrogate_env_name": '{"model": {"name": "echo"}, "env": {"\\udc00": "v"}}',
    "surrogate_annotation": '{"metadata": {"name": "spec-fuzz", "annotations": '
                            '{"a": "\\udfff"}}, "spec": {"model": {"name": "echo"}}}',
    "gpu_beyond_int32": '{"model": {"name": "echo"}, "resources": {"gpu": 1099511627776}}',
    "version_beyond_int32": '{"model": {"name": "echo", "version": 1099511627776}}',
    "traffic_beyond_int32": '{"model": {"name": "echo"}, "traffic": [{"version": '
                            '1099511627776, "percent": 100}]}',
    "burst_beyond_int32": '{"model": {"name": "echo"}, "rate_limit": {"burst": 9999999999}}',
    "nan_timeout": "model: {name: echo}\ntimeout_s: .nan\n",
    "inf_timeout": "model: {name: echo}\ntimeout_s: .inf\n",
    "huge_float": '{"model": {"name": "echo"}, "deploy_timeout_s": 1e400}',
    "memory_arabic_digits": '{"model": {"name": "echo"}, "resources": {"memory": "\u0661Gi"}}',
    "memory_beyond_double": '{"model": {"name": "echo"}, "resources": {"memory": "'
                            + "9" * 400 + 'Gi"}}',
    "not_a_mapping": "- a\n- b\n",
    "python_tag": "!!python/object/apply:os.system ['true']\n",
    "deep": "[" * 100_000 + "]" * 100_000,
    "tabs": "model:\n\tname: echo\n",
    "wrong_types": '{"model": "echo", "replicas": "many", "env": [1]}',
    "unknown_keys": '{"model": {"name": "echo"}, "replicaz": 1}',
    "bad_name": '{"metadata": {"name": "NOT A DNS NAME"}, "spec": {"model": {"name": "echo"}}}',
    "huge_int": '{"model": {"name": "echo"}, "replicas": ' + "9" * 5000 + "}",
}


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_bad_service_specs(bad_input: RunningPlatform, kind: str) -> None:
    spec = SPECS[kind]
    for method, path in (("PUT", "/api/v1/services/spec-fuzz"), ("POST", "/api/v1/services")):
        r = httpx.request(method, f"{bad_input.url}{path}", headers=AUTH_HEADERS,
                          data={"spec": spec, "name": "spec-fuzz"}, files={"x": ("", b"")},
                          timeout=TIMEOUT)
        assert_response(r, f"{method} {kind}")
    r = _send(bad_input, "PUT", "/api/v1/services/spec-fuzz", spec.encode(), JSON)
    assert_response(r, f"json {kind}")
    r = _send(bad_input, "PUT", "/api/v1/services/spec-fuzz", b'{"model": "\xff"}', JSON)
    assert_response(r, "spec not UTF-8")
    assert httpx.get(f"{bad_input.url}/api/v1/services/spec-fuzz", headers=AUTH_HEADERS,
                     timeout=TIMEOUT).status_code == 404, "a refused spec created a service"


# ------------------------------------------------------------------ batch inputs


def _archive(items: bytes | None, **members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if items is not None:
            zf.writestr("items.jsonl", items)
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _corrupt_member() -> bytes:
    raw = bytearray(_archive(b'{"source": "a", "inputs": {"text": "a"}}\n' * 50))
    at = raw.find(b"items.jsonl") + len("items.jsonl") + 5  # into its deflated data
    raw[at:at + 8] = b"\xff" * 8
    return bytes(raw)


BATCHES = {
    "not_utf8": _archive(b'{"source": "a", "inputs": {"text": "\xff"}}\n'),
    "not_utf8_line_3": _archive(b'{"source": "a"}\n{"source": "b"}\n\xfe\xff\n'),
    "deep": _archive(b'{"source": "a", "inputs": {"text": ' + b"[" * 100_000
                     + b"]" * 100_000 + b"}}\n"),
    "surrogate_source": _archive(b'{"source": "\\ud800", "inputs": {"text": "a"}}\n'),
    "surrogate_input": _archive(b'{"source": "a", "inputs": {"\\udc00": "a"}}\n'),
    "nan_input": _archive(b'{"source": "a", "inputs": {"text": NaN}}\n'),
    "huge_int": _archive(b'{"source": "a", "inputs": {"text": ' + b"9" * 5000 + b"}}\n"),
    "not_json": _archive(b"{source: a}\n"),
    "not_an_object": _archive(b"[1, 2]\n"),
    "missing_member": _archive(b'{"source": "a", "files": {"image": {"member": "nope"}}}\n'),
    "no_items": _archive(None, other=b"x"),
    "empty_items": _archive(b"\n\n"),
    "corrupt_member": _corrupt_member(),
    "not_a_zip": b"this is no zip",
    "empty": b"",
    "zip_slip_member": _archive(b'{"source": "a", "files": {"f": {"member": "../x"}}}\n',
                                **{"../x": b"x"}),
}


@pytest.mark.parametrize("kind", sorted(BATCHES))
def test_bad_batch_inputs(bad_input: RunningPlatform, kind: str) -> None:
    r = _send(bad_input, "POST", "/api/v1/batches?service=echo", BATCHES[kind],
              {"Content-Type": "application/zip"})
    if r.status_code == 201:  # a zip-slip member name is only a name here (never a path)
        assert kind == "zip_slip_member", r.text
        job = r.json()["id"]
        assert _send(bad_input, "POST", f"/api/v1/batches/{job}/cancel").status_code in (
            200, 409)
        return
    assert_response(r, kind)
    if kind in ("not_utf8_line_3", "deep", "surrogate_source"):
        assert "line" in json.loads(r.content)["error"]["message"], r.text


def test_bad_batch_queries(bad_input: RunningPlatform) -> None:
    body = _archive(b'{"source": "a", "inputs": {"text": "a"}}\n')
    for query in ("service=", "service=echo&concurrency=99999999999999999999",
                  "service=echo&concurrency=%C2%B2", "service=echo&concurrency=-1",
                  "service=echo&input_kind=%ff", "service=%00", "service=no-such-service"):
        r = _send(bad_input, "POST", f"/api/v1/batches?{query}", body,
                  {"Content-Type": "application/zip"})
        assert_response(r, query)


# ------------------------------------------------------------------ after all of it


def test_the_platform_still_answers(bad_input: RunningPlatform) -> None:
    r = _send(bad_input, "POST", "/v1/services/echo/infer", b'{"text": "still"}', JSON)
    assert r.status_code == 200 and r.json()["data"]["echo"] == "still", r.text
    assert httpx.get(f"{bad_input.url}/api/v1/auth/whoami", headers=AUTH_HEADERS,
                     timeout=TIMEOUT).status_code == 200


# ------------------------------------------------------------------ a bare socket


def _auth_lines() -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in AUTH_HEADERS.items())


def raw_request(plat: RunningPlatform, head: bytes, body: bytes = b""
                ) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and header lines, each ending in a line break), then
    ``Connection: close``, the blank line and ``body``, as they are; the answer's status,
    headers (lowercase) and body. Fails on no answer, or none within TIMEOUT (a hang)."""
    url = urlsplit(plat.url)
    data = head + b"Connection: close\r\n\r\n" + body
    with socket.create_connection((url.hostname, url.port), timeout=TIMEOUT) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    assert raw, f"no answer at all to {data[:120]!r}"
    head_raw, _, rest = raw.partition(b"\r\n\r\n")
    lines = head_raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding") == "chunked":
        rest = _dechunk(rest)
    elif "content-length" in headers:
        rest = rest[:int(headers["content-length"])]
    return status, headers, rest


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out
