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
that is not ready within ``deploy_timeout_s`` is rolled back (rollout.py).

A pass runs small steps in order, each owning its part of the status (Flux's
sub-reconcilers; Argo CD's diff / sync / health): diff.py compares what serves with what
is wanted, builds.py, scaling.py and rollout.py add the actions that converge them,
health.py names the phase, and ``status_of`` writes it all down.
"""

from __future__ import annotations

from typing import Any

from services.registry.controller import builds, diff, health, rollout, scaling
from services.registry.controller.actions import Plan
from services.registry.controller.autoscale import Load
from services.registry.controller.pass_state import PassState
from services.registry.controller.placement import Cluster
from services.registry.controller.replicas import GONE, ObservedReplica, endpoints, replica_events
from services.registry.controller.traffic import primary, template_of
from services.registry.service_spec import ServiceSpec
from services.registry.store.base import VersionRecord


def plan_service(spec: ServiceSpec, generation: int, status: dict[str, Any],
                 versions: dict[int, VersionRecord], replicas: list[ObservedReplica],
                 now: float, *, cluster: Cluster | None = None, load: Load | None = None,
                 demand_at: float = 0.0, service: str = "") -> Plan:
    """The actions that move the service towards its spec, and the status to record."""
    p = begin(PassState(spec, generation, status, versions, replicas, now, cluster, load,
                        demand_at, service))
    diff.read_serving(p)
    diff.read_wanted(p)
    scaling.size(p)
    builds.start_builds(p)
    rollout.track_rollout(p)
    rollout.find_failures(p)
    rollout.roll_back(p)
    builds.built_condition(p)
    scaling.converge_replicas(p)
    rollout.switch_traffic(p)
    scaling.prune_unrouted(p)
    health.assess_health(p)
    return Plan(p.actions, status_of(p))


def begin(p: PassState) -> PassState:
    """What every step reads from the spec and the replicas: the live replicas (not on
    their way out), whether the service is stopped, its template, and how long a stopped
    replica may finish its requests (the spec's request timeout, 60s by default)."""
    p.live = [r for r in p.replicas if r.state not in GONE]
    p.stopped = p.spec.lifecycle.stopped
    p.template = template_of(p.spec)
    p.drain_s = p.spec.timeout_s or 60.0
    return p


def status_of(p: PassState) -> dict[str, Any]:
    """The status this pass records: phase and message, what serves and where (the
    endpoints gateways route to), each replica's note, and the bookkeeping the next pass
    continues from (template, rollout, rollback, autoscale, unschedulable)."""
    notes, noted = replica_events(p.replicas, p.status.get("replicas", {}),
                                  p.cluster.addresses if p.cluster is not None else None)
    p.actions += noted
    out: dict[str, Any] = {
        "phase": p.phase,
        "serving_version": primary(p.effective),
        "target_version": p.target,
        "ready_replicas": len(p.serving_ready()),
        "desired_replicas": p.total,
        "observed_generation": p.generation,
        "message": p.message,
        "conditions": p.conditions,
        "switched_at": p.switched_at,
        "replicas": notes,
        "traffic": [{"version": v, "percent": pct} for v, pct in sorted(p.effective.items())],
        "endpoints": endpoints(p.live, p.stopping()),
    }
    if p.effective:
        out["template"] = p.serving_template
    if p.rollback:
        out["rollback"] = p.rollback
    if p.rollout:
        out["rollout"] = p.rollout
    if p.auto_state is not None:
        out["autoscale"] = p.auto_state
    if p.placement_note:
        out["unschedulable"] = p.placement_note
    return out
