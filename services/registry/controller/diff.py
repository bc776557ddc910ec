"""What serves and what is wanted: the two sides a pass compares (Argo CD's live/target).

What serves is the split recorded in the status with the template it was reached with;
what is wanted is ``spec.traffic`` (or all of it to the target version) over replicas of
the current spec's template. A generation that was rolled back wants what serves, so it
is not retried until the spec changes again.
"""

from __future__ import annotations

from services.registry.controller.pass_state import PassState
from services.registry.controller.traffic import primary, split_of


def read_serving(p: PassState) -> None:
    """What serves now, from the status (older statuses knew only ``serving_version``),
    and the rollback this generation already went through, if any."""
    status = p.status
    if "traffic" in status:
        p.effective = split_of(status["traffic"])
    else:
        old = int(status.get("serving_version", 0))
        p.effective = {old: 100.0} if old else {}
    p.serving_template = str(status.get("template") or p.template)
    p.switched_at = float(status.get("switched_at", 0.0))
    rollback = status.get("rollback")
    p.rollback = rollback if rollback and rollback.get("generation") == p.generation else None


def read_wanted(p: PassState) -> None:
    """The wanted split and template; a rolled-back generation holds on to what serves."""
    desired = {t.version: t.percent for t in p.spec.traffic if t.percent > 0}
    if not desired:
        latest = max(p.versions) if p.versions else 0
        desired = {p.spec.version or latest: 100.0}
    p.desired, p.target, p.want_template = desired, primary(desired), p.template
    if p.rollback and p.effective:
        p.desired, p.want_template = dict(p.effective), p.serving_template


def out_of_sync(p: PassState) -> bool:
    """Whether the wanted split or template differs from what serves."""
    return p.desired != p.effective or p.want_template != p.serving_template
