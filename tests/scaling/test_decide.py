"""The autoscaler's decision (services/registry/controller/autoscale.py): pure, one rule each."""

from __future__ import annotations

from modelport.spec.service import Autoscaling
from services.registry.controller.autoscale import Load, decide

AUTO = Autoscaling(min=1, max=4, target_concurrency=2, idle_timeout_s=30,
                   scale_down_delay_s=10)


def test_starts_at_min_or_one() -> None:
    assert decide(AUTO, {}, Load(), 0, 100).replicas == 1
    assert decide(AUTO.model_copy(update={"min": 3}), {}, Load(), 0, 100).replicas == 3
    assert decide(AUTO.model_copy(update={"min": 0}), {}, Load(), 0, 100).replicas == 1


def test_scales_up_at_once_to_the_load_capped_at_max() -> None:
    d = decide(AUTO, {"replicas": 1}, Load(in_flight=2, queued=3), 0, 100)
    assert d.replicas == 3 and d.event and d.event[0] == "ScaledUp"
    assert decide(AUTO, {"replicas": 1}, Load(queued=50), 0, 100).replicas == 4


def test_scales_down_only_after_the_delay_to_the_peak_seen() -> None:
    state = {"replicas": 4, "since": 0}
    d = decide(AUTO, state, Load(in_flight=1), 0, 100)
    assert d.replicas == 4 and d.event is None
    d = decide(AUTO, d.state, Load(in_flight=3), 0, 105)  # a peak needing 2 within the window
    assert d.replicas == 4
    d = decide(AUTO, d.state, Load(in_flight=1), 0, 111)
    assert d.replicas == 2 and d.event and d.event[0] == "ScaledDown"


def test_load_back_up_resets_the_scale_down_window() -> None:
    d = decide(AUTO, {"replicas": 2, "since": 0}, Load(), 0, 100)
    d = decide(AUTO, d.state, Load(in_flight=4), 0, 105)
    d = decide(AUTO, d.state, Load(), 0, 112)
    assert d.replicas == 2  # the window started again at 112


def test_never_below_min_unless_min_is_zero_and_idle() -> None:
    d = decide(AUTO, {"replicas": 1, "since": 0}, Load(last_request_at=0), 0, 1000)
    assert d.replicas == 1
    zero = AUTO.model_copy(update={"min": 0})
    d = decide(zero, {"replicas": 1, "since": 0}, Load(last_request_at=980), 0, 1000)
    assert d.replicas == 1  # 20s idle, timeout 30s
    d = decide(zero, d.state, Load(last_request_at=980), 0, 1011)
    assert d.replicas == 0 and d.event and d.event[0] == "ScaledToZero"


def test_idle_counts_from_when_the_last_request_finished() -> None:
    zero = AUTO.model_copy(update={"min": 0})
    d = decide(zero, {"replicas": 1, "since": 0}, Load(in_flight=1, last_request_at=900),
               0, 1000)
    d = decide(zero, d.state, Load(last_request_at=900), 0, 1020)
    assert d.replicas == 1  # busy until 1000: 20s idle only


def test_a_request_brings_it_back_from_zero() -> None:
    zero = AUTO.model_copy(update={"min": 0})
    state = {"replicas": 0, "since": 0, "zero_at": 500}
    assert decide(zero, state, Load(last_request_at=400), 0, 600).replicas == 0
    d = decide(zero, state, Load(last_request_at=400), 550, 600)
    assert d.replicas == 1 and d.event and d.event[0] == "ColdStart"
    assert decide(zero, state, Load(queued=5), 0, 600).replicas == 3


def test_unchanged_inputs_keep_the_decision() -> None:
    d = decide(AUTO, {}, Load(in_flight=2), 0, 100)
    again = decide(AUTO, d.state, Load(in_flight=2), 0, 100)
    assert again.replicas == d.replicas and again.state == d.state and again.event is None
