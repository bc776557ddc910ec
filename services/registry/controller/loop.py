"""Schedule reconcile passes: periodically, and at once when something changed.

Triggers only wake the loop; every pass re-reads the whole state, so a missed
or duplicated trigger never leaves a service behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc
from opentelemetry import context as otel_context

from modelport.v1 import builder_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from services.registry.agents import AgentTable
from services.registry.controller import observe
from services.registry.controller.act import Actor, runtime_of
from services.registry.controller.activity import Activity
from services.registry.controller.plan import plan_service
from services.registry.metrics import METRICS
from services.registry.store.base import ServiceRecord, Store
from services.telemetry import tracing

log = logging.getLogger(__name__)
_tracer = tracing.tracer("modelport.controller")


class ControllerLoop:
    def __init__(self, store: Store, builder: builder_pb2_grpc.BuilderStub,
                 runtime: runtime_pb2_grpc.RuntimeStub, interval_s: float = 0.5, *,
                 agents: AgentTable | None = None, activity: Activity | None = None,
                 runtime_address: str = "") -> None:
        self.store = store
        self.builder = builder
        self.runtime = runtime
        # the runtime agents replicas are placed on (services/registry/agents.py); without
        # a table, the one `runtime` is the only agent
        self.agents = agents or AgentTable(runtime_address or "local")
        self.activity = activity or Activity()
        self.actor = Actor(store, builder, runtime, runtime_address or "local")
        self.interval_s = interval_s
        self.started = time.monotonic()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def trigger(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="controller")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            try:
                await self.reconcile_all()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as err:
                log.warning("reconcile pass incomplete: %s %s", err.code().name, err.details())
            except Exception:
                log.exception("reconcile pass failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _act(self, svc: ServiceRecord, actions: list[Any]) -> None:
        for action in actions:
            name = type(action).__name__
            try:
                with tracing.span(_tracer, name, {"modelport.service": svc.name}):
                    await self.actor.run(svc, action)
                METRICS.actions.labels(name, "ok").inc()
            except grpc.aio.AioRpcError as err:
                METRICS.actions.labels(name, "failed").inc()
                self.actor.event(svc, 0, "ActionFailed", f"{name} failed: {err.details()}",
                                 True)

    async def reconcile_all(self) -> None:
        with METRICS.reconcile_seconds.time():
            await self._reconcile_all()

    async def _reconcile_all(self) -> None:
        world = await observe.observe_agents([a.view() for a in self.agents.live()],
                                             self.actor.stub)
        replicas = world.replicas
        services = self.store.list_services()
        # agents not heard from yet: every agent after a registry restart, for one TTL
        waiting = set(world.unreachable)
        if time.monotonic() - self.started < self.agents.ttl_s:
            known = {a.address for a in self.agents.live()}
            waiting |= {(note or {}).get("agent") for svc in services
                        for note in (svc.status.get("replicas") or {}).values()} - known - {
                            None, ""}
        for svc in services:
            if waiting and any((note or {}).get("agent") in waiting
                               for note in (svc.status.get("replicas") or {}).values()):
                continue  # an agent holding its replicas did not answer: decide next pass
            model = svc.spec.model or svc.name
            versions = {v.number: v for v in self.store.list_versions(model)}
            for v in versions.values():
                observe.match_runtime(self.store, v, runtime_of(svc.spec, v.kind))
                await observe.sync_build(self.store, self.builder, v, svc.name)
            versions = {v.number: v for v in self.store.list_versions(model)}
            plan = plan_service(svc.spec, svc.generation, svc.status, versions,
                                replicas.get(svc.name, []), time.time(), cluster=world.cluster,
                                load=world.loads.get(svc.name),
                                demand_at=self.activity.demand_at(svc.name), service=svc.name)
            if plan.actions:  # a pass that changes something is a trace of its own
                with tracing.span(_tracer, "reconcile", {
                        "modelport.service": svc.name, "modelport.generation": svc.generation,
                        "modelport.actions": [type(a).__name__ for a in plan.actions]},
                        context=otel_context.Context()):
                    await self._act(svc, plan.actions)
            status = {**plan.status, "updated_at": svc.status.get("updated_at", time.time())}
            if {k: v for k, v in status.items() if k != "updated_at"} != {
                    k: v for k, v in svc.status.items() if k != "updated_at"}:
                status["updated_at"] = time.time()
                self.store.update_status(svc.name, status)
        # replicas whose service is gone (deleted while the runtime was away)
        known = {s.name for s in services}
        for name, reps in replicas.items():
            if name not in known:
                self.activity.forget(name)
                for r in reps:
                    if r.state not in ("stopped", "draining"):
                        await self.actor.stub(r.agent).StopReplica(  # in the background
                            runtime_pb2.StopReplicaRequest(replica_id=r.id, drain_s=30),
                            timeout=30)
