"""The planner's steps one at a time: each leaves an unchanged world unchanged, and each
owns its rule (tests/registry/test_plan.py covers whole passes)."""

from __future__ import annotations

from typing import Any

from services.registry.controller import builds, diff, plan, rollout, scaling
from services.registry.controller.actions import StartBuild, StopReplica
from services.registry.controller.pass_state import PassState
from services.registry.controller.replicas import ObservedReplica
from services.registry.controller.traffic import template_of
from services.registry.service_spec import ServiceSpec
from services.registry.store.base import VersionRecord


def version(n: int, state: str = "ready") -> VersionRecord:
    return VersionRecord(model="m", number=n, digest=f"sha256:{n}", kind="predictor",
                         config_json="{}", interface_json="{}", requirements="", python="",
                         package_dir="/p", state=state)


def state(status: dict[str, Any], replicas: list[ObservedReplica], now: float = 100.0,
          **spec: Any) -> PassState:
    s = ServiceSpec.load({"model": "m", "replicas": 1, **spec})
    p = plan.begin(PassState(s, 1, status, {1: version(1), 2: version(2)}, replicas, now))
    diff.read_serving(p)
    diff.read_wanted(p)
    return p


def serving(v: int, template: str) -> dict[str, Any]:
    return {"phase": "running", "traffic": [{"version": v, "percent": 100.0}],
            "template": template, "switched_at": 0.0}


def test_in_sync_service_gets_no_action_from_any_step() -> None:
    t = template_of(ServiceSpec.load({"model": "m", "replicas": 1, "version": 2}))
    p = state(serving(2, t), [ObservedReplica("a", 2, "ready", template=t)], version=2)
    for step in (scaling.size, builds.start_builds, rollout.track_rollout,
                 rollout.find_failures, rollout.roll_back, scaling.converge_replicas,
                 rollout.switch_traffic, scaling.prune_unrouted):
        step(p)
    assert p.actions == [] and not diff.out_of_sync(p) and p.rollout is None


def test_legacy_status_with_only_serving_version_is_read_as_a_split() -> None:
    p = state({"serving_version": 1}, [])
    assert p.effective == {1: 100.0}


def test_pinned_version_is_wanted_and_latest_otherwise() -> None:
    assert state({}, [], version=1).desired == {1: 100.0}
    assert state({}, []).desired == {2: 100.0}


def test_stopped_service_starts_no_build() -> None:
    p = state({}, [], lifecycle={"stopped": True})
    p.versions = {2: version(2, "pending")}
    builds.start_builds(p)
    assert p.building == [2] and not any(isinstance(a, StartBuild) for a in p.actions)


def test_unrouted_replica_stops_only_after_the_drain() -> None:
    t = template_of(ServiceSpec.load({"model": "m", "replicas": 1}))
    old = ObservedReplica("old", 1, "ready", template=t)
    status = {**serving(2, t), "switched_at": 100.0}
    early = state(status, [old], now=100.0 + scaling.DRAIN_SECONDS / 2)
    scaling.prune_unrouted(early)
    assert early.actions == []
    late = state(status, [old], now=100.0 + scaling.DRAIN_SECONDS)
    scaling.prune_unrouted(late)
    assert [a.replica_id for a in late.actions if isinstance(a, StopReplica)] == ["old"]
