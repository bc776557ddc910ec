"""The gateway's routing (services/gateway/routing.py): split, pinning, agent choice."""

from __future__ import annotations

import pytest

from modelport.errors import ModelportError
from services.gateway.routing import Endpoint, Router, RouteTable, VersionRoute, pinned_version


def table(*versions: VersionRoute) -> RouteTable:
    return RouteTable("svc", {v.version: v for v in versions}, expires=1e18)


def vr(version: int, percent: float, *endpoints: Endpoint) -> VersionRoute:
    return VersionRoute(version, percent, {}, 60.0, list(endpoints))


UP = Endpoint("h1:1", "a", ready=1, replicas=1)


def test_split_is_exact_and_interleaved() -> None:
    router = Router()
    t = table(vr(1, 90, UP), vr(2, 10, UP))
    picks = [router.pick_version(t).version for _ in range(1000)]
    assert picks.count(1) == 900 and picks.count(2) == 100
    assert all(picks[i:i + 10].count(2) == 1 for i in range(0, 1000, 10))  # spread out


def test_versions_without_replicas_get_no_share() -> None:
    router = Router()
    t = table(vr(1, 90, UP), vr(2, 10))
    assert {router.pick_version(t).version for _ in range(50)} == {1}


def test_nothing_routable_returns_the_main_version_to_wait_for() -> None:
    assert Router().pick_version(table(vr(1, 30), vr(2, 70))).version == 2


def test_pinned_version_wins_and_one_without_replicas_is_503() -> None:
    router = Router()
    t = table(vr(1, 100, UP), vr(3, 0, UP), vr(4, 0))
    assert router.pick_version(t, 3).version == 3
    with pytest.raises(ModelportError) as exc:
        router.pick_version(t, 4)
    assert exc.value.code == "version.not_serving" and exc.value.http_status == 503
    assert "1 (100%)" in exc.value.fix


def test_version_header() -> None:
    assert pinned_version(None) == 0 and pinned_version(" ") == 0
    assert pinned_version("3") == 3 and pinned_version("v4") == 4
    for bad in ("three", "-1", "0", "1.5"):
        with pytest.raises(ModelportError) as exc:
            pinned_version(bad)
        assert exc.value.http_status == 422


def test_agent_choice_prefers_ready_and_less_loaded_and_avoids_failed_ones() -> None:
    router = Router()
    a = Endpoint("h1:1", "a", ready=1, replicas=1)
    b = Endpoint("h2:1", "b", ready=2, replicas=2)
    starting = Endpoint("h3:1", "c", ready=0, replicas=1)
    v = vr(1, 100, a, b, starting)
    assert router.pick_endpoint(v) == b  # most ready replicas, nothing in flight
    with router.calling("h2:1"), router.calling("h2:1"), router.calling("h2:1"):
        assert router.pick_endpoint(v) == a  # 0/1 in flight beats 3/2
    router.mark_down("h1:1")
    router.mark_down("h2:1")
    assert router.pick_endpoint(v) == starting  # the only one not failing
    assert router.pick_endpoint(vr(1, 100)) is None
    only = vr(1, 100, a)
    assert router.pick_endpoint(only) == a  # a failed agent is still better than none


def test_old_registry_route_becomes_a_one_version_table() -> None:
    from modelport.v1 import registry_pb2

    r = registry_pb2.Route(service="svc", version=2, runtime_address="unix:/r.sock",
                           interface_json='{"inputs": []}', timeout_s=5)
    t = RouteTable.from_proto(r, 0)
    assert t.versions[2].endpoints[0].address == "unix:/r.sock" and t.split() == {2: 100.0}
