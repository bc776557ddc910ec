"""Custom container images (issue 17 §2): a package whose config.json says
``"model_type": "Image"`` runs the user's own HTTP server, in a container with no network.

Against a real dockerd and the local base image (tests/docker/conftest.py): a Dockerfile
package FROM that image, whose CMD serves /health, /infer and a nested path on 8080 bound
to the container's loopback only, answers through the gateway as it is; its container
has network "none"; a rolling update under steady load fails no request; a container whose
/health turns to 500 is reported and replaced; an ``"image": "name:tag"`` package runs an
image tagged in the test, and one naming an absent image fails saying how to provide it.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from modelport.errors import ModelportError
from tests.docker.support import BASE_IMAGE, containers, wait_until
from tests.rollout.load import Load

SERVER = r'''
import json, os, signal, socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VARIANT = "@VARIANT@"
FLAG = "/tmp/unhealthy"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, doc, ctype="application/json"):
        body = json.dumps(doc).encode() if ctype == "application/json" else doc
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _echo(self, method):
        path, _, query = self.path.partition("?")
        body = self._body()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        return {"method": method, "path": path, "query": query, "json": parsed,
                "size": len(body), "content_type": self.headers.get("Content-Type"),
                "authorization": self.headers.get("Authorization"),
                "request_id": self.headers.get("X-Request-ID"),
                "prefix": self.headers.get("X-Forwarded-Prefix"),
                "variant": VARIANT, "host": socket.gethostname()}

    def do_GET(self):
        if self.path == "/health":
            if os.path.exists(FLAG):
                return self._send(500, {"healthy": False})
            return self._send(200, {"healthy": True})
        return self._send(200, self._echo("GET"))

    def do_POST(self):
        if self.path == "/break-health":
            open(FLAG, "w").close()
            return self._send(200, {"broken": True})
        if self.path == "/teapot":
            self._body()
            return self._send(418, b"short and stout", "text/plain")
        if self.path == "/infer" or self.path.startswith("/v2/models/"):
            return self._send(200, self._echo("POST"))
        return self._send(404, {"error": "no such path " + self.path})

    def do_PUT(self):
        return self._send(200, self._echo("PUT"))

    def log_message(self, fmt, *args):
        print("request:", fmt % args, flush=True)


server = ThreadingHTTPServer(("127.0.0.1", 8080), Handler)
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
print("serving on 8080, variant", VARIANT, flush=True)
server.serve_forever()
'''


def image_package(tmp: Path, name: str, variant: str, health: dict | None = None) -> Path:
    """A Dockerfile package FROM the local base image; its server answers ``variant``."""
    dst = tmp / f"{name}-{variant}"
    dst.mkdir(parents=True)
    (dst / "server.py").write_text(SERVER.replace("@VARIANT@", variant))
    (dst / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY server.py /app/server.py\n"
                                    'CMD ["python3", "-u", "/app/server.py"]\n')
    config = {"model_type": "Image", "model_algorithm": "echo_server",
              "image": {"dockerfile": "Dockerfile"},
              "health": health or {"check_method": "HTTP", "url": "/health",
                                   "period_seconds": 1, "failure_threshold": 2,
                                   "timeout_seconds": 2}}
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def ref_package(tmp: Path, name: str, image: str, health: dict | None = None) -> Path:
    dst = tmp / name
    dst.mkdir(parents=True)
    config: dict = {"model_type": "Image", "model_algorithm": "echo_server", "image": image}
    if health:
        config["health"] = health
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def running(docker_client, name: str) -> list:
    return [c for c in containers(docker_client, name) if c.status == "running"]


@pytest.fixture(scope="module")
def echo(docker_platform, docker_client, tmp_path_factory: pytest.TempPathFactory):
    """One custom image service for the tests that only call it."""
    import modelport

    tmp = tmp_path_factory.mktemp("custom-image")
    with modelport.Client(docker_platform.url) as c:
        svc = c.create(image_package(tmp, "echo", "one"), name="echo-image")
        yield svc
        c.delete(svc["name"])


def test_dockerfile_image_serves_its_paths_as_they_are(echo, client, docker_client) -> None:
    name = echo["name"]
    base = echo["url"].rsplit("/infer", 1)[0]
    assert echo["phase"] == "running" and echo["kind"] == "image"
    assert echo["spec"]["runtime"] == "docker"  # implied by the package

    # /v1/services/x/infer -> /infer: the container's own JSON, no envelope
    r = httpx.post(f"{base}/infer", json={"text": "hi"}, headers={"X-Request-ID": "img-1"},
                   timeout=60)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["path"] == "/infer" and doc["json"] == {"text": "hi"}
    assert doc["content_type"] == "application/json" and doc["variant"] == "one"
    assert doc["request_id"] == "img-1" and doc["prefix"] == f"/v1/services/{name}"
    assert r.headers["x-request-id"] == "img-1" and r.headers["x-model-version"] == "1"

    # a nested path with a query
    r = httpx.post(f"{base}/v2/models/m/predict?mode=fast", json=[1, 2], timeout=60)
    assert r.status_code == 200, r.text
    assert (r.json()["path"], r.json()["query"], r.json()["json"]) == (
        "/v2/models/m/predict", "mode=fast", [1, 2])

    # other methods, bodies that are not JSON, statuses and types as the container sent
    r = httpx.put(f"{base}/blob", content=b"\x00\x01binary",
                  headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert r.json()["method"] == "PUT" and r.json()["size"] == 8
    assert r.json()["content_type"] == "application/octet-stream"
    r = httpx.post(f"{base}/teapot", content=b"x", timeout=60)
    assert r.status_code == 418 and r.text == "short and stout"
    assert r.headers["content-type"] == "text/plain"
    r = httpx.get(f"{base}/health", timeout=60)
    assert r.status_code == 200 and r.json() == {"healthy": True}

    # ModelArts' URL: /v1/infers/{name}[/path] -> /[path], the container's answer as it is
    gateway = base.split("/v1/services/", 1)[0]
    r = httpx.post(f"{gateway}/v1/infers/{name}/infer", json={"a": 1}, timeout=60)
    assert r.status_code == 200 and r.json()["path"] == "/infer" and r.json()["json"] == {"a": 1}
    r = httpx.post(f"{gateway}/v1/infers/{name}", json={}, timeout=60)
    assert r.status_code == 404 and r.json() == {"error": "no such path /"}  # the image's 404

    # a version pin chooses as for any service; an unknown one is the platform's 404
    r = httpx.post(f"{base}/infer", json={}, headers={"X-Model-Version": "1"}, timeout=60)
    assert r.status_code == 200 and r.headers["x-model-version"] == "1"
    r = httpx.post(f"{base}/infer", json={}, headers={"X-Model-Version": "9"}, timeout=60)
    assert r.status_code == 404 and r.json()["result"] is False, r.text

    # the platform's credentials stay at the gateway
    r = httpx.post(f"{base}/infer", json={}, headers={"Authorization": "Bearer secret"},
                   timeout=60)
    assert r.json()["authorization"] is None

    # the replica is a container of the built image with no network and no mounts
    (box,) = running(docker_client, name)
    assert box.attrs["HostConfig"]["NetworkMode"] == "none"
    assert box.attrs["Mounts"] == []
    tag = box.attrs["Config"]["Image"]  # what the version was built into
    assert tag.startswith("modelport/image:")
    assert box.attrs["Config"]["User"] not in ("", "0", "root")
    assert doc["host"] == box.id[:12]  # it answered from inside that container
    # the version's image, content-tagged: built by this build or an earlier identical one
    build_log = client.build_log(name, 1)
    assert tag in build_log
    assert "COPY server.py /app/server.py" in build_log or "already built" in build_log
    logs = "\n".join(client.logs(name))
    assert "serving on 8080, variant one" in logs  # the container's stdout
    assert any(e["reason"] == "ReplicaStarting" for e in client.events(name))
    # counted like any call: the gateway's metrics, by service, version and status class
    metrics = client.metrics()
    assert f'modelport_requests_total{{code_class="2xx",service="{name}",version="1"}}' in (
        metrics) or (f'service="{name}"' in metrics and "modelport_requests" in metrics)


def test_routes_of_other_services_are_unchanged(echo) -> None:
    gateway = echo["url"].split("/v1/", 1)[0]
    r = httpx.get(f"{gateway}/v1/services/no-such-service/anything", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "route.not_found"
    r = httpx.get(f"{gateway}/v1/services/no-such-service/infer", timeout=30)
    assert r.status_code == 405 and r.headers["allow"].startswith("POST")
    # the image answers HTTP only: the input-based paths say where to go
    r = httpx.post(f"{gateway}/v2/models/{echo['name']}/infer",
                   json={"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
                                     "data": [1]}]}, timeout=30)
    assert 400 <= r.status_code < 500, r.text


def test_a_process_runtime_is_refused(client, tmp_path: Path) -> None:
    with pytest.raises(ModelportError) as exc:
        client.create(image_package(tmp_path, "proc", "one"), name="image-as-process",
                      spec=json.dumps({"runtime": "process"}))
    assert exc.value.code == "service.runtime_not_docker", exc.value


def test_rolling_update_under_load_fails_no_request(client, docker_client,
                                                    tmp_path: Path) -> None:
    svc = client.create(image_package(tmp_path, "roll", "one"), name="image-roll")
    name, url = svc["name"], svc["url"]
    try:
        with Load(url, {"text": "steady"}, workers=4) as load:
            load.wait_for(20)
            client.update(name, image_package(tmp_path, "roll", "two"))
            wait_until(lambda: load.versions().get("2", 0) >= 20, 120, "v2 to answer")
            before = load.count()
            load.wait_for(20)
        assert load.errors == [], load.errors[:5]
        assert load.failures() == [], load.failures()[:5]
        assert load.versions()["1"] > 0 and load.versions()["2"] >= 20
        assert all(a.body["variant"] == ("one" if a.version == "1" else "two")
                   for a in load.answers)
        assert before < load.count()
    finally:
        client.delete(name)


def test_failing_health_is_reported_and_restarted(client, docker_client,
                                                  tmp_path: Path) -> None:
    svc = client.create(image_package(tmp_path, "sick", "one"), name="image-sick")
    name, url = svc["name"], svc["url"]
    base = url.rsplit("/infer", 1)[0]
    try:
        (first,) = running(docker_client, name)
        assert httpx.post(f"{base}/break-health", timeout=30).json() == {"broken": True}
        wait_until(lambda: any(c.id != first.id for c in running(docker_client, name)),
                   120, "a new container")
        restarted = wait_until(lambda: [e["message"] for e in client.events(name)
                                        if e["reason"] == "ReplicaRestarted"], 60,
                               "a ReplicaRestarted event")
        assert "GET /health" in restarted[-1] and "500" in restarted[-1], restarted
        assert "liveness probe failed" in restarted[-1]
        answer = wait_until(lambda: _answer(url), 120, "the new container to answer")
        assert answer["host"] != first.id[:12]
    finally:
        client.delete(name)


def test_an_image_on_the_host_by_name(echo, client, docker_client, tmp_path: Path) -> None:
    (box,) = running(docker_client, echo["name"])
    box.image.tag("modelport-test/echo", "ref")  # as `docker tag` would
    health = {"check_method": "EXEC", "command": "test ! -e /tmp/unhealthy",
              "period_seconds": 1, "failure_threshold": 2}
    svc = client.create(ref_package(tmp_path, "ref", "modelport-test/echo:ref", health),
                        name="image-ref")
    try:
        assert svc["phase"] == "running"
        answer = _answer(svc["url"])
        assert answer is not None and answer["path"] == "/infer"
        (ref_box,) = running(docker_client, svc["name"])
        assert ref_box.attrs["HostConfig"]["NetworkMode"] == "none"
        assert ref_box.image.id == box.image.id  # the very image, tagged for the version
    finally:
        client.delete(svc["name"])
        docker_client.images.remove("modelport-test/echo:ref")  # the tag, not the image


def test_an_absent_image_fails_saying_how_to_provide_it(client, tmp_path: Path) -> None:
    from modelport.client import DeployFailed

    with pytest.raises(DeployFailed) as exc:
        client.create(ref_package(tmp_path, "absent", "modelport-test/absent:1"),
                      name="image-absent", timeout=120)
    assert "docker load" in exc.value.reason and "docker tag" in exc.value.reason


def _answer(url: str) -> dict | None:
    try:
        r = httpx.post(url, json={"text": "again"}, timeout=30)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None
