"""The registry's typed spec: stored JSON round-trips unchanged, bad fields are named."""

from __future__ import annotations

import pytest

from modelport.errors import ModelportError
from modelport.v1 import registry_pb2
from services.registry.service_spec import ServiceSpec

STORED = {
    "model": "m", "version": 0, "runtime": "process", "replicas": 2,
    "resources": {"cpu": 0.0, "memory": "", "gpu": 0}, "env": {"A": "1"}, "timeout_s": 0.0,
    "annotations": {}, "auth": {"required": True}, "rate_limit": {"rps": 2.0, "burst": 0},
    "traffic": [], "autoscaling": {}, "concurrency": 1, "queue_size": 64,
    "deploy_timeout_s": 0.0, "lifecycle": {"stopped": True, "stopped_at": 12.5},
}


def test_stored_spec_round_trips_unchanged_and_reads_typed() -> None:
    spec = ServiceSpec.load(STORED)
    assert spec.to_json() == STORED
    assert spec.replicas == 2 and spec.auth.required and spec.lifecycle.stopped
    assert spec.autoscaling is None  # {} is autoscaling off


def test_only_given_keys_are_written_back() -> None:
    assert ServiceSpec.load({"replicas": 3}).to_json() == {"replicas": 3}


def test_proto_spec_becomes_the_stored_form() -> None:
    spec = ServiceSpec.from_proto(registry_pb2.ServiceSpec(replicas=0), "svc")
    assert spec.model == "svc" and spec.replicas == 0 and spec.to_json()["autoscaling"] == {}
    assert ServiceSpec.from_proto(spec.to_proto(), "svc").to_json() == spec.to_json()


def test_a_bad_field_is_named_with_a_fix() -> None:
    with pytest.raises(ModelportError) as exc:
        ServiceSpec.load({"replicas": "many", "resources": {"gpu": -1}}, "service 'a'")
    err = exc.value
    assert err.code == "service.spec_invalid" and err.fix
    assert [p.path for p in err.problems] == ["$.spec.replicas", "$.spec.resources.gpu"]
    assert "$.spec.replicas" in err.message
