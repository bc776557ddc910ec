"""Carry out planned actions against the builder and the runtime; each one leaves an event."""

from __future__ import annotations

import json
import time
import uuid

from modelport.v1 import builder_pb2, builder_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from services.registry.controller.plan import Action, Event, StartBuild, StartReplica, StopReplica
from services.registry.store.base import EventRecord, ServiceRecord, Store

DEFAULT_TIMEOUT_S = 60.0


class Actor:
    def __init__(self, store: Store, builder: builder_pb2_grpc.BuilderStub,
                 runtime: runtime_pb2_grpc.RuntimeStub) -> None:
        self.store = store
        self.builder = builder
        self.runtime = runtime

    def event(self, svc: ServiceRecord, version: int, reason: str, message: str,
              warning: bool = False) -> None:
        self.store.add_event(EventRecord(time.time(), svc.name, svc.spec.get("model", svc.name),
                                         version, "Warning" if warning else "Normal", reason,
                                         message))

    async def run(self, svc: ServiceRecord, action: Action) -> None:
        model = svc.spec.get("model") or svc.name
        match action:
            case StartBuild(version=n):
                v = self.store.get_version(model, n)
                if v is None or v.state != "pending":
                    return
                b = await self.builder.StartBuild(builder_pb2.BuildRequest(
                    target="process", package_dir=v.package_dir, requirements=v.requirements,
                    python=v.python, label=f"{model}:{n}"), timeout=30)
                self.store.update_version(model, n, state="building", build_id=b.id)
                self.event(svc, n, "BuildStarted", f"version {n}: build {b.id} started")
            case StartReplica(version=n):
                v = self.store.get_version(model, n)
                if v is None:
                    return
                config = json.loads(v.config_json)
                env = {**config.get("env", {}), **svc.spec.get("env", {})}
                timeout = (svc.spec.get("timeout_s") or config.get("timeout_s")
                           or DEFAULT_TIMEOUT_S)
                rid = f"{svc.name}-v{n}-{uuid.uuid4().hex[:6]}"
                await self.runtime.StartReplica(runtime_pb2.StartReplicaRequest(
                    replica_id=rid, service=svc.name, version=n, kind=v.kind,
                    artifact=v.artifact, package_dir=v.package_dir, config_json=v.config_json,
                    env=env, timeout_s=float(timeout)), timeout=30)
                self.event(svc, n, "ReplicaStarting", f"replica {rid} of version {n} starting")
            case StopReplica(replica_id=rid, version=n, reason=why):
                await self.runtime.StopReplica(runtime_pb2.StopReplicaRequest(replica_id=rid),
                                               timeout=30)
                self.event(svc, n, "ReplicaStopped", f"replica {rid} stopped: {why}")
            case Event(reason=reason, message=message, version=n, warning=warning):
                self.event(svc, n, reason, message, warning)
