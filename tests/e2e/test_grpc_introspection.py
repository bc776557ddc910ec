"""Every component serves the health service (SERVING) and server reflection."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from modelport.home import HomeLayout

EXPECTED = {
    "registry": "modelport.v1.Registry",
    "builder": "modelport.v1.Builder",
    "runtime": "modelport.v1.Runtime",
    "gateway": "modelport.v1.Inference",
}


@pytest.mark.parametrize("component", sorted(EXPECTED))
def test_health_and_reflection(platform, component: str) -> None:
    if component == "gateway":
        address = f"127.0.0.1:{platform.grpc_port}"
    else:
        address = HomeLayout(platform.home).socket(component)
    with grpc.insecure_channel(address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for name in ("", EXPECTED[component]):
            resp = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        services = set(ProtoReflectionDescriptorDatabase(ch).get_services())
    assert EXPECTED[component] in services
    assert "grpc.health.v1.Health" in services
    assert "grpc.reflection.v1alpha.ServerReflection" in services
