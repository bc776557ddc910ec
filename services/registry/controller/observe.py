"""Read what exists: replicas and load on every runtime agent, and finished builds."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from modelport.v1 import builder_pb2, builder_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from services.registry.controller.autoscale import Load
from services.registry.controller.placement import AgentView, Cluster
from services.registry.controller.replicas import ObservedReplica
from services.registry.metrics import METRICS
from services.registry.store.base import EventRecord, Store, VersionRecord

log = logging.getLogger(__name__)


async def replicas_by_service(runtime: runtime_pb2_grpc.RuntimeStub, agent: str = ""
                              ) -> dict[str, list[ObservedReplica]]:
    """All replicas the runtime holds, grouped by service. Raises AioRpcError when down."""
    resp = await runtime.ListReplicas(runtime_pb2.ListReplicasRequest(), timeout=5)
    return _grouped(resp, agent)


def _grouped(resp: runtime_pb2.ListReplicasResponse, agent: str
             ) -> dict[str, list[ObservedReplica]]:
    out: dict[str, list[ObservedReplica]] = defaultdict(list)
    for r in resp.replicas:
        state = "draining" if r.draining and r.state != "stopped" else r.state
        out[r.service].append(ObservedReplica(r.id, r.version, state, r.message, r.restarts,
                                              agent, r.template, r.in_flight, r.last_exit))
    return out


@dataclass
class World:
    """What every live runtime agent holds, in one pass."""

    replicas: dict[str, list[ObservedReplica]] = field(default_factory=dict)
    loads: dict[str, Load] = field(default_factory=dict)
    #: live agents that did not answer this pass: their services are left as they were
    unreachable: set[str] = field(default_factory=set)
    cluster: Cluster = field(default_factory=lambda: Cluster([]))


async def observe_agents(agents: list[AgentView],
                         stub_for: Callable[[str], runtime_pb2_grpc.RuntimeStub]) -> World:
    """ListReplicas on every agent at once. Raises the error when none answers."""
    async def one(a: AgentView) -> runtime_pb2.ListReplicasResponse | grpc.aio.AioRpcError:
        try:
            return await stub_for(a.address).ListReplicas(runtime_pb2.ListReplicasRequest(),
                                                          timeout=5)
        except grpc.aio.AioRpcError as err:
            return err

    answers = await asyncio.gather(*(one(a) for a in agents))
    world = World()
    reachable: list[AgentView] = []
    errors: list[grpc.aio.AioRpcError] = []
    loads: dict[str, list[runtime_pb2.ServiceLoad]] = defaultdict(list)
    replicas: dict[str, list[ObservedReplica]] = defaultdict(list)
    for a, resp in zip(agents, answers, strict=True):
        if isinstance(resp, grpc.aio.AioRpcError):
            errors.append(resp)
            world.unreachable.add(a.address)
            continue
        reachable.append(a)
        for service, reps in _grouped(resp, a.address).items():
            replicas[service] += reps
        for ld in resp.loads:
            loads[ld.service].append(ld)
    if errors and not reachable:
        raise errors[0]
    world.replicas = dict(replicas)
    world.loads = {name: Load(sum(x.in_flight for x in ls), sum(x.queued for x in ls),
                              max(x.last_request_at for x in ls)) for name, ls in loads.items()}
    world.cluster = Cluster(reachable)
    held = {r.id: len(r.gpus) for resp in answers
            if not isinstance(resp, grpc.aio.AioRpcError) for r in resp.replicas}
    for service, reps in world.replicas.items():
        for r in reps:
            if r.state != "stopped":
                world.cluster.note(service, r.agent, held.get(r.id, 0))
    return world


def match_runtime(store: Store, v: VersionRecord, runtime: str) -> None:
    """A built version whose artifact is for another runtime (a venv's python is a path,
    an image is a tag) goes back to pending, so it is built for this one (cached when it
    was built for it before)."""
    if v.state != "ready" or not v.artifact:
        return
    built_for = "process" if v.artifact.startswith("/") else "docker"
    if built_for != runtime:
        store.update_version(v.model, v.number, state="pending", build_id="", artifact="")


async def sync_build(store: Store, builder: builder_pb2_grpc.BuilderStub, v: VersionRecord,
                     service: str) -> None:
    """Fold a finished build into its version record (building -> ready | failed)."""
    if v.state != "building" or not v.build_id:
        return
    try:
        b = await builder.GetBuild(builder_pb2.GetBuildRequest(id=v.build_id), timeout=5)
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            store.update_version(v.model, v.number, state="pending", build_id="")
        else:
            log.warning("builder unreachable while checking %s: %s", v.build_id, err.details())
        return
    if b.state in ("succeeded", "failed"):
        METRICS.observe_build(b.state, b.cached, b.started_at, b.finished_at)
    if b.state == "succeeded":
        store.update_version(v.model, v.number, state="ready", artifact=b.artifact, error="")
        what = "image" if b.target == "docker" else "environment"
        how = f"reused a cached {what}" if b.cached else f"built the {what}"
        _event(store, service, v, "Normal", "BuildSucceeded", f"version {v.number}: {how}")
    elif b.state == "failed":
        store.update_version(v.model, v.number, state="failed", error=b.error)
        _event(store, service, v, "Warning", "BuildFailed", f"version {v.number}: {b.error}")


def _event(store: Store, service: str, v: VersionRecord, type_: str, reason: str,
           message: str) -> None:
    store.add_event(EventRecord(time.time(), service, v.model, v.number, type_, reason, message))
