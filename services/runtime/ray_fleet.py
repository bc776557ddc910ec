"""Runtimes on a Ray cluster's nodes: node membership comes from Ray (`up --ray ADDRESS`).

``python -m services.runtime.ray_fleet --home DIR --address RAY --registry ADDR``, started
by the launcher in place of its own runtime. A reconcile loop, once a second, compares
Ray's alive nodes with the runtimes it runs:

- a node without one gets a ``NodeRuntime`` actor pinned to it (a hard node-affinity
  strategy, no CPU of its own so it never competes with models), which starts
  ``python -m services.runtime`` there as an agent of the registry, named after the Ray
  node id and advertising the node's address;
- a node that Ray reports dead takes its actor with it, and the actor's runtime (it dies
  with its parent: PR_SET_PDEATHSIG) and the runtime's workers (they exit when their
  runtime's socket closes). The registry sees the agent fall silent, records
  ``ReplicaLost`` and places the replicas on the other nodes' runtimes: no person needed.

Placement among the runtimes is the registry's (spread first, docs/serving.md). The actors
are detached and named, so a restarted fleet process adopts the runtimes that still run
instead of starting new ones; ``stop`` (SIGTERM from the launcher) ends them all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("modelport.ray_fleet")

#: seconds between two comparisons of Ray's nodes with the runtimes
RECONCILE_S = 1.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the runtime's child: SIGKILL when the actor's process goes (a removed node)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class NodeRuntime:
    """A Ray actor on one node: it owns that node's modelport runtime process."""

    def __init__(self, node_id: str, registry: str, home_root: str, source_root: str) -> None:
        self.node_id = node_id
        self.registry = registry
        self.home = Path(home_root) / f"node-{node_id[:16]}"
        self.source_root = source_root
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    def start(self) -> str:
        """Start the runtime (once); its advertised address."""
        if self.proc is not None and self.proc.poll() is None:
            return self.address
        import ray

        host = ray.util.get_node_ip_address()
        with socket.socket() as s:  # a free port on this node
            s.bind((host, 0))
            port = s.getsockname()[1]
        self.address = f"{host}:{port}"
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": self.source_root,
               "MODELPORT_RUNTIME_REGISTRY_ADDRESS": self.registry,
               "MODELPORT_RUNTIME_ADVERTISE": self.address,
               "MODELPORT_RUNTIME_AGENT_ID": self.node_id}
        for key in ("MODELPORT_READY_FD", "CUDA_VISIBLE_DEVICES"):
            env.pop(key, None)  # Ray's view of this actor's GPUs is not the runtime's
        logfile = (self.home / "runtime.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.runtime", "--home", str(self.home), "--listen",
             self.address], env=env, stdout=logfile, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        logfile.close()
        return self.address

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Fleet:
    """Ray's alive nodes <-> one NodeRuntime each (the reconcile loop's state)."""

    def __init__(self, address: str, registry: str, home: Path) -> None:
        import ray

        self.ray = ray
        # one namespace per platform home: two platforms on one cluster keep apart
        self.namespace = "modelport-" + hashlib.sha256(str(home).encode()).hexdigest()[:12]
        ray.init(address=address, namespace=self.namespace, log_to_driver=False,
                 logging_level=logging.WARNING)
        self.actor_cls = ray.remote(num_cpus=0, max_restarts=0)(NodeRuntime)
        self.registry = registry
        self.home_root = str(home / "ray-nodes")
        self.source_root = str(Path(__file__).resolve().parents[2])
        self.actors: dict[str, Any] = {}

    @staticmethod
    def _name(node_id: str) -> str:
        return f"runtime-{node_id}"

    def alive_nodes(self) -> set[str]:
        return {n["NodeID"] for n in self.ray.nodes() if n.get("Alive")}

    def reconcile(self) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = self.alive_nodes()
        for node_id in sorted(nodes - set(self.actors)):
            try:  # one this fleet started before it restarted
                actor = self.ray.get_actor(self._name(node_id))
            except ValueError:
                actor = self.actor_cls.options(
                    name=self._name(node_id), lifetime="detached",
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                ).remote(node_id, self.registry, self.home_root, self.source_root)
                log.info("node %s joined: starting its runtime", node_id)
            self.actors[node_id] = actor
        for node_id in sorted(set(self.actors) - nodes):
            log.warning("node %s left: its runtime and replicas go with it; the registry "
                        "places the replicas on the other nodes", node_id)
            with contextlib.suppress(Exception):
                self.ray.kill(self.actors[node_id])
            del self.actors[node_id]
        pending = {node_id: a.start.remote() for node_id, a in self.actors.items()}
        ready, _ = self.ray.wait(list(pending.values()), num_returns=len(pending),
                                 timeout=30)
        for node_id, ref in pending.items():
            if ref in ready:
                try:
                    self.ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - an actor lost with its node
                    log.warning("runtime on node %s did not start: %s", node_id, exc)
                    self.actors.pop(node_id, None)

    def stop(self) -> None:
        refs = []
        for actor in self.actors.values():
            with contextlib.suppress(Exception):
                refs.append(actor.stop.remote())
        with contextlib.suppress(Exception):
            self.ray.wait(refs, num_returns=len(refs), timeout=20)
        for actor in self.actors.values():
            with contextlib.suppress(Exception):
                self.ray.kill(actor)
        self.ray.shutdown()


async def run(fleet: Fleet) -> None:
    from services.rpc.server import notify_ready

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    first = True
    while not stop.is_set():
        started = time.monotonic()
        try:
            await asyncio.to_thread(fleet.reconcile)
        except Exception:  # noqa: BLE001 - the next pass tries again
            log.exception("reconcile with Ray failed; retrying")
        if first:
            notify_ready()
            first = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(),
                                   max(0.0, RECONCILE_S - (time.monotonic() - started)))
    await asyncio.to_thread(fleet.stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.runtime.ray_fleet")
    parser.add_argument("--home", required=True)
    parser.add_argument("--address", required=True, help="the Ray cluster (host:port)")
    parser.add_argument("--registry", required=True,
                        help="the registry's address, as the nodes reach it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        fleet = Fleet(args.address, args.registry, Path(args.home))
    except ImportError:
        log.error("Ray is not installed: pip install 'modelport[ray]'")
        return 2
    except Exception as exc:  # noqa: BLE001 - said once, plainly, then the launcher retries
        log.error("cannot join the Ray cluster at %s: %s (is `ray start --head` running "
                  "there?)", args.address, exc)
        return 1
    asyncio.run(run(fleet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
