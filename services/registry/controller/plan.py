"""Decide what to do for one service: a pure function of desired and observed state.

No I/O here, so every rule is testable with plain data; rerunning on an unchanged
world yields no actions and the same status (idempotence).

What a service wants is a traffic split (``spec.traffic``, or all of it to the target
version) over replicas started from the current spec (its *template*: env, resources,
concurrency ... and the last ``restart``). What serves is the split recorded in the
status (``traffic``) with the template it was reached with. A rollout starts the wanted
replicas next to the serving ones; once every wanted version has its replicas ready,
traffic switches at once and, after a drain (gateways' route caches expire, requests
in flight finish: the runtime drains a stopped replica), the replicas nothing routes to
are stopped. A rollout whose new replicas fail (setup error, startup probe, crash) or
that is not ready within ``deploy_timeout_s`` is rolled back: its replicas stop, what
served keeps serving, and the status remembers the failed generation so it is not
retried until the spec changes again. Phases follow the reference: deploying, running,
concerning (serving, some replicas not ready), failed, stopped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from services.registry.controller import autoscale
from services.registry.controller import conditions as c
from services.registry.controller.autoscale import Load
from services.registry.controller.placement import Cluster
from services.registry.store.base import VersionRecord

#: seconds old replicas keep answering after traffic moved (covers gateway route caches)
DRAIN_SECONDS = 3.0
#: a rollout not ready this long after its builds finished is rolled back (the reference's
#: deploy timeout: 20 minutes by default)
DEFAULT_DEPLOY_TIMEOUT_S = 1200.0
#: replica states that count towards a version's replicas (not on their way out)
_GONE = ("stopped", "draining")


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


@dataclass(frozen=True)
class StartBuild:
    version: int


@dataclass(frozen=True)
class StartReplica:
    version: int
    agent: str = ""       # runtime agent address; "" = the registry's own runtime
    template: str = ""


@dataclass(frozen=True)
class StopReplica:
    replica_id: str
    version: int
    reason: str
    agent: str = ""
    drain_s: float = 0.0  # > 0: requests in flight finish first (the runtime drains it)


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


def template_of(spec: dict[str, Any]) -> str:
    """Digest of what a replica is started from; a change rolls the replicas."""
    keys = {k: spec.get(k) for k in ("runtime", "env", "resources", "concurrency",
                                      "queue_size")}
    keys["restarted_at"] = (spec.get("lifecycle") or {}).get("restarted_at", 0)
    return hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()
                          ).hexdigest()[:12]


def split_of(items: Any) -> dict[int, float]:
    """``[{version, percent}, ...]`` -> ``{version: percent}`` (shares above 0 only)."""
    out: dict[int, float] = {}
    for t in items or []:
        if float(t.get("percent") or 0) > 0:
            out[int(t["version"])] = float(t["percent"])
    return out


def describe(split: dict[int, float]) -> str:
    if len(split) == 1:
        return f"version {next(iter(split))}"
    return ", ".join(f"version {v} {p:g}%" for v, p in sorted(split.items()))


def primary(split: dict[int, float]) -> int:
    return max(split, key=lambda v: (split[v], v)) if split else 0


def counts_for(split: dict[int, float], total: int) -> dict[int, int]:
    """Replicas per version: all of them for one version; by share (at least 1) for several."""
    if total <= 0:
        return {v: 0 for v in split}
    if len(split) == 1:
        return {v: total for v in split}
    return {v: max(1, round(total * p / 100.0)) for v, p in split.items()}


def plan_service(spec: dict[str, Any], generation: int, status: dict[str, Any],
                 versions: dict[int, VersionRecord], replicas: list[ObservedReplica],
                 now: float, *, cluster: Cluster | None = None, load: Load | None = None,
                 demand_at: float = 0.0, service: str = "") -> Plan:
    out = Plan()
    act = out.actions
    prev_conditions = status.get("conditions", [])
    conds: list[dict[str, Any]] = []
    live = [r for r in replicas if r.state not in _GONE]
    stopped = bool((spec.get("lifecycle") or {}).get("stopped"))
    template = template_of(spec)
    drain_s = float(spec.get("timeout_s") or 60.0)

    # what serves now (older statuses knew only serving_version)
    if "traffic" in status:
        effective = split_of(status["traffic"])
    else:
        old = int(status.get("serving_version", 0))
        effective = {old: 100.0} if old else {}
    serving_template = str(status.get("template") or template)
    switched_at = float(status.get("switched_at", 0.0))
    rollback = status.get("rollback")
    if not rollback or rollback.get("generation") != generation:
        rollback = None

    # what is wanted
    desired = split_of(spec.get("traffic"))
    if not desired:
        desired = {int(spec.get("version") or 0) or (max(versions) if versions else 0): 100.0}
    target = primary(desired)
    want_template = template
    if rollback and effective:  # this generation failed: hold on to what serves
        desired, want_template = dict(effective), serving_template

    # how many replicas
    auto = autoscale.settings(spec)
    auto_state: dict[str, Any] | None = None
    if stopped:
        total = 0
    elif auto is not None:
        decision = autoscale.decide(auto, status.get("autoscale") or {}, load or Load(),
                                    demand_at, now)
        total, auto_state = decision.replicas, decision.state
        if decision.event:
            act.append(Event(*decision.event, target))
    else:
        total = int(spec.get("replicas", 1))
    counts = counts_for(desired, total)

    def of(v: int, tmpl: str | None = None) -> list[ObservedReplica]:
        return [r for r in live if r.version == v and (tmpl is None or r.template in ("", tmpl))]

    def ready_of(v: int, tmpl: str | None = None) -> list[ObservedReplica]:
        return [r for r in of(v, tmpl) if r.state == "ready"]

    # builds
    missing, build_failed, building = build_state(desired, versions)
    if not stopped:
        act += [StartBuild(v) for v in building if versions[v].state == "pending"]
    built = not missing and not build_failed and not building

    # is a rollout under way, and has it failed?
    changing = not stopped and total > 0 and (desired != effective
                                              or want_template != serving_template)
    rollout = status.get("rollout") if changing else None
    started_event: tuple[int, Event] | None = None
    if changing and (not rollout or rollout.get("generation") != generation):
        rollout = {"generation": generation, "started_at": now}
        started_event = (len(act), Event(
            "UpdateStarted", f"updating the service: {describe(desired)}"
            + (f" (serving {describe(effective)})" if desired != effective
               else " with replicas from the new spec"), target) if effective else Event(
            "DeployStarted", f"deploying {describe(desired)}", target))
    if rollout is not None and built and not rollout.get("built_at"):
        rollout = {**rollout, "built_at": now}
    failures: list[str] = []
    if changing:
        failures += [f"version {v} does not exist" for v in missing]
        failures += [f"version {v} failed to build: {_first_line(e)}"
                     for v, e in build_failed.items()]
        new = [v for v in desired if v not in effective or want_template != serving_template]
        for v in new:
            for r in of(v, want_template):
                if r.state == "failed":
                    failures.append(f"replica {r.id} of version {v} failed: {r.message}")
                elif r.restarts > 0 and r.state != "ready":
                    failures.append(f"replica {r.id} of version {v} crashed before it was "
                                    f"ready: {r.message}")
        limit = float(spec.get("deploy_timeout_s") or DEFAULT_DEPLOY_TIMEOUT_S)
        if rollout and rollout.get("built_at") and now - rollout["built_at"] > limit and \
                not failures:
            failures.append(f"deploy timeout: not ready {limit:g}s after the build")
            if not rollout.get("timed_out"):
                rollout = {**rollout, "timed_out": True}
                act.append(Event("DeployTimeout", f"deploying timeout: {describe(desired)} "
                                 f"not ready within {limit:g}s", target, warning=True))
    serving_ready = [r for r in live if r.version in effective and r.state == "ready"]
    if failures and effective and serving_ready:  # roll back: what serves keeps serving
        reason = failures[0] + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
        act.append(Event("UpdateFailed", f"failed to update the service: {reason}; "
                         "rolling back", target, warning=True))
        for v in desired:
            for r in of(v, want_template):
                if v not in effective or (want_template != serving_template
                                          and r.template == want_template):
                    act.append(StopReplica(r.id, r.version, "rolled back", r.agent, drain_s))
        act.append(Event("RolledBack", f"rollback succeeded: {describe(effective)} keeps "
                         "serving; fix the package or spec and update again", target))
        rollback = {"generation": generation, "reason": reason, "target": target}
        desired, want_template, changing, rollout = dict(effective), serving_template, False, None
        counts = counts_for(desired, total)
        missing, build_failed, building = build_state(desired, versions)
        built = not missing and not build_failed and not building
        live = [r for r in live if not any(isinstance(a, StopReplica) and a.replica_id == r.id
                                           for a in act)]

    if building:
        conds.append(c.condition(c.BUILT, False, "Building",
                                 f"building the environment for {describe(desired)}",
                                 prev_conditions))
    elif build_failed:
        v, err = next(iter(build_failed.items()))
        conds.append(c.condition(c.BUILT, False, "BuildFailed",
                                 f"version {v} failed to build: {_first_line(err)}",
                                 prev_conditions))
    elif built:
        conds.append(c.condition(c.BUILT, True, "Built", f"{describe(desired)} built",
                                 prev_conditions))

    # replicas: start what is missing, stop extras
    placement_note = ""
    if stopped:
        act += [StopReplica(r.id, r.version, "the service was stopped", r.agent, drain_s)
                for r in live]
    elif built:
        for v, n in counts.items():
            if v not in versions or versions[v].state != "ready":
                continue
            mine = of(v, want_template)
            for _ in range(n - len(mine)):
                agent = ""
                if cluster is not None:
                    chosen, why = cluster.place(service, str(spec.get("runtime") or "process"),
                                                int((spec.get("resources") or {}).get("gpu")
                                                    or 0))
                    if chosen is None:
                        placement_note = why
                        break
                    agent = chosen.address
                act.append(StartReplica(v, agent, want_template))
            if len(mine) > n:
                extra = sorted(mine, key=lambda r: (r.state == "ready", r.id))[: len(mine) - n]
                act += [StopReplica(r.id, v, "scaled down", r.agent, drain_s) for r in extra]
    if placement_note:
        conds.append(c.condition(c.PROGRESSING, False, "NoCapacity", placement_note,
                                 prev_conditions))
        if status.get("unschedulable") != placement_note:
            act.append(Event("ScheduleFailed", f"schedule failed: {placement_note}; "
                             "retrying", target, warning=True))

    # switch traffic once every wanted version has its replicas ready
    complete = built and total > 0 and not stopped and all(
        len(ready_of(v, want_template)) >= counts[v] for v in desired)
    if complete and (desired != effective or want_template != serving_template):
        if desired != effective:
            act.append(Event("TrafficSwitched", f"{describe(desired)} ready: traffic now goes "
                             f"to {describe(desired)}"
                             + (f" (was {describe(effective)})" if effective else ""), target))
        if want_template != serving_template and effective:
            act.append(Event("ReplicasReplaced", "every replica now runs the current spec",
                             target))
        effective, serving_template, switched_at = dict(desired), want_template, now
        changing, rollout = False, None
    if stopped:
        effective = {}
    if started_event is not None and changing:  # a rollout that did not finish at once
        act.insert(*started_event)

    # stop what nothing routes to, after the drain
    if not stopped and effective and now - switched_at >= DRAIN_SECONDS:
        stopping = {a.replica_id for a in act if isinstance(a, StopReplica)}
        for r in live:
            keep = (r.version in effective and r.template in ("", serving_template)) or (
                r.version in desired and r.template in ("", want_template))
            if not keep and r.id not in stopping:
                why = (f"{describe(effective)} replaced it" if r.version not in effective
                       else "replaced by a replica of the current spec")
                act.append(StopReplica(r.id, r.version, why, r.agent, drain_s))

    # phase and message
    serving_ready = [r for r in live if r.version in effective and r.state == "ready"]
    pending = [r for r in of(target) if r.state == "pending"]
    if pending:
        conds.append(c.condition(c.PROGRESSING, False, "NoCapacity",
                                 f"replica {pending[0].id} is pending: {pending[0].message}",
                                 prev_conditions))
    if stopped:
        going = [r for r in replicas if r.state == "draining"] + [
            r for r in live if r.state != "stopped"]
        phase = c.STOPPED
        message = ("stopped; `modelport start` starts it again" if not going else
                   f"stopping: {len(going)} replica(s) finishing their requests")
    elif total == 0 and auto is not None:
        phase = c.RUNNING
        message = ("scaled to zero (no requests for the idle timeout); the next request "
                   "starts a replica and waits for it")
    elif total == 0:
        phase, message = c.STOPPED, "the service has 0 replicas"
    elif effective and serving_ready:
        # concerning: a replica of a serving version is unwell (crashed, failing its
        # probes, cannot be placed); one still starting for a scale-up is not
        short = [v for v in effective if any(
            r.state in ("restarting", "failed", "unready")
            or (r.state != "ready" and r.restarts > 0) for r in of(v)) or (
            placement_note and len(of(v)) < counts_for(effective, total).get(v, 1))]
        phase = c.CONCERNING if short else c.RUNNING
        message = f"{len(serving_ready)} replica(s) of {describe(effective)} ready"
        if short:
            why = [r.message for v in short for r in of(v) if r.state != "ready" and r.message]
            message += f"; {describe({v: effective[v] for v in short})} short of replicas" + (
                f": {why[0]}" if why else "")
        if changing and building:
            message = (f"building the environment for {describe(desired)}; "
                       f"{describe(effective)} keeps serving")
        elif changing:
            ready_new = sum(len(ready_of(v, want_template)) for v in desired)
            message = (f"rolling out {describe(desired)} ({ready_new}/{sum(counts.values())} "
                       f"replicas ready); {describe(effective)} keeps serving")
        if rollback:
            message = (f"update failed and was rolled back: {rollback['reason']}; still "
                       f"serving {describe(effective)}")
            conds.append(c.condition(c.STALLED, True, "RolledBack",
                                     "fix the package or spec, then update again",
                                     prev_conditions))
    elif effective:
        mine = [r for r in live if r.version in effective]
        why = next((r.message for r in mine if r.message), "")
        if auto is not None and all(r.state in ("starting", "pending") and not r.restarts
                                    for r in mine):
            phase = c.RUNNING  # scaled up from zero: the first requests wait for it
            message = (f"cold start: starting {max(1, len(mine))} replica(s) of "
                       f"{describe(effective)}")
        elif mine and all(r.state == "failed" for r in mine):
            phase = c.FAILED
            message = f"every replica of {describe(effective)} failed: {why}"
        else:
            phase = c.CONCERNING
            message = f"no replica of {describe(effective)} is ready" + (f": {why}" if why
                                                                        else "")
    elif missing:
        phase = c.FAILED
        message = (f"version {missing[0]} of model {spec.get('model')!r} does not exist; "
                   "point spec.version at an existing version or upload a package")
        conds.append(c.condition(c.STALLED, True, "VersionMissing", message, prev_conditions))
    elif build_failed:
        phase = c.FAILED
        v, err = next(iter(build_failed.items()))
        message = f"version {v} failed to build: {_first_line(err)}"
        conds.append(c.condition(c.STALLED, True, "BuildFailed",
                                 "fix requirements.txt and update the service", prev_conditions))
    elif building:
        phase, message = c.DEPLOYING, f"building the environment for {describe(desired)}"
        conds.append(c.condition(c.PROGRESSING, True, "Building", message, prev_conditions))
    elif failures:
        phase = c.FAILED
        message = failures[0]
        conds.append(c.condition(c.STALLED, True, "ReplicaFailed", message, prev_conditions))
    else:
        ready_new = sum(len(ready_of(v, want_template)) for v in desired)
        phase = c.DEPLOYING
        message = f"starting {describe(desired)}: {ready_new}/{sum(counts.values())} replicas ready"
        if placement_note:
            message += f"; {placement_note}"
    if changing and not any(cd["type"] == c.PROGRESSING for cd in conds):
        conds.append(c.condition(c.PROGRESSING, True, "RollingOut", message, prev_conditions))
    conds.append(c.condition(c.READY, phase == c.RUNNING, phase.capitalize(), message,
                             prev_conditions))
    if phase != status.get("phase"):
        act.append(Event(f"Phase{phase.capitalize()}", message, target,
                         warning=phase in (c.FAILED, c.CONCERNING)))

    notes, noted = replica_events(replicas, status.get("replicas", {}),
                                  cluster.addresses if cluster is not None else None)
    act += noted
    endpoints: dict[tuple[int, str], list[int]] = {}
    leaving = {a.replica_id for a in act if isinstance(a, StopReplica)}
    for r in live:
        if r.id in leaving:  # gateways must not route to what this pass stops
            continue
        counts_here = endpoints.setdefault((r.version, r.agent), [0, 0])
        counts_here[0] += r.state == "ready"
        counts_here[1] += 1
    serving = primary(effective)
    out.status = {
        "phase": phase,
        "serving_version": serving,
        "target_version": target,
        "ready_replicas": len(serving_ready),
        "desired_replicas": total,
        "observed_generation": generation,
        "message": message,
        "conditions": conds,
        "switched_at": switched_at,
        "replicas": notes,
        "traffic": [{"version": v, "percent": p} for v, p in sorted(effective.items())],
        "endpoints": [{"version": v, "agent": a, "ready": n[0], "live": n[1]}
                      for (v, a), n in sorted(endpoints.items())],
    }
    if effective:
        out.status["template"] = serving_template
    if rollback:
        out.status["rollback"] = rollback
    if rollout:
        out.status["rollout"] = rollout
    if auto_state is not None:
        out.status["autoscale"] = auto_state
    if placement_note:
        out.status["unschedulable"] = placement_note
    return out


def build_state(desired: dict[int, float], versions: dict[int, VersionRecord]
                ) -> tuple[list[int], dict[int, str], list[int]]:
    """The wanted versions that are missing, failed to build (with the error), building."""
    missing = [v for v in desired if v not in versions]
    failed = {v: versions[v].error for v in desired
              if v in versions and versions[v].state == "failed"}
    building = [v for v in desired
                if v in versions and versions[v].state in ("pending", "building")]
    return missing, failed, building


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text and text.splitlines() else "unknown error"


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
        if r.state in _GONE:
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
