"""Decide what to do for one service: a pure function of desired and observed state.

No I/O here, so every rule is testable with plain data; rerunning on an unchanged
world yields no actions and the same status (idempotence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.registry.controller import conditions as c
from services.registry.store.base import VersionRecord

#: seconds old replicas keep answering after traffic moved (covers gateway route caches)
DRAIN_SECONDS = 3.0


@dataclass(frozen=True)
class ObservedReplica:
    id: str
    version: int
    state: str  # starting | ready | restarting | failed | stopped
    message: str = ""
    restarts: int = 0


@dataclass(frozen=True)
class StartBuild:
    version: int


@dataclass(frozen=True)
class StartReplica:
    version: int


@dataclass(frozen=True)
class StopReplica:
    replica_id: str
    version: int
    reason: str


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    version: int = 0
    warning: bool = False


Action = StartBuild | StartReplica | StopReplica | Event


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)


def plan_service(spec: dict[str, Any], generation: int, status: dict[str, Any],
                 versions: dict[int, VersionRecord], replicas: list[ObservedReplica],
                 now: float) -> Plan:
    out = Plan()
    prev_conditions = status.get("conditions", [])
    serving = int(status.get("serving_version", 0))
    switched_at = float(status.get("switched_at", 0.0))
    desired = int(spec.get("replicas", 1))
    target = int(spec.get("version") or 0) or (max(versions) if versions else 0)
    conds: list[dict[str, Any]] = []
    message = ""

    def by_version(v: int) -> list[ObservedReplica]:
        return [r for r in replicas if r.version == v and r.state != "stopped"]

    version = versions.get(target)
    if version is None:
        phase = c.FAILED
        message = (f"version {target} of model {spec.get('model')!r} does not exist; "
                   "point spec.version at an existing version or upload a package")
        conds.append(c.condition(c.STALLED, True, "VersionMissing", message, prev_conditions))
    elif version.state in ("pending", "building"):
        if version.state == "pending":
            out.actions.append(StartBuild(target))
        phase = c.DEPLOYING if not serving else c.RUNNING
        message = f"building the environment for version {target}"
        conds.append(c.condition(c.BUILT, False, "Building", message, prev_conditions))
        conds.append(c.condition(c.PROGRESSING, True, "Building", message, prev_conditions))
    elif version.state == "failed":
        first_line = version.error.splitlines()[0] if version.error else "unknown error"
        message = f"version {target} failed to build: {first_line}"
        conds.append(c.condition(c.BUILT, False, "BuildFailed", message, prev_conditions))
        conds.append(c.condition(c.STALLED, True, "BuildFailed",
                                 "fix requirements.txt and update the service", prev_conditions))
        if serving and any(r.state == "ready" for r in by_version(serving)):
            phase = c.RUNNING
            message += f"; still serving version {serving}"
        else:
            phase = c.FAILED
    else:  # ready to run
        conds.append(c.condition(c.BUILT, True, "Built", f"version {target} is built",
                                 prev_conditions))
        mine = by_version(target)
        ready = [r for r in mine if r.state == "ready"]
        for _ in range(desired - len(mine)):
            out.actions.append(StartReplica(target))
        if len(mine) > desired:
            extra = sorted(mine, key=lambda r: r.state == "ready")[: len(mine) - desired]
            out.actions += [StopReplica(r.id, target, "scaled down") for r in extra]
        if desired == 0:
            phase, message = c.STOPPED, "the service has 0 replicas"
            serving = 0
        elif len(ready) >= desired:
            if serving != target:
                out.actions.append(Event("TrafficSwitched",
                                         f"version {target} is ready and now serves all requests"
                                         + (f" (was version {serving})" if serving else ""),
                                         target))
                serving, switched_at = target, now
            phase, message = c.RUNNING, f"{len(ready)}/{desired} replicas of version {target} ready"
        else:
            failed = [r for r in mine if r.state == "failed"]
            reason = failed[0].message if failed else ""
            if serving and serving != target and any(r.state == "ready"
                                                     for r in by_version(serving)):
                phase = c.RUNNING
                message = (f"starting version {target} ({len(ready)}/{desired} ready); "
                           f"version {serving} keeps serving" + (f"; {reason}" if reason else ""))
                if failed and len(failed) == len(mine):
                    conds.append(c.condition(c.STALLED, True, "ReplicaFailed",
                                             f"version {target} failed to start: {reason}",
                                             prev_conditions))
            elif failed and len(failed) == len(mine):
                phase = c.FAILED
                message = f"replicas of version {target} failed to start: {reason}"
                conds.append(c.condition(c.STALLED, True, "ReplicaFailed", message,
                                         prev_conditions))
            elif serving == target:
                phase = c.CONCERNING
                message = f"{len(ready)}/{desired} replicas ready" + (f"; {reason}" if reason
                                                                     else "")
            else:
                phase = c.DEPLOYING
                message = f"starting version {target}: {len(ready)}/{desired} replicas ready"
        conds.append(c.condition(c.READY, phase == c.RUNNING, phase.capitalize(), message,
                                 prev_conditions))
        # drain, then stop replicas of versions that no longer serve
        if serving == target and now - switched_at >= DRAIN_SECONDS:
            for r in replicas:
                if r.version != target and r.state != "stopped":
                    out.actions.append(StopReplica(r.id, r.version,
                                                   f"version {target} replaced it"))

    if phase != status.get("phase"):
        out.actions.append(Event(f"Phase{phase.capitalize()}", message, target,
                                 warning=phase in (c.FAILED, c.CONCERNING)))
    ready_count = sum(1 for r in by_version(serving) if r.state == "ready") if serving else 0
    out.status = {
        "phase": phase,
        "serving_version": serving,
        "target_version": target,
        "ready_replicas": ready_count,
        "observed_generation": generation,
        "message": message,
        "conditions": conds,
        "switched_at": switched_at,
    }
    return out
