"""The controller's planner: one case per rule, named by its outcome, plus idempotence."""

from __future__ import annotations

from typing import Any

import pytest

from services.registry.controller.plan import (
    DRAIN_SECONDS,
    Event,
    ObservedReplica,
    StartBuild,
    StartReplica,
    StopReplica,
    plan_service,
)
from services.registry.store.base import VersionRecord


def version(n: int, state: str, error: str = "") -> VersionRecord:
    return VersionRecord(model="m", number=n, digest=f"sha256:{n}", kind="predictor",
                         config_json="{}", interface_json="{}", requirements="", python="",
                         package_dir="/p", state=state, error=error)


def spec(**kw: Any) -> dict[str, Any]:
    return {"model": "m", "version": 0, "replicas": 1, **kw}


def rep(rid: str, v: int, state: str = "ready", message: str = "") -> ObservedReplica:
    return ObservedReplica(rid, v, state, message)


def kinds(plan) -> list[type]:
    return [type(a) for a in plan.actions if not isinstance(a, Event)]


def test_pending_version_starts_a_build() -> None:
    p = plan_service(spec(), 1, {}, {1: version(1, "pending")}, [], now=100)
    assert kinds(p) == [StartBuild]
    assert p.status["phase"] == "deploying" and p.status["target_version"] == 1


def test_building_version_waits() -> None:
    p = plan_service(spec(), 1, {}, {1: version(1, "building")}, [], now=100)
    assert kinds(p) == []


def test_built_version_without_replicas_starts_them() -> None:
    p = plan_service(spec(replicas=2), 1, {}, {1: version(1, "ready")}, [], now=100)
    assert kinds(p) == [StartReplica, StartReplica]


def test_ready_replicas_switch_traffic_and_run() -> None:
    p = plan_service(spec(), 1, {"phase": "deploying"}, {1: version(1, "ready")},
                     [rep("a", 1)], now=100)
    assert p.status["phase"] == "running" and p.status["serving_version"] == 1
    assert [a.reason for a in p.actions if isinstance(a, Event)] == ["TrafficSwitched",
                                                                      "PhaseRunning"]


def test_unchanged_world_changes_nothing() -> None:
    versions = {1: version(1, "ready")}
    first = plan_service(spec(), 1, {}, versions, [rep("a", 1)], now=100)
    second = plan_service(spec(), 1, first.status, versions, [rep("a", 1)], now=101)
    assert second.actions == []
    assert {k: v for k, v in second.status.items()} == first.status


def test_new_version_keeps_old_serving_until_ready() -> None:
    versions = {1: version(1, "ready"), 2: version(2, "ready")}
    status = {"phase": "running", "serving_version": 1, "switched_at": 0}
    p = plan_service(spec(), 2, status, versions, [rep("old", 1), rep("new", 2, "starting")],
                     now=100)
    assert p.status["serving_version"] == 1 and p.status["phase"] == "running"
    assert kinds(p) == []  # nothing stopped while the new one starts


def test_old_replicas_stop_only_after_drain() -> None:
    versions = {1: version(1, "ready"), 2: version(2, "ready")}
    status = {"phase": "running", "serving_version": 1}
    reps = [rep("old", 1), rep("new", 2)]
    switched = plan_service(spec(), 2, status, versions, reps, now=100)
    assert switched.status["serving_version"] == 2 and kinds(switched) == []
    early = plan_service(spec(), 2, switched.status, versions, reps, now=100 + DRAIN_SECONDS / 2)
    assert kinds(early) == []
    late = plan_service(spec(), 2, switched.status, versions, reps, now=100 + DRAIN_SECONDS)
    assert [a for a in late.actions if isinstance(a, StopReplica)] == [
        StopReplica("old", 1, "version 2 replaced it")]


def test_failed_build_of_first_version_fails_the_service() -> None:
    p = plan_service(spec(), 1, {}, {1: version(1, "failed", "pip install failed\ntail")}, [],
                     now=100)
    assert p.status["phase"] == "failed"
    assert "pip install failed" in p.status["message"]
    assert any(c["type"] == "Stalled" and c["status"] for c in p.status["conditions"])


def test_failed_build_of_update_keeps_old_version_serving() -> None:
    versions = {1: version(1, "ready"), 2: version(2, "failed", "pip install failed")}
    p = plan_service(spec(), 2, {"phase": "running", "serving_version": 1}, versions,
                     [rep("old", 1)], now=100)
    assert p.status["phase"] == "running" and p.status["serving_version"] == 1
    assert "still serving version 1" in p.status["message"]
    assert kinds(p) == []


def test_replica_whose_setup_fails_fails_the_service_with_reason() -> None:
    p = plan_service(spec(), 1, {}, {1: version(1, "ready")},
                     [rep("a", 1, "failed", "setup raised ValueError: no weights")], now=100)
    assert p.status["phase"] == "failed"
    assert "ValueError: no weights" in p.status["message"]


def test_restarting_replica_of_serving_version_is_concerning() -> None:
    p = plan_service(spec(), 1, {"phase": "running", "serving_version": 1},
                     {1: version(1, "ready")}, [rep("a", 1, "restarting", "exited code 1")],
                     now=100)
    assert p.status["phase"] == "concerning" and p.status["serving_version"] == 1
    assert kinds(p) == []


def test_zero_replicas_is_stopped() -> None:
    p = plan_service(spec(replicas=0), 1, {"phase": "running", "serving_version": 1},
                     {1: version(1, "ready")}, [rep("a", 1)], now=100)
    assert p.status["phase"] == "stopped"
    assert kinds(p) == [StopReplica]


@pytest.mark.parametrize("pinned", [1, 2])
def test_pinned_version_is_the_target(pinned: int) -> None:
    versions = {1: version(1, "ready"), 2: version(2, "ready")}
    p = plan_service(spec(version=pinned), 1, {}, versions, [], now=100)
    assert p.status["target_version"] == pinned


def test_missing_pinned_version_is_reported() -> None:
    p = plan_service(spec(version=7), 1, {}, {1: version(1, "ready")}, [], now=100)
    assert p.status["phase"] == "failed" and "version 7" in p.status["message"]
