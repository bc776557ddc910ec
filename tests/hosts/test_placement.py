"""Placement over agents and the registry's agent table (pure, with a test clock)."""

from __future__ import annotations

from modelport.v1 import agents_pb2, runtime_pb2
from services.registry.agents import AgentTable
from services.registry.controller.placement import AgentView, Cluster


def test_spreads_a_service_then_fills_the_least_loaded() -> None:
    c = Cluster([AgentView("a:1"), AgentView("b:1"), AgentView("c:1")])
    c.note("other", "a:1")
    c.note("other", "b:1")
    first, _ = c.place("svc")
    second, _ = c.place("svc")
    assert first is not None and second is not None
    assert first.address == "c:1" and second.address == "a:1"  # spread, then least loaded


def test_runtime_room_and_gpus_filter_agents_with_reasons() -> None:
    c = Cluster([AgentView("a:1", "a", runtimes=("process",)),
                 AgentView("b:1", "b", max_replicas=1),
                 AgentView("c:1", "c", gpus=1)])
    c.note("x", "b:1")
    c.note("y", "c:1", gpu=1)
    chosen, why = c.place("svc", runtime="docker", gpu=1)
    assert chosen is None
    assert "a: no docker runtime" in why and "b: full (1/1 replicas)" in why
    assert "c: 0 free GPU(s), 1 needed" in why
    ok, _ = c.place("svc", runtime="process")
    assert ok is not None and ok.address == "a:1"


def test_no_agent_says_how_to_add_one() -> None:
    chosen, why = Cluster([]).place("svc")
    assert chosen is None and "no runtime agent" in why


def test_agents_are_lost_after_the_ttl_and_come_back_with_a_heartbeat() -> None:
    now = [1000.0]
    woken: list[int] = []
    t = AgentTable("unix:/local.sock", ttl_s=5, clock=lambda: now[0],
                   on_change=lambda: woken.append(1))
    hb = agents_pb2.AgentHeartbeat(id="gpu-1", address="10.0.0.2:7000", max_replicas=4,
                                   capacity=runtime_pb2.Capacity(cpus=8, runtimes=["process"]),
                                   started_at=1.0)
    ack = t.heartbeat(hb)
    assert ack.ttl_s == 5 and woken == [1]
    assert {a.address for a in t.live()} == {"unix:/local.sock", "10.0.0.2:7000"}
    view = t.get("10.0.0.2:7000").view()
    assert view.max_replicas == 4 and view.runtimes == ("process",) and view.gpus == 0
    now[0] += 6
    assert {a.address for a in t.live()} == {"unix:/local.sock"}  # configured: no TTL
    t.heartbeat(hb)
    assert {a.address for a in t.live()} == {"unix:/local.sock", "10.0.0.2:7000"}
    assert woken == [1, 1]  # it is back: the controller wakes
    t.heartbeat(hb)
    assert woken == [1, 1]  # a plain heartbeat changes nothing


def test_configured_agent_can_be_turned_off() -> None:
    assert AgentTable("none").live() == []
