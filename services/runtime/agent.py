"""This runtime as an agent of a registry: register, then heartbeat, for as long as it runs.

Each heartbeat carries where the registry and gateways reach this runtime, what it can
run replicas on (CPUs, memory, GPUs, backends: ``capacity.py``) and how many replicas it
holds. The registry's controller places replicas only on agents it heard from within
its TTL; an agent that goes silent is lost and its replicas are started elsewhere
(``services/registry/agents.py``). A registry that is down or restarting is simply
retried: the first heartbeat after it is back registers the agent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc

from modelport.v1 import agents_pb2, agents_pb2_grpc, runtime_pb2
from services.rpc.server import channel
from services.runtime import capacity

log = logging.getLogger(__name__)

#: how often the (slower to gather) capacity report is refreshed between heartbeats
CAPACITY_REFRESH_S = 15.0


class AgentClient:
    def __init__(self, registry_address: str, agent_id: str, address: str, supervisor: Any,
                 max_replicas: int = 0, interval_s: float = 1.0) -> None:
        self.registry_address = registry_address
        self.agent_id = agent_id or address
        self.address = address
        self.supervisor = supervisor
        self.max_replicas = max_replicas
        self.interval_s = interval_s
        self.started_at = time.time()
        self.registered = asyncio.Event()
        self._capacity: runtime_pb2.Capacity | None = None
        self._capacity_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._channel: grpc.aio.Channel | None = None

    async def _current_capacity(self) -> runtime_pb2.Capacity:
        if self._capacity is None or time.monotonic() - self._capacity_at > CAPACITY_REFRESH_S:
            try:
                self._capacity = await capacity.report(self.supervisor)
            except Exception:  # noqa: BLE001 - a heartbeat without capacity beats none
                log.exception("could not gather this runtime's capacity")
                self._capacity = self._capacity or runtime_pb2.Capacity()
            self._capacity_at = time.monotonic()
        return self._capacity

    def heartbeat(self, cap: runtime_pb2.Capacity) -> agents_pb2.AgentHeartbeat:
        live = sum(1 for r in self.supervisor.list() if r.state != "stopped")
        return agents_pb2.AgentHeartbeat(id=self.agent_id, address=self.address, capacity=cap,
                                         max_replicas=self.max_replicas, replicas=live,
                                         started_at=self.started_at)

    async def run(self) -> None:
        self._channel = channel(self.registry_address)
        stub = agents_pb2_grpc.AgentsStub(self._channel)
        failing = False
        while True:
            wait = self.interval_s
            try:
                ack = await stub.Heartbeat(self.heartbeat(await self._current_capacity()),
                                           timeout=max(2.0, self.interval_s * 2))
                if failing or not self.registered.is_set():
                    log.info("registered with the registry at %s as agent %s (%s)",
                             self.registry_address, self.agent_id, self.address)
                failing = False
                self.registered.set()
                if ack.interval_s > 0:
                    wait = min(self.interval_s, ack.interval_s)
            except grpc.aio.AioRpcError as err:
                if not failing:
                    log.warning("heartbeat to the registry at %s failed (%s); retrying",
                                self.registry_address, err.code().name)
                failing = True
            await asyncio.sleep(wait)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="agent-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._channel is not None:
            await self._channel.close()


def advertised(listen: str, bound_port: int, advertise: str = "") -> str:
    """The address others reach this runtime at: ``advertise``, else ``listen`` with the
    port it actually bound (``127.0.0.2:0`` -> ``127.0.0.2:41234``)."""
    if advertise:
        return advertise
    if listen.startswith("unix:"):
        return listen
    host, _, port = listen.rpartition(":")
    if port == "0" and bound_port:
        return f"{host}:{bound_port}"
    return listen
