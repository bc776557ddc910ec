"""The Deployment `modelport export kubernetes` renders, run on the platform's own image of
the version: the container the kubelet would start (its image, command, env, the shim
ConfigMap as its volume, no network), probed and called from inside."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.docker.support import containers, docker_spec
from tests.e2e.lifecycle_flows import CLI, SETOSA
from tests.e2e.packages import EXAMPLES, zipped
from tests.export.pods import (
    SHIM_MOUNT,
    by_kind,
    load_dir,
    model_container,
    shim_volume,
    validate,
)

#: run inside the container (its own Python, no network): the probe, then one call
PROBE = f"FEATURES = {SETOSA!r}\n" + """
import json, sys, time, urllib.request
base = "http://127.0.0.1:8080"
deadline = time.time() + 90
while True:
    try:
        urllib.request.urlopen(base + sys.argv[1], timeout=2)
        break
    except Exception as exc:
        if time.time() > deadline:
            print(json.dumps({"never_ready": str(exc)})); sys.exit(0)
        time.sleep(0.2)
req = urllib.request.Request(base + "/v1/services/" + sys.argv[2] + "/infer",
                             data=json.dumps({"features": FEATURES}).encode(),
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=30).read().decode())
"""


def test_exported_pod_serves_on_the_versions_image(docker_platform, client, docker_client,
                                                   tmp_path: Path) -> None:
    svc = client.create(zipped(EXAMPLES / "predictor-iris", tmp_path / "iris.zip"),
                        name="k8s-pod", spec=docker_spec())
    (box,) = [c for c in containers(docker_client, "k8s-pod") if c.status == "running"]
    image = box.image.tags[0]  # the builder's image of version 1

    out = tmp_path / "out"
    r = subprocess.run([*CLI, "export", "kubernetes", "k8s-pod", "--url", docker_platform.url,
                        "--output", str(out), "--image", image], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert validate(out).returncode == 0
    docs = load_dir(out)
    deployment = by_kind(docs, "Deployment")[f"k8s-pod-v{svc['serving_version']}"]
    container = model_container(deployment)
    assert container["image"] == image

    shim = shim_volume(docs, deployment, tmp_path / "shim")
    for root, dirs, files in os.walk(tmp_path):  # the container's user is not ours
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    os.chmod(tmp_path, 0o755)
    pod = docker_client.containers.run(
        container["image"], container["command"], detach=True, network_mode="none",
        environment={e["name"]: e["value"] for e in container["env"]},
        volumes={str(shim): {"bind": SHIM_MOUNT, "mode": "ro"}}, tmpfs={"/tmp": ""},
        labels={"modelport.test": "kubernetes-pod"})
    try:
        ready = container["readinessProbe"]["httpGet"]["path"]
        code, output = pod.exec_run(["/opt/modelport/venv/bin/python", "-c", PROBE, ready,
                                     "k8s-pod"])
        logs = pod.logs().decode(errors="replace")
        assert code == 0, output.decode() + logs
        answer = json.loads(output.decode().strip().splitlines()[-1])
        assert answer.get("result") is True, (answer, logs)
        assert answer["data"]["label"] == "setosa"
    finally:
        pod.remove(force=True)
        client.delete("k8s-pod")
