"""The gateway's raw ASGI infer route (services/gateway/rest/fast_infer.py) answers exactly
as the Starlette route it stands in front of.

Two real platforms: one with the fast path (the default), one with
``MODELPORT_GATEWAY_FAST_INFER=false``. Every request goes to both; status, headers and
envelopes must match (durations aside). Requests the fast path hands to the full app
(async tasks, SSE, other bodies) are compared too, so a wrong hand-off shows.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelport
from services.gateway.rest.fast_infer import plain_headers, takes
from tests.conftest import RunningPlatform, start_platform

PACKAGE = Path(__file__).parent / "packages" / "fastpath_echo"
MAX_BODY = 4096
#: headers whose values both gateways must agree on (present or absent alike; the
#: content length differs with the durations in the envelope: each must be right)
COMPARED_HEADERS = ("content-type", "x-model-version", "www-authenticate",
                    "retry-after", "x-trace-id", "traceresponse", "idempotent-replayed")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


class Gateway:
    """One platform, its admin token and the services the tests call."""

    def __init__(self, plat: RunningPlatform) -> None:
        self.plat = plat
        self.url = plat.url
        self.token = (plat.home / "admin.token").read_text().strip()

    def post(self, name: str, body: bytes | Iterator[bytes] = b'{"x": 1, "n": 0}',
             headers: dict[str, str] | None = None, auth: bool = True,
             path: str | None = None) -> httpx.Response:
        sent = {"Content-Type": "application/json"}
        if auth:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        sent = {k: v for k, v in sent.items() if v is not None}
        return httpx.post(self.url + (path or f"/v1/services/{name}/infer"), content=body,
                          headers=sent, timeout=60)


def deploy(gw: Gateway, name: str, **spec: Any) -> None:
    with modelport.Client(gw.url, token=gw.token) as c:
        c.apply(name, json.dumps(spec), PACKAGE, timeout=300)


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Gateway]]:
    env = {"MODELPORT_GATEWAY_MAX_BODY_BYTES": str(MAX_BODY)}
    fast_plat = start_platform(tmp_path_factory.mktemp("fast-home"), env=env)
    try:
        slow_plat = start_platform(tmp_path_factory.mktemp("slow-home"),
                                   env={**env, "MODELPORT_GATEWAY_FAST_INFER": "false"})
    except BaseException:
        fast_plat.stop()
        raise
    try:
        pair = Gateway(fast_plat), Gateway(slow_plat)
        for gw in pair:
            deploy(gw, "echo")
            deploy(gw, "guarded", auth={"required": True})
            deploy(gw, "limited", rate_limit={"rps": 0.05, "burst": 1})
        yield pair
    finally:
        fast_plat.stop()
        slow_plat.stop()


def shape(r: httpx.Response) -> dict[str, Any]:
    """What must be equal: status, the compared headers, the body with durations blanked.
    The request id must be the same in the header and the envelope."""
    out: dict[str, Any] = {"status": r.status_code,
                           "headers": {h: r.headers.get(h) for h in COMPARED_HEADERS}}
    rid = r.headers.get("x-request-id")
    assert rid, f"no X-Request-ID on {r.status_code} {r.text}"
    assert int(r.headers["content-length"]) == len(r.content)
    try:
        body = r.json()
    except ValueError:
        out["body"] = r.content
        return out
    meta = body.get("metadata") if isinstance(body, dict) else None
    if isinstance(meta, dict):
        assert meta.get("request_id", rid) == rid, (meta, rid)
        for volatile in ("duration", "worker_duration", "request_id"):
            if volatile in meta:
                meta[volatile] = type(meta[volatile]).__name__
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "retry_after_s" in error.get("details", {}):
        error["details"]["retry_after_s"] = "seconds"  # when the bucket refills: timing
    out["body"] = body
    return out


def same(gateways: tuple[Gateway, Gateway], name: str, **kw: Any
         ) -> tuple[httpx.Response, httpx.Response]:
    """The same request to both gateways; their answers must match."""
    fast, slow = (gw.post(name, **kw) for gw in gateways)
    assert shape(fast) == shape(slow)
    return fast, slow


# ------------------------------------------------------------------ which requests it takes


def scope(path: str = "/v1/services/echo/infer", method: str = "POST",
          **headers: str) -> dict[str, Any]:
    raw = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
           (b"authorization", b"Bearer mp_x.y")]
    raw += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": raw}


def test_it_takes_only_plain_json_posts_to_the_infer_route() -> None:
    assert takes(scope()) == "echo"
    assert plain_headers(scope()["headers"]) is not None
    for path in ("/v1/services/echo/infer/", "/v1/services//infer", "/v1/services/a/b/infer",
                 "/v1/services/echo/tasks", "/v1/models/echo/infer"):
        assert takes(scope(path)) is None, path
    assert takes(scope(method="GET")) is None
    assert takes({**scope(), "root_path": "/prefix"}) is None
    for headers in ({"prefer": "respond-async"}, {"cookie": "modelport_session=x"},
                    {"accept": "text/event-stream"}, {"content_type": "text/plain"},
                    {"x_model_version": "1", "X-Model-Version": "2"}):
        assert plain_headers(scope(**headers)["headers"]) is None, headers
    signed = scope()["headers"][:2] + [(b"authorization", b"SDK-HMAC-SHA256 Access=a")]
    assert plain_headers(signed) is None
    assert plain_headers(scope(content_type="application/json; charset=utf-8")["headers"]
                         [:1] + [(b"content-type", b"application/json; charset=utf-8")])


# ------------------------------------------------------------------ same answers


def test_success_envelope_and_headers(gateways: tuple[Gateway, Gateway]) -> None:
    fast, _ = same(gateways, "echo", body=b'{"x": {"a": [1, 2]}, "n": 3}')
    assert fast.status_code == 200 and fast.json()["data"] == {"x": {"a": [1, 2]}, "n": 3}
    assert fast.headers["x-model-version"] == "1"
    assert HEX32.match(fast.headers["x-request-id"])
    same(gateways, "echo", body=b'{"x": "no type", "n": 0}', headers={"Content-Type": None})


def test_request_ids_and_trace_headers(gateways: tuple[Gateway, Gateway]) -> None:
    fast, slow = same(gateways, "echo", headers={"X-Request-ID": "client-id-1"})
    assert fast.headers["x-request-id"] == slow.headers["x-request-id"] == "client-id-1"
    assert fast.json()["metadata"]["request_id"] == "client-id-1"
    fast, slow = same(gateways, "echo", headers={"X-Request-ID": "not sane"})
    assert HEX32.match(fast.headers["x-request-id"]) and HEX32.match(slow.headers["x-request-id"])
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    fast, _ = same(gateways, "echo", headers={"traceparent": parent})
    assert fast.headers["x-trace-id"] == "0af7651916cd43dd8448eb211c80319c"
    assert fast.headers["traceresponse"] == parent
    same(gateways, "echo", headers={"traceparent": "garbage"})


def test_body_errors(gateways: tuple[Gateway, Gateway]) -> None:
    cases = {b'{"x": ': "request.invalid_json", b"[1, 2]": "request.not_an_object",
             b'{"x": 1, "n": 0, "y": 2}': "request.inputs", b'{"n": 1}': "request.inputs",
             b'{"x": 1, "n": "three"}': "request.input_type"}
    for body, code in cases.items():
        fast, _ = same(gateways, "echo", body=body)
        assert fast.status_code == 422 and fast.json()["error"]["code"] == code, body
        assert fast.json()["error"]["fix"]


def test_oversized_bodies_are_413(gateways: tuple[Gateway, Gateway]) -> None:
    big = json.dumps({"x": "a" * MAX_BODY}).encode()
    fast, _ = same(gateways, "echo", body=big)  # declared by Content-Length
    assert fast.status_code == 413 and fast.json()["error"]["code"] == "request.too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: refused while reading
        yield b'{"x": "'
        for _ in range(MAX_BODY // 512 + 1):
            yield b"a" * 512
        yield b'"}'

    fast, slow = (gw.post("echo", body=chunked()) for gw in gateways)
    assert shape(fast) == shape(slow) and fast.status_code == 413


def test_unknown_service_and_version_pins(gateways: tuple[Gateway, Gateway]) -> None:
    fast, _ = same(gateways, "no-such-service")
    assert fast.status_code == 404 and fast.json()["error"]["code"] == "service.not_found"
    fast, _ = same(gateways, "echo", headers={"X-Model-Version": "v1"})
    assert fast.status_code == 200
    fast, _ = same(gateways, "echo", headers={"X-Model-Version": "three"})
    assert fast.status_code == 422
    fast, _ = same(gateways, "echo", headers={"X-Model-Version": "7"})
    assert fast.status_code == 404 and fast.json()["error"]["code"] == "version.not_found"


def test_auth_errors(gateways: tuple[Gateway, Gateway]) -> None:
    fast, _ = same(gateways, "guarded", auth=False)
    assert fast.status_code == 401 and fast.headers["www-authenticate"].startswith("Bearer")
    fast, _ = same(gateways, "guarded", headers={"Authorization": "Bearer mp_0.not-a-key"})
    assert fast.status_code == 401
    fast, _ = same(gateways, "guarded")
    assert fast.status_code == 200
    same(gateways, "echo", auth=False)  # not auth.required: open


def test_rate_limit_is_429_with_retry_after(gateways: tuple[Gateway, Gateway]) -> None:
    first, _ = same(gateways, "limited")
    assert first.status_code == 200
    fast, _ = same(gateways, "limited")
    assert fast.status_code == 429 and int(fast.headers["retry-after"]) >= 1


def test_model_errors_and_raw_bytes(gateways: tuple[Gateway, Gateway]) -> None:
    fast, _ = same(gateways, "echo", body=b'{"x": "boom", "n": 0}',
                   headers={"X-Request-ID": "boom-1"})  # the message quotes it
    assert fast.status_code >= 400 and "boom" in fast.text
    fast, _ = same(gateways, "echo", body=b'{"x": "raw", "n": 0}')
    assert fast.json()["metadata"]["content_type"] == "bytes"
    fast, _ = same(gateways, "echo", body=b'{"x": "raw", "n": 0}',
                   headers={"Accept": "application/octet-stream"})
    assert fast.content == b"\x00raw bytes\xff"
    assert fast.headers["content-type"] == "application/octet-stream"


def test_what_it_hands_on_is_answered_the_same(gateways: tuple[Gateway, Gateway]) -> None:
    same(gateways, "echo", body=b"x=1", headers={"Content-Type": "application/x-www-form-"
                                                                  "urlencoded"})
    same(gateways, "echo", body=b"plain", headers={"Content-Type": "text/plain"})
    fast, slow = (gw.post("echo", headers={"Accept": "text/event-stream"}) for gw in gateways)
    assert fast.status_code == slow.status_code == 200
    assert fast.headers["content-type"] == slow.headers["content-type"]
    assert fast.text.count("event:") == slow.text.count("event:") > 0
    fast, slow = (gw.post("echo", headers={"Prefer": "respond-async"}) for gw in gateways)
    assert fast.status_code == slow.status_code == 202
    assert fast.json().keys() == slow.json().keys()


def test_metrics_and_access_log_record_it_the_same(gateways: tuple[Gateway, Gateway]) -> None:
    for gw in gateways:
        gw.post("echo", headers={"X-Request-ID": "logged-ok"})
        gw.post("echo", body=b"{", headers={"X-Request-ID": "logged-bad"})
    entries = []
    for gw in gateways:
        entries.append({rid: access_entry(gw, rid) for rid in ("logged-ok", "logged-bad")})
    for entry in entries:
        for e in entry.values():
            e.pop("ts"), e.pop("duration_ms")
    assert entries[0] == entries[1]
    assert entries[0]["logged-bad"]["error_code"] == "request.invalid_json"
    assert entries[0]["logged-ok"] == {"request_id": "logged-ok", "service": "echo",
                                       "version": 1, "status": 200, "method": "POST",
                                       "path": "/v1/services/echo/infer"}
    counts = [metric(gw, 'modelport_requests_total{code_class="2xx",service="echo",'
                         'version="1"}') for gw in gateways]
    assert counts[0] > 0 and counts[0] == counts[1]


def access_entry(gw: Gateway, rid: str) -> dict[str, Any]:
    """The access.log line of a request; the gateway writes it as the response ends."""
    path = gw.plat.home / "logs" / "access.log"
    for _ in range(100):
        for line in path.read_text().splitlines() if path.exists() else []:
            entry = json.loads(line)
            if entry["request_id"] == rid:
                return entry
        time.sleep(0.05)
    raise AssertionError(f"no access.log line for request {rid} in {path}")


def metric(gw: Gateway, sample: str) -> float:
    text = httpx.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {gw.token}"},
                     timeout=30).text
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# ------------------------------------------------------------------ head and body, one write


def test_a_streamed_head_is_not_held_back_for_its_body() -> None:
    """http1.HttpProtocol holds a response head only until the loop's next turn: a client
    sees the headers of a stream before its body is sent."""
    import asyncio

    import uvicorn

    from services.gateway.http1 import HttpProtocol

    headers_seen = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        if scope["path"] == "/stream":
            while not headers_seen.is_set():  # the body waits for the client's headers
                await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"done"})

    config = uvicorn.Config(app, host="127.0.0.1", port=0, http=HttpProtocol, lifespan="off",
                            log_config=None, loop="asyncio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert client.get("/plain").text == "done"
            with client.stream("GET", "/stream") as r:
                assert r.status_code == 200  # the head arrived while the body waits
                headers_seen.set()
                assert r.read() == b"done"
            assert client.get("/plain").text == "done"  # keep-alive still works
    finally:
        server.should_exit = True
        thread.join(30)
