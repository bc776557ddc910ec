"""The working state of one planning pass: its inputs, and what each step decided so far.

plan.py runs the steps in order (diff.py, scaling.py, builds.py, rollout.py, health.py);
each reads what the earlier ones decided here and adds its own actions and conditions.
Nothing in it does I/O: a pass is a pure function of its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelport.spec.service import Autoscaling
from services.registry.controller.actions import Action, Event, StopReplica
from services.registry.controller.autoscale import Load
from services.registry.controller.placement import Cluster
from services.registry.controller.replicas import ObservedReplica
from services.registry.service_spec import ServiceSpec
from services.registry.store.base import VersionRecord


@dataclass
class PassState:
    # inputs ---------------------------------------------------------------------------
    spec: ServiceSpec
    generation: int
    status: dict[str, Any]
    versions: dict[int, VersionRecord]
    replicas: list[ObservedReplica]
    now: float
    cluster: Cluster | None = None
    load: Load | None = None
    demand_at: float = 0.0
    service: str = ""
    # what the pass decided ------------------------------------------------------------
    actions: list[Action] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    live: list[ObservedReplica] = field(default_factory=list)
    stopped: bool = False
    template: str = ""         # the spec's replica template
    drain_s: float = 60.0
    # what serves (diff.py)
    effective: dict[int, float] = field(default_factory=dict)
    serving_template: str = ""
    switched_at: float = 0.0
    rollback: dict[str, Any] | None = None
    # what is wanted (diff.py)
    desired: dict[int, float] = field(default_factory=dict)
    target: int = 0
    want_template: str = ""
    # how many replicas (scaling.py)
    auto: Autoscaling | None = None  # the spec's, when autoscaling is on
    auto_state: dict[str, Any] | None = None
    total: int = 0
    counts: dict[int, int] = field(default_factory=dict)
    placement_note: str = ""
    # builds (builds.py)
    missing: list[int] = field(default_factory=list)
    build_failed: dict[int, str] = field(default_factory=dict)
    building: list[int] = field(default_factory=list)
    built: bool = False
    # rollout (rollout.py)
    changing: bool = False
    rollout: dict[str, Any] | None = None
    started_event: tuple[int, Event] | None = None
    failures: list[str] = field(default_factory=list)
    # health (health.py)
    phase: str = ""
    message: str = ""

    @property
    def prev_conditions(self) -> list[dict[str, Any]]:
        return self.status.get("conditions", [])

    def of(self, v: int, tmpl: str | None = None) -> list[ObservedReplica]:
        """Live replicas of version ``v`` (started from ``tmpl``, or unknown, when given)."""
        return [r for r in self.live
                if r.version == v and (tmpl is None or r.template in ("", tmpl))]

    def ready_of(self, v: int, tmpl: str | None = None) -> list[ObservedReplica]:
        return [r for r in self.of(v, tmpl) if r.state == "ready"]

    def serving_ready(self) -> list[ObservedReplica]:
        """Ready replicas of a version that serves now."""
        return [r for r in self.live if r.version in self.effective and r.state == "ready"]

    def stopping(self) -> set[str]:
        """Replicas this pass already stops."""
        return {a.replica_id for a in self.actions if isinstance(a, StopReplica)}

