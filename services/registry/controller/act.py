"""Carry out planned actions against the builder and the runtime; each one leaves an event."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import grpc

from modelport.v1 import builder_pb2, builder_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from services.registry.controller.actions import (
    Action,
    Event,
    StartBuild,
    StartReplica,
    StopReplica,
)
from services.registry.service_spec import ServiceSpec
from services.registry.store.base import EventRecord, ServiceRecord, Store, VersionRecord
from services.rpc.errors import from_rpc_error


def runtime_of(spec: ServiceSpec, kind: str = "") -> str:
    """Where a version's replicas run, which is also what it is built into: the spec's
    runtime, except that a custom image package (kind ``image``) runs only on docker."""
    return "docker" if kind == "image" else spec.runtime or "process"


def custom_image(config: dict[str, Any]) -> tuple[str, str]:
    """A custom image package's (image reference, Dockerfile path): one of them is set."""
    image = config.get("image")
    if isinstance(image, str):
        return image, ""
    if isinstance(image, dict):
        return "", str(image.get("dockerfile") or "Dockerfile")
    return "", ""


def resources_of(spec: ServiceSpec, config: dict[str, Any]) -> dict[str, Any]:
    """config.json `resources`, each overridden by the service spec's when that is set."""
    merged = dict(config.get("resources") or {})
    merged.update({k: v for k, v in spec.resources.model_dump().items() if v})
    return merged


class Actor:
    def __init__(self, store: Store, builder: builder_pb2_grpc.BuilderStub,
                 runtime: runtime_pb2_grpc.RuntimeStub, runtime_address: str = "") -> None:
        self.store = store
        self.builder = builder
        self.runtime = runtime
        self.runtime_address = runtime_address
        self._stubs: dict[str, runtime_pb2_grpc.RuntimeStub] = {}

    def stub(self, address: str) -> runtime_pb2_grpc.RuntimeStub:
        """The Runtime of the agent at ``address`` ("" or the configured one: ``runtime``)."""
        if not address or address == self.runtime_address:
            return self.runtime
        stub = self._stubs.get(address)
        if stub is None:
            from services.rpc.server import channel

            stub = self._stubs[address] = runtime_pb2_grpc.RuntimeStub(channel(address))
        return stub

    def event(self, svc: ServiceRecord, version: int, reason: str, message: str,
              warning: bool = False) -> None:
        self.store.add_event(EventRecord(time.time(), svc.name, svc.spec.model or svc.name,
                                         version, "Warning" if warning else "Normal", reason,
                                         message))

    async def start_build(self, svc: ServiceRecord, model: str, v: VersionRecord) -> None:
        """Ask the builder for version `v`'s environment. A request the builder refuses as
        invalid (a Python that cannot be had, a bad base image name) fails the version at
        once with the reason: retrying the same request would only repeat the refusal."""
        config = json.loads(v.config_json)
        runtime = runtime_of(svc.spec, v.kind)
        base_image = config.get("base_image") or ""
        image, dockerfile = custom_image(config) if v.kind == "image" else ("", "")
        try:
            b = await self.builder.StartBuild(builder_pb2.BuildRequest(
                target=runtime, package_dir=v.package_dir, requirements=v.requirements,
                python=v.python, label=f"{model}:{v.number}", base_image=base_image,
                package_digest=v.digest, python_strict=bool(config.get("python_strict")),
                image=image, dockerfile=dockerfile),
                timeout=30)
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            why = from_rpc_error(err, "the builder")
            reason = why.message + (f"; {why.fix}" if why.fix else "")
            self.store.update_version(model, v.number, state="failed", error=reason)
            self.event(svc, v.number, "BuildFailed", f"version {v.number}: {reason}", True)
            return
        self.store.update_version(model, v.number, state="building", build_id=b.id)
        self.event(svc, v.number, "BuildStarted", f"version {v.number}: build {b.id} started")
        if b.warning:
            self.event(svc, v.number, "PythonSubstituted", f"version {v.number}: {b.warning}",
                       True)
        if base_image and runtime == "process":
            self.event(svc, v.number, "BaseImageIgnored",
                       f"version {v.number}: base_image {base_image} applies to the docker "
                       "runtime; the process runtime builds a virtualenv and ignores it")

    async def run(self, svc: ServiceRecord, action: Action) -> None:
        model = svc.spec.model or svc.name
        match action:
            case StartBuild(version=n):
                v = self.store.get_version(model, n)
                if v is None or v.state != "pending":
                    return
                await self.start_build(svc, model, v)
            case StartReplica(version=n, agent=agent, template=template):
                v = self.store.get_version(model, n)
                if v is None:
                    return
                config = json.loads(v.config_json)
                env = {**config.get("env", {}), **svc.spec.env}
                rid = f"{svc.name}-v{n}-{uuid.uuid4().hex[:6]}"
                res = resources_of(svc.spec, config)
                await self.stub(agent).StartReplica(runtime_pb2.StartReplicaRequest(
                    replica_id=rid, service=svc.name, version=n, kind=v.kind,
                    artifact=v.artifact, package_dir=v.package_dir, config_json=v.config_json,
                    env=env, timeout_s=svc.spec.request_timeout_s(config),
                    runtime=runtime_of(svc.spec, v.kind),
                    cpu=float(res.get("cpu") or 0), memory=str(res.get("memory") or ""),
                    gpu=int(res.get("gpu") or 0),
                    max_concurrency=svc.spec.concurrency or 1,
                    queue_size=svc.spec.queue_size, template=template),
                    timeout=30)
                where = f" on agent {agent}" if agent and agent != self.runtime_address else ""
                self.event(svc, n, "ReplicaStarting",
                           f"replica {rid} of version {n} starting{where}")
            case StopReplica(replica_id=rid, version=n, reason=why, agent=agent,
                             drain_s=drain_s):
                await self.stub(agent).StopReplica(runtime_pb2.StopReplicaRequest(
                    replica_id=rid, drain_s=drain_s), timeout=30)
                self.event(svc, n, "ReplicaStopped", f"replica {rid} stopped: {why}"
                           + (" (requests in flight finish first)" if drain_s else ""))
            case Event(reason=reason, message=message, version=n, warning=warning):
                self.event(svc, n, reason, message, warning)
