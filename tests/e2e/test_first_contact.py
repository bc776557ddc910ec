"""What a newcomer's first requests meet on a real platform (issue 22): a mistyped path or
method answers the JSON error envelope with the routes meant, ``curl -d`` without a JSON
Content-Type is told about the header, and an update with the serving package says so."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests.conftest import AUTH_HEADERS, RunningPlatform
from tests.e2e.packages import predictor, zipped

ADD = """
class Predictor:
    def predict(self, a, b):
        return {"sum": a + b}
"""
INPUTS = [{"name": "a", "type": "number"}, {"name": "b", "type": "number"}]


def _error(r: httpx.Response) -> dict:
    assert r.headers["content-type"] == "application/json", r.text
    return r.json()["error"]


def test_an_unknown_path_is_a_json_404_naming_the_closest_routes(
        platform: RunningPlatform) -> None:
    r = httpx.post(f"{platform.url}/v1/services/iris/infr", json={}, timeout=30)
    assert r.status_code == 404
    err = _error(r)
    assert err["code"] == "route.not_found" and err["kind"] == "not_found"
    assert err["message"] == "no route POST /v1/services/iris/infr"
    assert err["details"]["closest"][0] == "POST /v1/services/{name}/infer"
    assert "did you mean POST /v1/services/{name}/infer" in err["fix"]
    assert r.json()["metadata"]["request_id"] == r.headers["x-request-id"]
    # under /api/v1 too, for a caller with a credential; an anonymous one is asked for a
    # credential first, so the management API's routes are not shown to anyone
    r = httpx.get(f"{platform.url}/api/v1/servics", headers=AUTH_HEADERS, timeout=30)
    assert r.status_code == 404 and _error(r)["code"] == "route.not_found"
    assert "GET|POST /api/v1/services" in _error(r)["details"]["closest"]
    anonymous = httpx.get(f"{platform.url}/api/v1/servics", timeout=30)
    assert anonymous.status_code == 401 and _error(anonymous)["code"] == "auth.required"
    # nothing near: no guess, only where the list is
    err = _error(httpx.get(f"{platform.url}/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", timeout=30))
    assert "closest" not in err.get("details", {}) and "/openapi.json" in err["fix"]


def test_an_unknown_oip_path_answers_in_the_protocols_shape(platform: RunningPlatform) -> None:
    r = httpx.get(f"{platform.url}/v2/modles/iris", timeout=30)
    assert r.status_code == 404
    body = r.json()
    assert isinstance(body["error"], str) and body["code"] == "route.not_found"
    assert "/v2/models/{name}" in body["fix"]


def test_a_method_the_path_does_not_take_is_a_json_405_with_allow(
        platform: RunningPlatform) -> None:
    r = httpx.get(f"{platform.url}/v1/services/iris/infer", timeout=30)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    err = _error(r)
    assert err["code"] == "route.method_not_allowed" and err["kind"] == "method_not_allowed"
    assert err["message"] == "GET is not a method of /v1/services/iris/infer; it takes POST"
    assert err["details"]["allow"] == ["POST"]
    # one path, three routes (GET, PUT, DELETE): Allow names them all
    r = httpx.patch(f"{platform.url}/api/v1/services/iris", headers=AUTH_HEADERS, timeout=30)
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE, GET, HEAD, PUT"
    assert _error(r)["details"]["allow"] == ["DELETE", "GET", "PUT"]


def test_curl_d_with_json_is_told_to_send_the_json_content_type(
        client, tmp_path: Path) -> None:
    svc = client.create(predictor(tmp_path, "first-add", ADD, INPUTS))
    body = '{"a": 1, "b": 2}'
    curl = subprocess.run(["curl", "-s", "-d", body, svc["url"]], capture_output=True,
                          text=True, timeout=60)
    err = json.loads(curl.stdout)["error"]
    assert err["code"] == "request.content_type_not_json"
    assert "'application/x-www-form-urlencoded'" in err["message"]
    assert "-H 'Content-Type: application/json'" in err["fix"]
    # with the header the same line works, and so does a real form
    curl = subprocess.run(["curl", "-s", "-H", "Content-Type: application/json", "-d", body,
                           svc["url"]], capture_output=True, text=True, timeout=60)
    assert json.loads(curl.stdout)["data"] == {"sum": 3}
    r = httpx.post(svc["url"], data={"a": "1", "b": "2.5"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"sum": 3.5}
    # other non-JSON types a JSON body can arrive under get the same hint
    r = httpx.post(svc["url"], content=body, headers={"Content-Type": "text/plain"},
                   timeout=30)
    assert _error(r)["code"] == "request.content_type_not_json"
    client.delete(svc["name"])


def test_an_update_with_the_serving_package_says_unchanged(client, tmp_path: Path) -> None:
    src = predictor(tmp_path, "first-same", ADD, INPUTS)
    pkg = zipped(src, tmp_path / "first-same.zip")
    svc = client.create(pkg)
    assert svc["serving_version"] == 1
    again = client.update(svc["name"], pkg, wait=False)
    assert again["unchanged"] is True
    assert again["notice"] == "unchanged: version 1 already has this package"
    assert [v["number"] for v in client.versions(svc["name"])] == [1]
    # a changed package is a new version, and says it changed
    (src / "predict.py").write_text(ADD.replace("a + b", "a + b + 0"))
    changed = client.update(svc["name"], src, wait=False)
    assert changed["unchanged"] is False
    client.wait(svc["name"], changed["generation"])
    assert [v["number"] for v in client.versions(svc["name"])] == [1, 2]
    client.delete(svc["name"])
