"""The controller's planner: one case per rule, named by its outcome, plus idempotence."""

from __future__ import annotations

from typing import Any

import pytest

from services.registry.controller.actions import Event, StartBuild, StartReplica, StopReplica
from services.registry.controller.plan import plan_service
from services.registry.controller.replicas import ObservedReplica
from services.registry.controller.scaling import DRAIN_SECONDS
from services.registry.service_spec import ServiceSpec
from services.registry.store.base import VersionRecord


def version(n: int, state: str, error: str = "") -> VersionRecord:
    return VersionRecord(model="m", number=n, digest=f"sha256:{n}", kind="predictor",
                         config_json="{}", interface_json="{}", requirements="", python="",
                         package_dir="/p", state=state, error=error)


def spec(**kw: Any) -> ServiceSpec:
    return ServiceSpec.load({"model": "m", "version": 0, "replicas": 1, **kw})


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
    assert [(a.replica_id, a.version, a.reason) for a in late.actions
            if isinstance(a, StopReplica)] == [("old", 1, "version 2 replaced it")]
    assert all(a.drain_s > 0 for a in late.actions if isinstance(a, StopReplica))


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


# ---------------------------------------------------------------- serving (docs/serving.md)

from services.registry.controller.autoscale import Load  # noqa: E402
from services.registry.controller.placement import AgentView, Cluster  # noqa: E402
from services.registry.controller.traffic import template_of  # noqa: E402


def events(plan) -> list[str]:
    return [a.reason for a in plan.actions if isinstance(a, Event)]


def stops(plan) -> list[str]:
    return [a.replica_id for a in plan.actions if isinstance(a, StopReplica)]


def test_canary_split_starts_replicas_per_version_then_switches_together() -> None:
    versions = {1: version(1, "ready"), 2: version(2, "ready")}
    s = spec(replicas=2, traffic=[{"version": 1, "percent": 90}, {"version": 2, "percent": 10}])
    status = {"phase": "running", "traffic": [{"version": 1, "percent": 100.0}],
              "template": template_of(s), "switched_at": 0}
    starting = plan_service(s, 2, status, versions, [rep("a", 1), rep("b", 1)], now=100)
    # 90% of 2 replicas -> 2 for version 1 (it has them), 10% -> at least 1 for version 2
    assert [a.version for a in starting.actions if isinstance(a, StartReplica)] == [2]
    assert starting.status["traffic"] == [{"version": 1, "percent": 100.0}]
    reps = [rep("a", 1), rep("b", 1), rep("c", 2)]
    switched = plan_service(s, 2, starting.status, versions, reps, now=101)
    assert switched.status["traffic"] == [{"version": 1, "percent": 90.0},
                                          {"version": 2, "percent": 10.0}]
    assert switched.status["serving_version"] == 1 and "TrafficSwitched" in events(switched)
    later = plan_service(s, 2, switched.status, versions, reps, now=200)
    assert later.actions == [] and later.status == switched.status  # nothing to stop


def test_new_version_whose_replica_fails_is_rolled_back() -> None:
    versions = {1: version(1, "ready"), 2: version(2, "ready")}
    status = {"phase": "running", "serving_version": 1, "switched_at": 0}
    reps = [rep("old", 1), rep("new", 2, "failed", "setup raised OSError: no weights")]
    p = plan_service(spec(), 2, status, versions, reps, now=100)
    assert stops(p) == ["new"]
    assert {"UpdateFailed", "RolledBack"} <= set(events(p))
    assert p.status["serving_version"] == 1 and p.status["target_version"] == 2
    assert p.status["phase"] == "running" and "rolled back" in p.status["message"]
    assert any(c["reason"] == "RolledBack" and c["status"] for c in p.status["conditions"])
    # the same generation is not tried again; a new one is
    again = plan_service(spec(), 2, p.status, versions, [rep("old", 1)], now=101)
    assert kinds(again) == [] and "UpdateFailed" not in events(again)
    retry = plan_service(spec(), 3, p.status, versions, [rep("old", 1)], now=102)
    assert [a.version for a in retry.actions if isinstance(a, StartReplica)] == [2]


def test_new_version_that_crashes_before_ready_is_rolled_back() -> None:
    versions = {1: version(1, "ready"), 2: version(2, "ready")}
    status = {"phase": "running", "serving_version": 1, "switched_at": 0}
    crashed = ObservedReplica("new", 2, "restarting", "exited (code 1)", restarts=1)
    p = plan_service(spec(), 2, status, versions, [rep("old", 1), crashed], now=100)
    assert stops(p) == ["new"] and "RolledBack" in events(p)


def test_rollout_not_ready_within_the_deploy_timeout_is_rolled_back() -> None:
    versions = {1: version(1, "ready"), 2: version(2, "ready")}
    s = spec(deploy_timeout_s=60)
    status = {"phase": "running", "serving_version": 1, "switched_at": 0}
    reps = [rep("old", 1), rep("new", 2, "starting")]
    first = plan_service(s, 2, status, versions, reps, now=100)
    assert "UpdateStarted" in events(first) and first.status["rollout"]["built_at"] == 100
    waiting = plan_service(s, 2, first.status, versions, reps, now=150)
    assert stops(waiting) == []
    late = plan_service(s, 2, first.status, versions, reps, now=161)
    assert stops(late) == ["new"]
    assert {"DeployTimeout", "UpdateFailed", "RolledBack"} <= set(events(late))


def test_first_deploy_whose_replica_fails_is_failed_not_rolled_back() -> None:
    p = plan_service(spec(), 1, {}, {1: version(1, "ready")},
                     [rep("a", 1, "failed", "startup probe failed: setup() did not finish")],
                     now=100)
    assert p.status["phase"] == "failed" and "startup probe failed" in p.status["message"]
    assert stops(p) == [] and "RolledBack" not in events(p)  # it keeps being retried


def test_restart_replaces_replicas_rolling_then_stops_the_old_ones() -> None:
    versions = {1: version(1, "ready")}
    before = spec(replicas=1)
    status = plan_service(before, 1, {}, versions, [rep("a", 1)], now=100).status
    old_t = template_of(before)
    after = before.replace(lifecycle={"restarted_at": 150.0})
    new_t = template_of(after)
    assert new_t != old_t
    old = ObservedReplica("a", 1, "ready", template=old_t)
    p = plan_service(after, 2, status, versions, [old], now=150)
    assert [(a.version, a.template) for a in p.actions if isinstance(a, StartReplica)] == [
        (1, new_t)]
    assert stops(p) == [] and "UpdateStarted" in events(p)
    new = ObservedReplica("b", 1, "ready", template=new_t)
    done = plan_service(after, 2, p.status, versions, [old, new], now=151)
    assert "ReplicasReplaced" in events(done) and stops(done) == []
    drained = plan_service(after, 2, done.status, versions, [old, new], now=151 + DRAIN_SECONDS)
    assert stops(drained) == ["a"]


def test_stopped_service_stops_every_replica_and_routes_nothing() -> None:
    versions = {1: version(1, "ready")}
    running = plan_service(spec(), 1, {}, versions, [rep("a", 1)], now=100).status
    s = spec(lifecycle={"stopped": True})
    versions[2] = version(2, "ready")  # stopped mid-rollout: the new replica stops too
    p = plan_service(s, 2, running, versions, [rep("a", 1), rep("b", 2, "starting")], now=101)
    assert stops(p) == ["a", "b"] and p.status["phase"] == "stopped"
    assert p.status["traffic"] == [] and p.status["endpoints"] == []
    assert all(a.drain_s > 0 for a in p.actions if isinstance(a, StopReplica))
    assert {a.reason for a in p.actions if isinstance(a, StopReplica)} == {
        "the service was stopped"}
    gone = plan_service(s, 2, p.status, versions, [rep("a", 1, "draining")], now=102)
    assert kinds(gone) == [] and gone.status["phase"] == "stopped"


def test_endpoints_name_the_agents_holding_ready_replicas() -> None:
    versions = {1: version(1, "ready")}
    reps = [ObservedReplica("a", 1, "ready", agent="h1:1"),
            ObservedReplica("b", 1, "starting", agent="h2:1")]
    p = plan_service(spec(replicas=2), 1, {}, versions, reps, now=100)
    assert p.status["endpoints"] == [{"version": 1, "agent": "h1:1", "ready": 1, "live": 1},
                                     {"version": 1, "agent": "h2:1", "ready": 0, "live": 1}]


def test_replicas_are_spread_over_agents_and_no_room_is_a_schedule_failure() -> None:
    versions = {1: version(1, "ready")}
    cluster = Cluster([AgentView("h1:1", "a"), AgentView("h2:1", "b")])
    p = plan_service(spec(replicas=2), 1, {}, versions, [], now=100, cluster=cluster,
                     service="svc")
    assert sorted(a.agent for a in p.actions if isinstance(a, StartReplica)) == ["h1:1", "h2:1"]
    full = Cluster([AgentView("h1:1", "a", max_replicas=1)])
    full.note("other", "h1:1")
    p = plan_service(spec(), 1, {}, versions, [], now=100, cluster=full, service="svc")
    assert kinds(p) == [] and "ScheduleFailed" in events(p)
    assert "full (1/1 replicas)" in p.status["unschedulable"]
    again = plan_service(spec(), 1, p.status, versions, [], now=101, cluster=full,
                         service="svc")
    assert "ScheduleFailed" not in events(again)  # said once per reason


def test_replicas_of_a_lost_agent_are_recorded_and_replaced() -> None:
    versions = {1: version(1, "ready")}
    reps = [ObservedReplica("a", 1, "ready", agent="h1:1"),
            ObservedReplica("b", 1, "ready", agent="h2:1")]
    status = plan_service(spec(replicas=2), 1, {}, versions, reps, now=100).status
    survivor = Cluster([AgentView("h2:1", "b")])
    survivor.note("svc", "h2:1")
    p = plan_service(spec(replicas=2), 1, status, versions, reps[1:], now=110,
                     cluster=survivor, service="svc")
    assert "ReplicaLost" in events(p)
    assert [a.agent for a in p.actions if isinstance(a, StartReplica)] == ["h2:1"]


def test_autoscaling_follows_load_and_scales_to_zero_when_idle() -> None:
    versions = {1: version(1, "ready")}
    s = spec(autoscaling={"min": 0, "max": 3, "target_concurrency": 2, "idle_timeout_s": 60,
                          "scale_down_delay_s": 10})
    first = plan_service(s, 1, {}, versions, [rep("a", 1)], now=100, load=Load())
    assert first.status["desired_replicas"] == 1
    busy = plan_service(s, 1, first.status, versions, [rep("a", 1)], now=101,
                        load=Load(in_flight=1, queued=4, last_request_at=101))
    assert busy.status["desired_replicas"] == 3 and "ScaledUp" in events(busy)
    assert len([a for a in busy.actions if isinstance(a, StartReplica)]) == 2
    idle = plan_service(s, 1, busy.status, versions, [rep("a", 1)], now=200,
                        load=Load(last_request_at=101))
    assert idle.status["desired_replicas"] == 0 and "ScaledToZero" in events(idle)
    assert stops(idle) == ["a"] and idle.status["phase"] == "running"
    assert idle.status["serving_version"] == 1  # still routable: a request wakes it
    woken = plan_service(s, 1, idle.status, versions, [], now=210, load=Load(),
                         demand_at=209)
    assert woken.status["desired_replicas"] == 1 and "ColdStart" in events(woken)
    assert kinds(woken) == [StartReplica]
