"""Services with auth.required: invoke keys per service, every protocol, AK/SK signing."""

from __future__ import annotations

import json
import time

import grpc
import httpx
import pytest

import modelport
from modelport import signing
from modelport.inference import grpc_predict_v2_pb2 as oip_pb
from tests.conftest import RunningPlatform
from tests.security.conftest import ensure


@pytest.fixture(scope="module")
def keys(admin: modelport.Client) -> dict[str, dict]:
    """Two guarded services, an open one, and an invoke key for guarded-a only."""
    ensure(admin, "hello", "guarded-a", auth={"required": True})
    ensure(admin, "hello", "guarded-b", auth={"required": True})
    ensure(admin, "hello", "open-c")
    return {"a": admin.create_key(["invoke:guarded-a"], name="invoke-a"),
            "star": admin.create_key(["invoke:*"], name="invoke-star")}


def infer(plat: RunningPlatform, name: str, headers: dict[str, str] | None = None,
          body: dict | None = None) -> httpx.Response:
    return httpx.post(f"{plat.url}/v1/services/{name}/infer", json=body or {"text": "x"},
                      headers=headers or {}, timeout=60)


def bearer(key: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['token']}"}


def test_an_invoke_key_for_a_calls_a_and_nothing_else(sec: RunningPlatform,
                                                      keys: dict[str, dict]) -> None:
    a = keys["a"]
    ok = infer(sec, "guarded-a", bearer(a))
    assert ok.status_code == 200 and ok.json()["data"] == {"hello": "x"}
    for header in ("apikey", "X-Apig-AppCode"):
        assert infer(sec, "guarded-a", {header: a["token"]}).status_code == 200
    other = infer(sec, "guarded-b", bearer(a))
    assert other.status_code == 403
    err = other.json()["error"]
    assert err["code"] == "auth.scope" and "invoke:guarded-b" in err["fix"]
    # nor deploy, change or delete anything
    with modelport.Client(sec.url, token=a["token"]) as c:
        for action in (lambda: c.create(sec_package(), name="nope"), lambda: c.delete("open-c"),
                       lambda: c.delete("guarded-a"), c.list):
            with pytest.raises(modelport.ModelportError) as exc:
                action()
            assert exc.value.details["status"] == 403
    assert infer(sec, "guarded-b", bearer(keys["star"])).status_code == 200


def sec_package():  # noqa: ANN201
    from tests.security.conftest import PACKAGES

    return PACKAGES / "hello"


def test_missing_credential_is_401_with_what_is_needed(sec: RunningPlatform,
                                                       keys: dict[str, dict]) -> None:
    r = infer(sec, "guarded-a")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    err = r.json()["error"]
    assert err["code"] == "auth.required" and "Authorization: Bearer" in err["fix"]
    assert infer(sec, "guarded-a", {"apikey": "mp_0000000000000000.nope-nope-nope-nope-n"}
                 ).status_code == 401
    assert infer(sec, "open-c").status_code == 200  # the default stays open (TI-ONE)


def test_the_call_guide_shows_how_to_authenticate(admin: modelport.Client,
                                                  keys: dict[str, dict]) -> None:
    svc = admin.get("guarded-a")
    assert svc["spec"]["auth"]["required"] is True
    assert "Authorization: Bearer $MODELPORT_KEY" in svc["examples"]["curl"]
    assert "MODELPORT_SECRET_KEY" in svc["examples"]["signed"]
    assert "Authorization" not in admin.get("open-c")["examples"]["curl"]


def test_streaming_websocket_tasks_and_oip_need_the_key_too(sec: RunningPlatform,
                                                            keys: dict[str, dict]) -> None:
    from websockets.sync.client import connect

    base = sec.url
    sse = httpx.post(f"{base}/v1/services/guarded-a/infer", json={"text": "x"},
                     headers={"Accept": "text/event-stream"})
    assert sse.status_code == 401
    assert httpx.post(f"{base}/v1/services/guarded-a/tasks", json={"text": "x"}
                      ).status_code == 401
    task = httpx.post(f"{base}/v1/services/guarded-a/tasks", json={"text": "x"},
                      headers=bearer(keys["a"]))
    assert task.status_code == 202
    assert httpx.get(task.json()["url"]).status_code == 401
    assert httpx.get(task.json()["url"], headers=bearer(keys["a"])).status_code == 200
    assert httpx.get(f"{base}/v1/services/guarded-a/tasks").status_code == 401
    assert httpx.post(f"{base}/v2/models/guarded-a/infer", json={"inputs": [
        {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["x"]}]}).status_code == 401
    assert httpx.get(f"{base}/v2/models/guarded-a").status_code == 401
    assert httpx.post(f"{base}/v1/models/guarded-a:predict",
                      json={"instances": ["x"]}).status_code == 401
    ws_url = base.replace("http", "ws", 1) + "/v1/services/guarded-a/ws"
    with connect(ws_url) as ws:
        ws.send(json.dumps({"text": "x"}))
        assert json.loads(ws.recv())["error"]["code"] == "auth.required"
    with connect(ws_url, additional_headers=bearer(keys["a"])) as ws:
        ws.send(json.dumps({"text": "x"}))
        assert json.loads(ws.recv())["type"] == "chunk"


def _grpc_requests(service: str) -> dict[str, tuple[object, object]]:
    """Every public RPC that names a model: (request, response class), from the protos."""
    from modelport.v1 import inference_pb2 as mp

    out: dict[str, tuple[object, object]] = {}
    for desc, module in ((mp.DESCRIPTOR.services_by_name["Inference"], mp),
                         (oip_pb.DESCRIPTOR.services_by_name["GRPCInferenceService"], oip_pb)):
        for method in desc.methods:
            fields = method.input_type.fields_by_name
            key = next((f for f in ("service", "name", "model_name") if f in fields), None)
            if key is None or method.name.startswith("Repository"):
                continue
            request = getattr(module, method.input_type.name)(**{key: service})
            if method.name == "Predict" or method.name == "PredictStream":
                request.inputs.add(name="text", text="x")
            if method.name in ("ModelInfer", "ModelStreamInfer"):
                t = request.inputs.add(name="text", datatype="BYTES", shape=[1])
                t.contents.bytes_contents.append(b"x")
            out[f"/{desc.full_name}/{method.name}"] = (
                request, getattr(module, method.output_type.name),
                method.client_streaming, method.server_streaming)
    return out


def test_every_public_grpc_rpc_refuses_without_the_right_key(sec: RunningPlatform,
                                                             keys: dict[str, dict]) -> None:
    rpcs = _grpc_requests("guarded-b")
    assert {"/modelport.v1.Inference/Predict", "/inference.GRPCInferenceService/ModelInfer",
            "/inference.GRPCInferenceService/ModelMetadata"} <= set(rpcs)
    problems = []
    with grpc.insecure_channel(f"127.0.0.1:{sec.grpc_port}") as ch:
        for path, (request, response, client_stream, server_stream) in rpcs.items():
            if client_stream:
                call = ch.stream_stream(path, request_serializer=type(request).SerializeToString,
                                        response_deserializer=response.FromString)
            elif server_stream:
                call = ch.unary_stream(path, request_serializer=type(request).SerializeToString,
                                       response_deserializer=response.FromString)
            else:
                call = ch.unary_unary(path, request_serializer=type(request).SerializeToString,
                                      response_deserializer=response.FromString)
            for metadata, want in (((), grpc.StatusCode.UNAUTHENTICATED),
                                   ((("authorization", f"Bearer {keys['a']['token']}"),),
                                    grpc.StatusCode.PERMISSION_DENIED),
                                   ((("apikey", keys["star"]["token"]),), grpc.StatusCode.OK)):
                try:
                    arg = iter([request]) if client_stream else request
                    result = call(arg, metadata=metadata, timeout=60)
                    if client_stream or server_stream:
                        list(result)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as err:
                    code = err.code()
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    break
                if code != want:
                    problems.append(f"{path} with {metadata[:1] and metadata[0][0]}: {code}")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------ AK/SK signing


def signed(plat: RunningPlatform, key: dict, body: bytes, *, now: float | None = None,
           secret: str | None = None, path: str = "/v1/services/guarded-a/infer"
           ) -> tuple[str, dict[str, str]]:
    url = plat.url + path + "?trace=1&a=b"
    headers = {"Content-Type": "application/json"}
    headers |= signing.sign("POST", url, headers, body, key["access_key"],
                            secret or key["secret_key"], now=now)
    return url, headers


def test_a_correctly_signed_request_passes(sec: RunningPlatform, keys: dict[str, dict]) -> None:
    body = json.dumps({"text": "signed"}).encode()
    url, headers = signed(sec, keys["a"], body)
    r = httpx.post(url, content=body, headers=headers)
    assert r.status_code == 200 and r.json()["data"] == {"hello": "signed"}
    # the SDK signs every request, uploads (multipart, UNSIGNED-PAYLOAD) included
    with modelport.Client(sec.url, access_key=keys["star"]["access_key"],
                          secret_key=keys["star"]["secret_key"]) as c:
        assert c.predict("guarded-b", text="sdk")["data"] == {"hello": "sdk"}
        assert c.predict_form("guarded-b", {"text": "form"})["data"] == {"hello": "form"}


def test_tampering_wrong_keys_stale_dates_and_replays_are_refused(
        sec: RunningPlatform, keys: dict[str, dict]) -> None:
    body = json.dumps({"text": "original"}).encode()

    def code(r: httpx.Response) -> tuple[int, str]:
        return r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else ""

    url, headers = signed(sec, keys["a"], body)
    assert code(httpx.post(url, content=b'{"text": "tampered"}', headers=headers)) == (
        401, "auth.signature_mismatch")
    url, headers = signed(sec, keys["a"], body, secret=keys["star"]["secret_key"])
    assert code(httpx.post(url, content=body, headers=headers)) == (
        401, "auth.signature_mismatch")
    for minutes in (16, -16):
        url, headers = signed(sec, keys["a"], body, now=time.time() - minutes * 60)
        assert code(httpx.post(url, content=body, headers=headers)) == (
            401, "auth.signature_expired")
    url, headers = signed(sec, keys["a"], body, now=time.time() - 14 * 60)
    assert code(httpx.post(url, content=body, headers=headers)) == (200, "")
    url, headers = signed(sec, keys["a"], body)
    assert code(httpx.post(url, content=body, headers=headers)) == (200, "")
    assert code(httpx.post(url, content=body, headers=headers)) == (401, "auth.replayed")
    # the query and the path are signed too
    url, headers = signed(sec, keys["a"], body)
    assert code(httpx.post(url.replace("a=b", "a=c"), content=body, headers=headers)) == (
        401, "auth.signature_mismatch")
    # a valid signature of a key without the scope is a 403, not a pass
    url, headers = signed(sec, keys["a"], body, path="/v1/services/guarded-b/infer")
    assert code(httpx.post(url, content=body, headers=headers)) == (403, "auth.scope")
    # UNSIGNED-PAYLOAD only for multipart
    url, headers = signed(sec, keys["a"], body)
    headers[signing.CONTENT_SHA256_HEADER] = signing.UNSIGNED_PAYLOAD
    assert code(httpx.post(url, content=body, headers=headers)) == (401, "auth.unsigned_payload")


def test_rate_limits_answer_429_with_retry_after(sec: RunningPlatform,
                                                 admin: modelport.Client) -> None:
    ensure(admin, "hello", "limited", rate_limit={"rps": 0.05, "burst": 1})
    first = infer(sec, "limited")
    assert first.status_code == 200
    second = infer(sec, "limited")
    assert second.status_code == 429 and second.json()["error"]["code"] == "rate.service_limit"
    assert 1 <= int(second.headers["Retry-After"]) <= 20
    key = admin.create_key(["invoke:open-c"], name="slow-key", rate_limit=0.05)
    ensure(admin, "hello", "open-c")
    assert infer(sec, "open-c", bearer(key)).status_code == 200
    # an open service does not look at keys: the per-key limit applies where keys are checked
    ensure(admin, "hello", "guarded-a", auth={"required": True})
    key = admin.create_key(["invoke:guarded-a"], name="slow-key-a", rate_limit=0.05)
    assert infer(sec, "guarded-a", bearer(key)).status_code == 200
    r = infer(sec, "guarded-a", bearer(key))
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate.key_limit"
    assert "Retry-After" in r.headers
    assert infer(sec, "guarded-a", bearer(admin_key(admin))).status_code == 200


def admin_key(admin: modelport.Client) -> dict:
    return admin.create_key(["invoke:guarded-a"], name="another")

