"""`modelport export kubernetes`: every rendered document passes the official schemas
(`kubernetes-validate --strict`), maps the spec as docs/fleet.md says, and the pod's own
command serves the package when run as the kubelet would run it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.lifecycle_flows import CLI, SETOSA
from tests.e2e.packages import EXAMPLES
from tests.export.pods import (
    SHIM_MOUNT,
    by_kind,
    load_dir,
    model_container,
    shim_volume,
    validate,
)
from tests.rollout.load import wait_until

SERVICES = """\
apiVersion: modelport/v1
kind: ModelService
metadata: {name: iris, annotations: {team: vision}}
spec:
  package: ../examples/predictor-iris
  replicas: 4
  resources: {cpu: 1.5, memory: 1Gi, gpu: 1}
  env: {LOG_LEVEL: debug, HF_TOKEN: not-in-a-configmap}
  traffic: [{version: 1, percent: 75}, {version: 2, percent: 25}]
---
apiVersion: modelport/v1
kind: ModelService
metadata: {name: bursty}
spec:
  package: ../examples/predictor-iris
  autoscaling: {min: 0, max: 6, scale_down_delay_s: 45}
  deploy_timeout_s: 300
---
apiVersion: modelport/v1
kind: ModelService
metadata: {name: single}
spec: {package: ../examples/predictor-iris}
"""


def export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "export", "kubernetes", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("k8s")
    (work / "services.yaml").write_text(SERVICES)
    out = work / "manifests"
    r = export(str(work / "services.yaml"), "--output", str(out), "--namespace", "ml",
               "--image", "registry.example/models/{name}:v{version}")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "bursty.yaml", "iris.yaml", "modelport-worker-shim.yaml", "single.yaml"]
    return out


def test_every_document_passes_strict_validation(rendered: Path) -> None:
    docs = load_dir(rendered)
    r = validate(rendered)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("passed") == len(docs), r.stdout
    assert all(d["metadata"]["namespace"] == "ml" for d in docs)


def test_the_validator_rejects_what_a_cluster_would(rendered: Path, tmp_path: Path) -> None:
    """The check above can fail: a misspelt field and a wrong type are both refused."""
    docs = by_kind(load_dir(rendered), "Deployment")
    bad = json.loads(json.dumps(docs["single-v1"]))
    bad["spec"]["replica"] = 2
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    r = validate(tmp_path)
    assert r.returncode != 0 and "single-v1" in r.stdout + r.stderr


def test_the_spec_maps_to_kubernetes_objects(rendered: Path) -> None:
    docs = load_dir(rendered)
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {"iris-v1", "iris-v2", "bursty-v1", "single-v1"}
    # the 75/25 split of 4 replicas: 3 pods of v1 and 1 of v2 behind one Service
    assert deployments["iris-v1"]["spec"]["replicas"] == 3
    assert deployments["iris-v2"]["spec"]["replicas"] == 1
    services = by_kind(docs, "Service")
    assert services["iris"]["spec"]["selector"] == {"app.kubernetes.io/name": "iris"}
    assert services["iris-v2"]["spec"]["selector"] == {"app.kubernetes.io/name": "iris",
                                                       "modelport.io/version": "2"}
    assert deployments["iris-v1"]["metadata"]["annotations"] == {"team": "vision"}

    iris = model_container(deployments["iris-v1"])
    assert iris["image"] == "registry.example/models/iris:v1"
    assert iris["resources"]["limits"] == {"cpu": "1500m", "memory": "1Gi",
                                           "nvidia.com/gpu": "1"}
    assert "nvidia.com/gpu" not in iris["resources"]["requests"]
    assert iris["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert iris["livenessProbe"]["httpGet"]["path"] == "/health/live"
    # env: plain values in a ConfigMap, the token in a Secret, both handed to the pod
    assert by_kind(docs, "ConfigMap")["iris-env"]["data"] == {"LOG_LEVEL": "debug"}
    assert by_kind(docs, "Secret")["iris-secret-env"]["stringData"] == {
        "HF_TOKEN": "not-in-a-configmap"}
    assert {next(iter(e.values()))["name"] for e in iris["envFrom"]} == {
        "iris-env", "iris-secret-env"}
    strategy = deployments["iris-v1"]["spec"]["strategy"]["rollingUpdate"]
    assert strategy == {"maxSurge": 1, "maxUnavailable": 0}

    hpa = by_kind(docs, "HorizontalPodAutoscaler")
    assert set(hpa) == {"bursty-v1"}
    assert (hpa["bursty-v1"]["spec"]["minReplicas"], hpa["bursty-v1"]["spec"]["maxReplicas"]
            ) == (1, 6)
    assert hpa["bursty-v1"]["spec"]["behavior"]["scaleDown"][
        "stabilizationWindowSeconds"] == 45
    assert "replicas" not in deployments["bursty-v1"]["spec"]  # the HPA owns it
    startup = model_container(deployments["bursty-v1"])["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 300
    # a budget where a disruption could take every pod of a version away
    assert set(by_kind(docs, "PodDisruptionBudget")) == {"iris-v1", "bursty-v1"}
    assert "single-env" not in by_kind(docs, "ConfigMap")


def _get(url: str) -> httpx.Response | None:
    """GET, or None while nothing listens yet (the server is still starting)."""
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_pod_command_serves_the_package(rendered: Path, tmp_path: Path) -> None:
    """The model container as a kubelet runs it: the shim ConfigMap projected into its
    volume, the image's layout (/opt/modelport/venv, /opt/modelport/package) stood in for
    by this interpreter and a copy of the example, the probes polled as written."""
    import sys

    docs = load_dir(rendered)
    deployment = by_kind(docs, "Deployment")["single-v1"]
    container = model_container(deployment)
    shim = shim_volume(docs, deployment, tmp_path / "shim")
    package = shutil.copytree(EXAMPLES / "predictor-iris", tmp_path / "package")
    port = _free_port()
    argv = [sys.executable if a.endswith("/venv/bin/python") else
            str(package) if a == "/opt/modelport/package" else a for a in container["command"]]
    argv[argv.index("--port") + 1] = str(port)
    argv += ["--host", "127.0.0.1"]  # tests listen on loopback only
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PYTHONPATH"] == SHIM_MOUNT
    env["PYTHONPATH"] = str(shim)
    env["HOME"] = str(tmp_path)
    env["PATH"] = "/usr/bin:/bin"
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = container["readinessProbe"]["httpGet"]["path"]

        def probe_passes() -> bool:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            r = _get(base + ready)
            return r is not None and r.status_code == 200

        wait_until(probe_passes, 60, "the readiness probe to pass")
        assert httpx.get(base + container["livenessProbe"]["httpGet"]["path"]).status_code \
            == 200
        assert httpx.get(base + "/health").json() == {"status": "OK"}  # ModelArts' check

        r = httpx.post(f"{base}/v1/services/single/infer", json={"features": SETOSA})
        assert r.status_code == 200, r.text
        assert r.json()["result"] is True and r.json()["data"]["label"] == "setosa"
        # the gateway's error shape: what was wrong and how to fix it
        bad = httpx.post(f"{base}/v1/services/single/infer", content=b"{not json",
                         headers={"content-type": "application/json"})
        assert bad.status_code == 400 and "not JSON" in bad.json()["error"]["message"]
        # the model's own error: 500 model.error, Type: message, as from the gateway
        wrong = httpx.post(f"{base}/v1/services/single/infer", json={"features": [1]})
        assert wrong.status_code == 500, wrong.text
        assert wrong.json()["error"]["code"] == "model.error"
        assert wrong.json()["error"]["message"].startswith("ValueError: features must be")
        missing = httpx.post(f"{base}/v1/services/other/infer", json={})
        assert missing.status_code == 404 and "/v1/services/single/infer" in \
            missing.json()["error"]["fix"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_crashing_setup_is_never_ready(tmp_path: Path) -> None:
    """A package whose setup raises: the readiness probe says why, live stays 200 (so
    the kubelet reports the pod unready instead of restarting it in a loop)."""
    import sys

    from services.runtime.shim_install import install_shim

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "config.json").write_text(json.dumps({
        "name": "boom", "predictor": "m:P", "input": [{"name": "x", "type": "json"}]}))
    (pkg / "m.py").write_text("class P:\n    def setup(self):\n        raise RuntimeError("
                              "'weights missing')\n    def predict(self, x):\n        return x\n")
    shim = install_shim(tmp_path / "shim").parent
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "modelport_worker.http_front", "--package",
                             str(pkg), "--port", str(port), "--host", "127.0.0.1"],
                            env={"PYTHONPATH": str(shim), "PATH": "/usr/bin:/bin"},
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        r = wait_until(lambda: (lambda got: got if got is not None and "failed" in got.json()
                                .get("reason", "") else None)(_get(base + "/health/ready")),
                       30, "setup's failure to be reported")
        assert r.status_code == 503 and "weights missing" in r.json()["reason"]
        assert httpx.get(base + "/health/live").status_code == 200
        call = httpx.post(base + "/infer", json={"x": 1})
        assert call.status_code == 503 and "weights missing" in call.json()["error"]["message"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_deployed_service_exports_by_name(client, platform, tmp_path: Path) -> None:
    svc = client.create(EXAMPLES / "predictor-iris", name="exported",
                        spec=json.dumps({"replicas": 2, "resources": {"memory": "256Mi"}}))
    out = tmp_path / "out"
    r = export("exported", "--url", platform.url, "--output", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["services"] == ["exported"]
    assert validate(out).returncode == 0
    deployment = by_kind(load_dir(out), "Deployment")[f"exported-v{svc['serving_version']}"]
    assert deployment["spec"]["replicas"] == 2
    assert model_container(deployment)["resources"]["limits"] == {"memory": "256Mi"}
    client.delete("exported")


def test_unknown_names_and_bad_files_say_what_is_wrong(platform, tmp_path: Path) -> None:
    r = export("no-such-service", "--url", platform.url)
    assert r.returncode == 1 and "no-such-service" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: modelport/v1\nkind: ModelService\nmetadata: {name: x}\n"
                   "spec: {replicas: -1}\n")
    r = export(str(bad), "--json")
    assert r.returncode == 1
    error = json.loads(r.stdout)["error"]
    assert error["code"] == "service.invalid" and "replicas" in json.dumps(error)
