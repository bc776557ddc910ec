"""Replicas as the runtimes report them, and what a service status keeps of them.

The status keeps a note per live replica (restarts, state, why it waits), so a crash or a
container killed under the runtime is on the record even when it recovers between passes,
and the endpoints gateways route to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.registry.controller.actions import Action, Event

#: replica states that count towards a version's replicas (not on their way out)
GONE = ("stopped", "draining")


@dataclass(frozen=True)
class ObservedReplica:
    id: str
    version: int
    # starting | ready | unready | restarting | failed | pending | draining | stopped
    state: str
    message: str = ""
    restarts: int = 0
    agent: str = ""       # address of the runtime agent holding it
    template: str = ""    # what it was started from; "" (unknown) counts as current
    in_flight: int = 0
    last_exit: str = ""   # why it last died or failed, kept after it recovered


def replica_events(replicas: list[ObservedReplica], previous: dict[str, Any],
                   live_agents: set[str] | None = None
                   ) -> tuple[dict[str, Any], list[Action]]:
    """What each live replica was last seen doing, and an event for each new restart and
    each new reason a replica is pending (waiting for GPUs): so a crash or a container
    killed under the runtime is on the record even when it recovers between passes. A
    replica that vanished with its runtime agent (``live_agents`` no longer has it) is
    recorded as lost."""
    notes: dict[str, Any] = {}
    events: list[Action] = []
    seen = {r.id for r in replicas}
    for rid, before in previous.items():
        agent = (before or {}).get("agent")
        if rid not in seen and live_agents is not None and agent and agent not in live_agents:
            events.append(Event("ReplicaLost", f"replica {rid} is gone with runtime agent "
                                f"{agent}, which stopped answering; a replacement is placed "
                                "on another agent", int(before.get("version") or 0),
                                warning=True))
    for r in replicas:
        if r.state in GONE:
            continue
        before = previous.get(r.id) or {}
        note: dict[str, Any] = {"restarts": r.restarts, "state": r.state}
        if r.agent:
            note["agent"] = r.agent
            note["version"] = r.version
        if r.restarts > int(before.get("restarts", 0)):
            events.append(Event("ReplicaRestarted",
                                f"replica {r.id} restarted ({r.restarts} so far): "
                                f"{r.last_exit or r.message or 'its worker exited'}",
                                r.version, warning=True))
        if r.state == "pending":
            note["pending"] = r.message
            if before.get("pending") != r.message:
                events.append(Event("ReplicaPending", f"replica {r.id} is pending: {r.message}",
                                    r.version, warning=True))
        if r.state == "unready":
            note["unready"] = r.message
            if before.get("unready") != r.message:
                events.append(Event("ReplicaUnready", f"replica {r.id} is out of load "
                                    f"balancing: {r.message}", r.version, warning=True))
        notes[r.id] = note
    return notes, events


def endpoints(live: list[ObservedReplica], leaving: set[str]) -> list[dict[str, Any]]:
    """Ready and live replicas per (version, agent): what gateways route to. Replicas this
    pass stops (``leaving``) are left out, so no gateway routes to them."""
    counts: dict[tuple[int, str], list[int]] = {}
    for r in live:
        if r.id in leaving:
            continue
        here = counts.setdefault((r.version, r.agent), [0, 0])
        here[0] += r.state == "ready"
        here[1] += 1
    return [{"version": v, "agent": a, "ready": n[0], "live": n[1]}
            for (v, a), n in sorted(counts.items())]
