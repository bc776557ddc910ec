"""`modelport up --ray ADDRESS` on a real Ray cluster of three nodes on loopback (a head and
two nodes, `ray.cluster_utils.Cluster`): a runtime per Ray node (the node id is the
agent's id), a 2-replica service spread over two nodes, and a node removed under load:
only requests in flight may fail, and the replicas are back on the other nodes without a
person, within a minute."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningPlatform, start_platform
from tests.e2e.packages import predictor
from tests.hosts.test_agents import agents
from tests.rollout.load import Load, wait_until

pytestmark = pytest.mark.slow

CODE = """
import os

class Predictor:
    def predict(self, text):
        return {"text": text, "pid": os.getpid()}
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    # every Ray process on loopback: the setting that keeps a one-machine cluster on
    # 127.0.0.1 (inherited by the platform, its fleet and the nodes' workers)
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(2):
        c.add_node(num_cpus=2)
    c.wait_for_nodes()
    yield c
    c.shutdown()
    os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)


@pytest.fixture(scope="module")
def plat(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    p = start_platform(tmp_path_factory.mktemp("home"), "--ray", cluster.address,
                       env={"MODELPORT_REGISTRY_AGENT_TTL_S": "3"})
    yield p
    p.stop()


def _nodes(cluster: Any) -> dict[str, Any]:
    """Ray node id -> the cluster's handle of that node (head included)."""
    return {n.node_id: n for n in [cluster.head_node, *cluster.worker_nodes]}


def _replicas(client: Any, name: str, n: int) -> list[dict[str, Any]] | None:
    reps = [r for r in client.get(name)["replicas"] if r["state"] == "ready"]
    return reps if len(reps) == n else None


def test_a_runtime_per_ray_node(plat: RunningPlatform, cluster: Any) -> None:
    ids = set(_nodes(cluster))
    wait_until(lambda: {a.id for a in agents(plat) if a.state == "ready"} == ids, 90,
               "a runtime agent on every Ray node")


def test_replicas_spread_and_come_back_when_a_node_leaves(plat: RunningPlatform,
                                                          cluster: Any,
                                                          tmp_path: Path) -> None:
    import modelport

    nodes = _nodes(cluster)
    wait_until(lambda: {a.id for a in agents(plat) if a.state == "ready"} == set(nodes), 90,
               "a runtime agent on every Ray node")
    node_of = {a.address: a.id for a in agents(plat)}
    with modelport.Client(plat.url) as client:
        svc = client.create(predictor(tmp_path, "rayspread", CODE), name="rayspread",
                            wait=False)
        client.apply("rayspread", '{"metadata": {"name": "rayspread"}, '
                     '"spec": {"replicas": 2}}')
        placed = wait_until(lambda: _replicas(client, "rayspread", 2), 120, "two replicas")
        on = [node_of[r["agent"]] for r in placed]
        assert len(set(on)) == 2, on  # spread over two Ray nodes

        victim_id = next(n for n in on if n != cluster.head_node.node_id)
        with Load(svc["url"], {"text": "hi"}, workers=2) as load:
            load.wait_for(10)
            cluster.remove_node(nodes[victim_id])  # the node leaves, all it ran with it
            left = time.monotonic()
            moved = wait_until(lambda: (lambda reps: reps if reps and all(
                node_of.get(r["agent"]) not in (None, victim_id) for r in reps) else None)(
                    _replicas(client, "rayspread", 2)), 60, "replicas on the other nodes")
            back_s = time.monotonic() - left
            load.wait_for(10)
            tail = load.answers[-10:]
        assert len(moved) == 2 and back_s < 60
        assert not load.errors, load.errors[:5]
        failed = [a for a in load.answers if a.status != 200]
        assert len(failed) <= 2, failed[:5]  # at most the requests in flight (2 clients)
        assert all(a.status == 200 for a in tail), tail
        r = httpx.post(svc["url"], json={"text": "after"}, timeout=60)
        assert r.status_code == 200 and r.json()["data"]["text"] == "after"
        lost = [e for e in client.events("rayspread", limit=500)
                if e["reason"] == "ReplicaLost"]
        assert lost and "stopped answering" in lost[0]["message"]
        client.delete("rayspread")
