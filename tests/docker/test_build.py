"""Docker builds: the image is tagged by content and reused when the content repeats;
requirements are installed on the host with its package-index settings; a base image the
host does not have fails the build with an event naming it and how to provide it."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import httpx

from tests.docker.support import BASE_IMAGE, containers, docker_spec, wait_until
from tests.e2e.packages import EXAMPLES, predictor

NUMPY = """
import numpy

class Predictor:
    def predict(self, text):
        return {"numpy": numpy.__version__, "from": numpy.__file__,
                "sum": int(numpy.arange(int(text)).sum())}
"""


def test_same_content_reuses_the_image(client, docker_client, tmp_path: Path) -> None:
    # content of its own (a fresh image, removed at the end), requirements like any model's
    pkg = predictor(tmp_path, "numpy-image", NUMPY, requirements="numpy\n")
    (pkg / "token.txt").write_text(uuid.uuid4().hex)
    a = client.create(pkg, name="image-a", spec=docker_spec())
    b = client.create(pkg, name="image-b", spec=docker_spec())
    tags: set[str] = set()
    try:
        for svc in (a, b):
            r = httpx.post(svc["url"], json={"text": "5"}, timeout=60)
            assert r.status_code == 200, r.text
            assert r.json()["data"]["sum"] == 10
            # numpy came with the image, into its virtualenv over the base image's Python
            assert r.json()["data"]["from"].startswith("/opt/modelport/venv/lib/python3")
        log_a, log_b = client.build_log("image-a", 1), client.build_log("image-b", 1)
        # the first build installed the requirements on the host, for the image's Python
        # and platform, and streamed docker build's output into the build log
        assert "--python-platform" in log_a and "numpy" in log_a, log_a
        assert "Successfully tagged modelport/model:" in log_a, log_a
        # the second found the image under the same content tag
        assert "is already built" in log_b, log_b
        assert "docker build" not in log_b
        event = next(e for e in client.events("image-b") if e["reason"] == "BuildSucceeded")
        assert "reused" in event["message"]
        for name in ("image-a", "image-b"):
            for box in containers(docker_client, name):
                tags.update(box.image.tags)
        assert len(tags) == 1 and next(iter(tags)).startswith("modelport/model:")
    finally:
        client.delete("image-a")
        client.delete("image-b")
        for name in ("image-a", "image-b"):
            wait_until(lambda name=name: not containers(docker_client, name), 60, "removal")
        for tag in tags:
            docker_client.images.remove(tag, force=True)


def test_missing_base_image_fails_the_build_saying_how_to_provide_it(
        client, tmp_path: Path) -> None:
    pkg = tmp_path / "absent-base"
    shutil.copytree(EXAMPLES / "file-contract-color", pkg,
                    ignore=shutil.ignore_patterns("__pycache__"))
    config = json.loads((pkg / "config.json").read_text())
    config["base_image"] = "modelport-test/absent-base:1"
    (pkg / "config.json").write_text(json.dumps(config))

    svc = client.create(pkg, name="absent-base", spec=docker_spec(), wait=False)
    failed = wait_until(lambda: [e for e in client.events(svc["name"])
                                 if e["reason"] == "BuildFailed"], 120, "BuildFailed")
    message = failed[0]["message"]
    assert "modelport-test/absent-base:1" in message
    assert "docker load" in message and "docker import" in message
    assert client.get(svc["name"])["phase"] == "failed"
    client.delete(svc["name"])


MARKED_BASE = "modelport-test/marked-base:1"
READS_MARKER = """
class Predictor:
    def predict(self, text):
        with open("/etc/modelport-test-base") as f:
            return {"base": f.read().strip(), "text": text}
"""


def test_a_predictor_names_its_own_base_image(client, docker_client, tmp_path: Path) -> None:
    """`base_image` is a key of every package kind, not only the file contract's: the
    predictor's replica runs on that base (a file only that base has proves it)."""
    context = tmp_path / "base"
    context.mkdir()
    (context / "marker").write_text("marked\n")
    (context / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nCOPY marker /etc/modelport-test-base\n")
    docker_client.images.build(path=str(context), tag=MARKED_BASE, rm=True)
    pkg = predictor(tmp_path, "on-marked-base", READS_MARKER)
    config = json.loads((pkg / "config.json").read_text())
    (pkg / "config.json").write_text(json.dumps({**config, "base_image": MARKED_BASE}))
    tags: set[str] = set()
    try:
        svc = client.create(pkg, name="on-marked-base", spec=docker_spec())
        r = httpx.post(svc["url"], json={"text": "hi"}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["data"] == {"base": "marked", "text": "hi"}
        assert MARKED_BASE in client.build_log("on-marked-base", 1)
        for box in containers(docker_client, "on-marked-base"):
            tags.update(box.image.tags)
    finally:
        client.delete("on-marked-base")
        wait_until(lambda: not containers(docker_client, "on-marked-base"), 60, "removal")
        for tag in [*tags, MARKED_BASE]:
            docker_client.images.remove(tag, force=True)

