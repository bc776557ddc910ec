"""Health: the phase, the one-sentence message and the conditions of a service.

Phases follow the reference: deploying, running, concerning (serving, some replicas not
ready), failed, stopped. Health is its own axis next to sync (Argo CD): a service can be
serving fine while a rollout is under way or was rolled back.
"""

from __future__ import annotations

from services.registry.controller import conditions as c
from services.registry.controller.actions import Event
from services.registry.controller.builds import first_line
from services.registry.controller.pass_state import PassState
from services.registry.controller.traffic import counts_for, describe


def assess_health(p: PassState) -> None:
    """Set the phase and message, the ``Progressing``/``Stalled``/``Ready`` conditions, and
    an event when the phase changed."""
    pending = [r for r in p.of(p.target) if r.state == "pending"]
    if pending:
        p.conditions.append(c.condition(c.PROGRESSING, False, "NoCapacity",
                                        f"replica {pending[0].id} is pending: "
                                        f"{pending[0].message}", p.prev_conditions))
    if p.stopped:
        p.phase, p.message = _stopped(p)
    elif p.total == 0 and p.auto is not None:
        p.phase = c.RUNNING
        p.message = ("scaled to zero (no requests for the idle timeout); the next request "
                     "starts a replica and waits for it")
    elif p.total == 0:
        p.phase, p.message = c.STOPPED, "the service has 0 replicas"
    elif p.effective and p.serving_ready():
        p.phase, p.message = _serving(p)
    elif p.effective:
        p.phase, p.message = _none_ready(p)
    else:
        p.phase, p.message = _not_serving(p)
    if p.changing and not any(cd["type"] == c.PROGRESSING for cd in p.conditions):
        p.conditions.append(c.condition(c.PROGRESSING, True, "RollingOut", p.message,
                                        p.prev_conditions))
    p.conditions.append(c.condition(c.READY, p.phase == c.RUNNING, p.phase.capitalize(),
                                    p.message, p.prev_conditions))
    if p.phase != p.status.get("phase"):
        p.actions.append(Event(f"Phase{p.phase.capitalize()}", p.message, p.target,
                               warning=p.phase in (c.FAILED, c.CONCERNING)))


def _stopped(p: PassState) -> tuple[str, str]:
    """Stopped on purpose: say how to start it, or how many replicas still drain."""
    going = [r for r in p.replicas if r.state == "draining"] + [
        r for r in p.live if r.state != "stopped"]
    return c.STOPPED, ("stopped; `modelport start` starts it again" if not going else
                       f"stopping: {len(going)} replica(s) finishing their requests")


def _serving(p: PassState) -> tuple[str, str]:
    """Something serves: running, or concerning when a serving version is short of
    replicas; the message tells a rollout under way or rolled back."""
    # concerning: a replica of a serving version is unwell (crashed, failing its probes,
    # cannot be placed); one still starting for a scale-up is not
    short = [v for v in p.effective if any(
        r.state in ("restarting", "failed", "unready")
        or (r.state != "ready" and r.restarts > 0) for r in p.of(v)) or (
        p.placement_note and len(p.of(v)) < counts_for(p.effective, p.total).get(v, 1))]
    phase = c.CONCERNING if short else c.RUNNING
    message = f"{len(p.serving_ready())} replica(s) of {describe(p.effective)} ready"
    if short:
        why = [r.message for v in short for r in p.of(v) if r.state != "ready" and r.message]
        message += f"; {describe({v: p.effective[v] for v in short})} short of replicas" + (
            f": {why[0]}" if why else "")
    if p.changing and p.building:
        message = (f"building the environment for {describe(p.desired)}; "
                   f"{describe(p.effective)} keeps serving")
    elif p.changing:
        message = (f"rolling out {describe(p.desired)} ({_ready_new(p)}/"
                   f"{sum(p.counts.values())} replicas ready); {describe(p.effective)} keeps "
                   "serving")
    if p.rollback:
        message = (f"update failed and was rolled back: {p.rollback['reason']}; still "
                   f"serving {describe(p.effective)}")
        p.conditions.append(c.condition(c.STALLED, True, "RolledBack",
                                        "fix the package or spec, then update again",
                                        p.prev_conditions))
    return phase, message


def _none_ready(p: PassState) -> tuple[str, str]:
    """A version serves but none of its replicas is ready: a cold start, all failed, or
    concerning."""
    mine = [r for r in p.live if r.version in p.effective]
    why = next((r.message for r in mine if r.message), "")
    if p.auto is not None and all(r.state in ("starting", "pending") and not r.restarts
                                  for r in mine):
        # scaled up from zero: the first requests wait for it
        return c.RUNNING, (f"cold start: starting {max(1, len(mine))} replica(s) of "
                           f"{describe(p.effective)}")
    if mine and all(r.state == "failed" for r in mine):
        return c.FAILED, f"every replica of {describe(p.effective)} failed: {why}"
    return c.CONCERNING, f"no replica of {describe(p.effective)} is ready" + (
        f": {why}" if why else "")


def _not_serving(p: PassState) -> tuple[str, str]:
    """Nothing serves yet: what blocks the first deploy (``Stalled`` when the user must
    act), or how far it got."""
    if p.missing:
        message = (f"version {p.missing[0]} of model {p.spec.model!r} does not exist; "
                   "point spec.version at an existing version or upload a package")
        p.conditions.append(c.condition(c.STALLED, True, "VersionMissing", message,
                                        p.prev_conditions))
        return c.FAILED, message
    if p.build_failed:
        v, err = next(iter(p.build_failed.items()))
        p.conditions.append(c.condition(c.STALLED, True, "BuildFailed",
                                        "fix requirements.txt and update the service",
                                        p.prev_conditions))
        return c.FAILED, f"version {v} failed to build: {first_line(err)}"
    if p.building:
        message = f"building the environment for {describe(p.desired)}"
        p.conditions.append(c.condition(c.PROGRESSING, True, "Building", message,
                                        p.prev_conditions))
        return c.DEPLOYING, message
    if p.failures:
        p.conditions.append(c.condition(c.STALLED, True, "ReplicaFailed", p.failures[0],
                                        p.prev_conditions))
        return c.FAILED, p.failures[0]
    message = (f"starting {describe(p.desired)}: {_ready_new(p)}/{sum(p.counts.values())} "
               "replicas ready")
    if p.placement_note:
        message += f"; {p.placement_note}"
    return c.DEPLOYING, message


def _ready_new(p: PassState) -> int:
    return sum(len(p.ready_of(v, p.want_template)) for v in p.desired)
