"""Read what exists: replicas on the runtime, and finished builds from the builder."""

from __future__ import annotations

import logging
from collections import defaultdict

import grpc

from modelport.v1 import builder_pb2, builder_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from services.registry.controller.plan import ObservedReplica
from services.registry.metrics import METRICS
from services.registry.store.base import EventRecord, Store, VersionRecord

log = logging.getLogger(__name__)


async def replicas_by_service(runtime: runtime_pb2_grpc.RuntimeStub
                              ) -> dict[str, list[ObservedReplica]]:
    """All replicas the runtime holds, grouped by service. Raises AioRpcError when down."""
    resp = await runtime.ListReplicas(runtime_pb2.ListReplicasRequest(), timeout=5)
    out: dict[str, list[ObservedReplica]] = defaultdict(list)
    for r in resp.replicas:
        out[r.service].append(ObservedReplica(r.id, r.version, r.state, r.message, r.restarts))
    return out


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
        how = "reused a cached environment" if b.cached else "built the environment"
        _event(store, service, v, "Normal", "BuildSucceeded", f"version {v.number}: {how}")
    elif b.state == "failed":
        store.update_version(v.model, v.number, state="failed", error=b.error)
        _event(store, service, v, "Warning", "BuildFailed", f"version {v.number}: {b.error}")


def _event(store: Store, service: str, v: VersionRecord, type_: str, reason: str,
           message: str) -> None:
    import time

    store.add_event(EventRecord(time.time(), service, v.model, v.number, type_, reason, message))
