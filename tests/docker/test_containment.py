"""A Docker worker is contained (docs/security.md): not root, no capabilities, no new
privileges, a read-only root file system with a scratch tmpfs, and no network."""

from __future__ import annotations

import json

import httpx

from tests.docker.support import containers, docker_spec
from tests.security.conftest import PACKAGES


def test_a_container_worker_is_unprivileged_read_only_and_offline(client, docker_client,
                                                                  docker_platform) -> None:
    svc = client.create(PACKAGES / "snoop", name="docker-snoop", spec=docker_spec())
    (box,) = [c for c in containers(docker_client, svc["name"]) if c.status == "running"]
    host = box.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"] and host["NetworkMode"] == "none"
    assert "/tmp" in host["Tmpfs"]
    assert box.attrs["Config"]["User"] not in ("", "0", "0:0", "root")
    r = httpx.post(svc["url"], json={"targets": {
        "write": ["/opt/modelport/package/planted", "/etc/planted", "/tmp/scratch"]}},
        timeout=60)
    assert r.status_code == 200, r.text
    seen = r.json()["data"]
    assert seen["uid"] != 0
    assert seen["status"]["CapEff"] == "0000000000000000"
    assert seen["status"]["NoNewPrivs"] == "1"
    assert seen["status"]["interfaces"] == ["lo"], json.dumps(seen["status"])
    writes = seen["write"]
    assert not writes["/opt/modelport/package/planted"]["ok"]
    assert not writes["/etc/planted"]["ok"] and writes["/tmp/scratch"]["ok"], writes
    client.delete(svc["name"])
