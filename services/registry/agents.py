"""The runtime agents this registry knows: registered by heartbeat, lost when silent.

Each runtime (one per host) heartbeats its address and capacity
(``services/runtime/agent.py``). An agent is *live* while its last heartbeat is younger
than the TTL; the controller places replicas only on live agents and treats the
replicas of a lost agent as gone (they are started elsewhere, with events). The
registry's own ``runtime_address`` (what ``modelport up`` starts) is a configured agent:
live without heartbeats, so a single-host platform needs none; when it does heartbeat
(same address), its capacity is taken from there.

Kept in memory: after a registry restart every agent registers again with its next
heartbeat, within one interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from modelport.v1 import agents_pb2, agents_pb2_grpc, runtime_pb2
from services.registry.controller.placement import AgentView
from services.rpc.errors import translate_errors

log = logging.getLogger(__name__)


@dataclass
class AgentRecord:
    id: str
    address: str
    capacity: runtime_pb2.Capacity = field(default_factory=runtime_pb2.Capacity)
    max_replicas: int = 0
    replicas: int = 0
    last_seen: float = 0.0
    registered_at: float = 0.0
    started_at: float = 0.0
    configured: bool = False
    heard: bool = False  # it has heartbeated (its capacity is known)

    def view(self) -> AgentView:
        runtimes = tuple(self.capacity.runtimes) if self.heard else ()
        gpus = len(self.capacity.gpus) if self.heard else -1
        return AgentView(self.address, self.id, self.max_replicas, gpus, runtimes)


class AgentTable:
    def __init__(self, configured_address: str = "", ttl_s: float = 5.0,
                 interval_s: float = 1.0, clock: Callable[[], float] = time.time,
                 on_change: Callable[[], None] = lambda: None) -> None:
        self.ttl_s = ttl_s
        self.interval_s = interval_s
        self.clock = clock
        self.on_change = on_change  # wakes the controller: an agent came or went
        self._agents: dict[str, AgentRecord] = {}
        self._lost: set[str] = set()
        if configured_address and configured_address != "none":
            now = clock()
            self._agents[configured_address] = AgentRecord(
                id="local", address=configured_address, configured=True, registered_at=now)

    def heartbeat(self, hb: agents_pb2.AgentHeartbeat) -> agents_pb2.HeartbeatAck:
        now = self.clock()
        rec = self._agents.get(hb.address)
        new = rec is None or hb.address in self._lost or (
            rec.heard and rec.started_at and hb.started_at != rec.started_at)
        if rec is None:
            rec = self._agents[hb.address] = AgentRecord(id=hb.id or hb.address,
                                                         address=hb.address, registered_at=now)
        rec.id = hb.id or rec.id
        rec.capacity.CopyFrom(hb.capacity)
        rec.max_replicas = hb.max_replicas
        rec.replicas = hb.replicas
        rec.started_at = hb.started_at
        rec.last_seen = now
        rec.heard = True
        self._lost.discard(hb.address)
        if new:
            log.info("runtime agent %s registered at %s", rec.id, rec.address)
            self.on_change()
        return agents_pb2.HeartbeatAck(interval_s=self.interval_s, ttl_s=self.ttl_s)

    def is_live(self, rec: AgentRecord, now: float | None = None) -> bool:
        if rec.configured and not rec.heard:
            return True
        now = self.clock() if now is None else now
        return rec.configured or now - rec.last_seen <= self.ttl_s

    def live(self) -> list[AgentRecord]:
        """Agents to observe and place on; notes agents that just went silent."""
        now = self.clock()
        out = []
        for rec in self._agents.values():
            if self.is_live(rec, now):
                out.append(rec)
            elif rec.address not in self._lost:
                self._lost.add(rec.address)
                log.warning("runtime agent %s at %s lost: no heartbeat for %.1fs", rec.id,
                            rec.address, now - rec.last_seen)
        return out

    def get(self, address: str) -> AgentRecord | None:
        return self._agents.get(address)

    def all(self) -> list[tuple[AgentRecord, bool]]:
        now = self.clock()
        return [(rec, self.is_live(rec, now)) for rec in self._agents.values()]


class AgentsServicer(agents_pb2_grpc.AgentsServicer):
    def __init__(self, table: AgentTable) -> None:
        self.table = table

    @translate_errors
    async def Heartbeat(self, request: agents_pb2.AgentHeartbeat,
                        context: grpc.aio.ServicerContext) -> agents_pb2.HeartbeatAck:
        if not request.address:
            from modelport.errors import invalid

            raise invalid("agent.address_missing", "a heartbeat must say where the agent "
                          "listens", "set MODELPORT_RUNTIME_ADVERTISE or --listen")
        return self.table.heartbeat(request)

    @translate_errors
    async def ListAgents(self, request: agents_pb2.ListAgentsRequest,
                         context: grpc.aio.ServicerContext) -> agents_pb2.ListAgentsResponse:
        return agents_pb2.ListAgentsResponse(agents=[agents_pb2.Agent(
            id=rec.id, address=rec.address, capacity=rec.capacity,
            max_replicas=rec.max_replicas, replicas=rec.replicas, last_seen=rec.last_seen,
            state="ready" if live else "lost", registered_at=rec.registered_at,
            configured=rec.configured) for rec, live in self.table.all()])
