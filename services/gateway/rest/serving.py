"""The management API's view of replicas, routing and lifecycle fields (docs/serving.md):
ModelService spec -> proto, and proto spec/status -> the JSON a service view carries."""

from __future__ import annotations

from typing import Any

from starlette.convertors import Convertor, register_url_convertor

from modelport.spec.service import ServiceSpecBody
from modelport.v1 import registry_pb2

LIFECYCLE_ACTIONS = ("start", "stop", "restart")


class LifecycleConvertor(Convertor[str]):
    """``{action:lifecycle}``: only start, stop and restart match the route."""

    regex = "|".join(LIFECYCLE_ACTIONS)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("lifecycle", LifecycleConvertor())


def serving_spec_proto(s: ServiceSpecBody) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traffic": [registry_pb2.TrafficTarget(version=t.version, percent=t.percent)
                    for t in s.traffic],
        "concurrency": s.concurrency, "queue_size": s.queue_size,
        "deploy_timeout_s": s.deploy_timeout_s,
    }
    if s.autoscaling is not None:
        a = s.autoscaling
        out["autoscaling"] = registry_pb2.Autoscaling(
            min=a.min, max=a.max, target_concurrency=a.target_concurrency,
            idle_timeout_s=a.idle_timeout_s, scale_down_delay_s=a.scale_down_delay_s)
    return out


def serving_spec_view(spec: registry_pb2.ServiceSpec) -> dict[str, Any]:
    a = spec.autoscaling
    return {
        "traffic": [{"version": t.version, "percent": t.percent} for t in spec.traffic],
        "autoscaling": {"min": a.min, "max": a.max, "target_concurrency": a.target_concurrency,
                        "idle_timeout_s": a.idle_timeout_s,
                        "scale_down_delay_s": a.scale_down_delay_s} if a.max > 0 else None,
        "concurrency": spec.concurrency or 1,
        "queue_size": spec.queue_size,
        "deploy_timeout_s": spec.deploy_timeout_s,
    }


def serving_status_view(st: registry_pb2.ServiceStatus) -> dict[str, Any]:
    return {
        "traffic": [{"version": t.version, "percent": t.percent} for t in st.traffic],
        "desired_replicas": st.desired_replicas,
        "replicas": [{"id": r.id, "version": r.version, "agent": r.agent, "state": r.state,
                      "restarts": r.restarts, **({"message": r.message} if r.message else {})}
                     for r in st.replicas],
    }
