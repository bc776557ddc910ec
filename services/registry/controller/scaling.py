"""Replicas to place, scale and stop: how many a service runs, and where new ones go."""

from __future__ import annotations

from services.registry.controller import autoscale
from services.registry.controller import conditions as c
from services.registry.controller.actions import Event, StartReplica, StopReplica
from services.registry.controller.autoscale import Load
from services.registry.controller.pass_state import PassState
from services.registry.controller.traffic import counts_for, describe

#: seconds old replicas keep answering after traffic moved (covers gateway route caches)
DRAIN_SECONDS = 3.0


def size(p: PassState) -> None:
    """How many replicas the service runs: none when stopped, what the autoscaler decides
    (its decision continues the last one, kept in the status), else ``spec.replicas``;
    and how many of them each wanted version gets."""
    p.auto = p.spec.autoscaling
    if p.stopped:
        p.total = 0
    elif p.auto is not None:
        decision = autoscale.decide(p.auto, p.status.get("autoscale") or {}, p.load or Load(),
                                    p.demand_at, p.now)
        p.total, p.auto_state = decision.replicas, decision.state
        if decision.event:
            p.actions.append(Event(*decision.event, p.target))
    else:
        p.total = p.spec.replicas
    p.counts = counts_for(p.desired, p.total)


def _place(p: PassState) -> str | None:
    """The agent a new replica goes to ("" without a cluster); None when none can take it
    (the reason goes to ``placement_note``)."""
    if p.cluster is None:
        return ""
    chosen, why = p.cluster.place(p.service, p.spec.runtime or "process", p.spec.resources.gpu)
    if chosen is None:
        p.placement_note = why
        return None
    return chosen.address


def converge_replicas(p: PassState) -> None:
    """Start the replicas each built version is short of, stop the extras (unready ones
    first); a stopped service stops them all. A replica that cannot be placed is a
    ``NoCapacity`` condition and one ``ScheduleFailed`` event per new reason."""
    if p.stopped:
        p.actions += [StopReplica(r.id, r.version, "the service was stopped", r.agent,
                                  p.drain_s) for r in p.live]
    elif p.built:
        for v, n in p.counts.items():
            if v not in p.versions or p.versions[v].state != "ready":
                continue
            mine = p.of(v, p.want_template)
            for _ in range(n - len(mine)):
                agent = _place(p)
                if agent is None:
                    break
                p.actions.append(StartReplica(v, agent, p.want_template))
            if len(mine) > n:
                extra = sorted(mine, key=lambda r: (r.state == "ready", r.id))[: len(mine) - n]
                p.actions += [StopReplica(r.id, v, "scaled down", r.agent, p.drain_s)
                              for r in extra]
    if p.placement_note:
        p.conditions.append(c.condition(c.PROGRESSING, False, "NoCapacity", p.placement_note,
                                        p.prev_conditions))
        if p.status.get("unschedulable") != p.placement_note:
            p.actions.append(Event("ScheduleFailed", f"schedule failed: {p.placement_note}; "
                                   "retrying", p.target, warning=True))


def prune_unrouted(p: PassState) -> None:
    """Stop the replicas nothing routes to, once the drain after the last switch is over
    (gateways' route caches expired; the runtime lets requests in flight finish)."""
    if p.stopped or not p.effective or p.now - p.switched_at < DRAIN_SECONDS:
        return
    stopping = p.stopping()
    for r in p.live:
        keep = (r.version in p.effective and r.template in ("", p.serving_template)) or (
            r.version in p.desired and r.template in ("", p.want_template))
        if not keep and r.id not in stopping:
            why = (f"{describe(p.effective)} replaced it" if r.version not in p.effective
                   else "replaced by a replica of the current spec")
            p.actions.append(StopReplica(r.id, r.version, why, r.agent, p.drain_s))
