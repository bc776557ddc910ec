"""Rollouts: start the wanted replicas next to the serving ones, switch traffic once they
are all ready, and roll back a rollout whose new replicas fail or are not ready in time.

A rollback stops the new replicas, keeps what served serving, and remembers the failed
generation (``status.rollback``) so it is not retried until the spec changes again.
"""

from __future__ import annotations

from services.registry.controller.actions import Event, StopReplica
from services.registry.controller.builds import assess_builds, first_line
from services.registry.controller.diff import out_of_sync
from services.registry.controller.pass_state import PassState
from services.registry.controller.traffic import counts_for, describe

#: a rollout not ready this long after its builds finished is rolled back (the reference's
#: deploy timeout: 20 minutes by default)
DEFAULT_DEPLOY_TIMEOUT_S = 1200.0


def track_rollout(p: PassState) -> None:
    """Whether a rollout is under way, and its record: when it started (this generation),
    when its builds were done. Its start event waits until the end of the pass: a rollout
    that completes at once is only a switch."""
    p.changing = not p.stopped and p.total > 0 and out_of_sync(p)
    p.rollout = p.status.get("rollout") if p.changing else None
    if p.changing and (not p.rollout or p.rollout.get("generation") != p.generation):
        p.rollout = {"generation": p.generation, "started_at": p.now}
        p.started_event = (len(p.actions), _started(p))
    if p.rollout is not None and p.built and not p.rollout.get("built_at"):
        p.rollout = {**p.rollout, "built_at": p.now}


def _started(p: PassState) -> Event:
    if not p.effective:
        return Event("DeployStarted", f"deploying {describe(p.desired)}", p.target)
    return Event("UpdateStarted", f"updating the service: {describe(p.desired)}"
                 + (f" (serving {describe(p.effective)})" if p.desired != p.effective
                    else " with replicas from the new spec"), p.target)


def find_failures(p: PassState) -> None:
    """Why the rollout cannot succeed: a wanted version missing or failed to build, a new
    replica failed or crashed before it was ready, or the deploy timeout passed."""
    if not p.changing:
        return
    p.failures += [f"version {v} does not exist" for v in p.missing]
    p.failures += [f"version {v} failed to build: {first_line(e)}"
                   for v, e in p.build_failed.items()]
    new = [v for v in p.desired
           if v not in p.effective or p.want_template != p.serving_template]
    for v in new:
        for r in p.of(v, p.want_template):
            if r.state == "failed":
                p.failures.append(f"replica {r.id} of version {v} failed: {r.message}")
            elif r.restarts > 0 and r.state != "ready":
                p.failures.append(f"replica {r.id} of version {v} crashed before it was "
                                  f"ready: {r.message}")
    limit = p.spec.deploy_timeout_s or DEFAULT_DEPLOY_TIMEOUT_S
    rollout = p.rollout
    if rollout and rollout.get("built_at") and p.now - rollout["built_at"] > limit and \
            not p.failures:
        p.failures.append(f"deploy timeout: not ready {limit:g}s after the build")
        if not rollout.get("timed_out"):
            p.rollout = {**rollout, "timed_out": True}
            p.actions.append(Event("DeployTimeout", f"deploying timeout: "
                                   f"{describe(p.desired)} not ready within {limit:g}s",
                                   p.target, warning=True))


def roll_back(p: PassState) -> None:
    """A failed rollout with something still serving: stop its new replicas and keep what
    serves. Without a serving replica there is nothing to go back to; the failure shows in
    the phase instead."""
    if not (p.failures and p.effective and p.serving_ready()):
        return
    reason = p.failures[0] + (f" (and {len(p.failures) - 1} more)"
                              if len(p.failures) > 1 else "")
    p.actions.append(Event("UpdateFailed", f"failed to update the service: {reason}; "
                           "rolling back", p.target, warning=True))
    for v in p.desired:
        for r in p.of(v, p.want_template):
            if v not in p.effective or (p.want_template != p.serving_template
                                        and r.template == p.want_template):
                p.actions.append(StopReplica(r.id, r.version, "rolled back", r.agent,
                                             p.drain_s))
    p.actions.append(Event("RolledBack", f"rollback succeeded: {describe(p.effective)} keeps "
                           "serving; fix the package or spec and update again", p.target))
    p.rollback = {"generation": p.generation, "reason": reason, "target": p.target}
    p.desired, p.want_template = dict(p.effective), p.serving_template
    p.changing, p.rollout = False, None
    p.counts = counts_for(p.desired, p.total)
    assess_builds(p)
    stopping = p.stopping()
    p.live = [r for r in p.live if r.id not in stopping]


def switch_traffic(p: PassState) -> None:
    """Move traffic at once when every wanted version has its replicas ready (of the
    wanted template); the rollout is then over. A rollout still under way records its
    start event where it began."""
    complete = p.built and p.total > 0 and not p.stopped and all(
        len(p.ready_of(v, p.want_template)) >= p.counts[v] for v in p.desired)
    if complete and out_of_sync(p):
        if p.desired != p.effective:
            p.actions.append(Event(
                "TrafficSwitched", f"{describe(p.desired)} ready: traffic now goes to "
                f"{describe(p.desired)}"
                + (f" (was {describe(p.effective)})" if p.effective else ""), p.target))
        if p.want_template != p.serving_template and p.effective:
            p.actions.append(Event("ReplicasReplaced", "every replica now runs the current "
                                   "spec", p.target))
        p.effective, p.serving_template, p.switched_at = dict(p.desired), p.want_template, p.now
        p.changing, p.rollout = False, None
    if p.stopped:
        p.effective = {}
    if p.started_event is not None and p.changing:
        p.actions.insert(*p.started_event)
