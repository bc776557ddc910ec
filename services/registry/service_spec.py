"""The service spec as the registry keeps it: parsed once where it enters, typed after.

A spec enters the registry as a protobuf ``ServiceSpec`` (from the gateway, which
validated the user's ModelService with ``modelport.spec.service``) or as JSON read back
from the store. Both become a ``ServiceSpec`` here, and everything after (servicer,
controller, metrics, serving) reads typed attributes. The stored JSON keeps its shape:
``to_json`` writes back exactly the keys that were given, so existing databases load and
a replica's template digest (controller/traffic.py) does not move.

Unlike the user-facing ModelService, a stored spec names its model by string, pins a
version (0 = latest), keeps the annotations and the lifecycle (stop / start / restart,
which applying a spec leaves alone) and writes ``{}`` for autoscaling that is off.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from modelport.errors import Problem, invalid
from modelport.spec.service import (
    Auth,
    Autoscaling,
    RateLimit,
    Resources,
    TrafficTarget,
    json_path,
)
from modelport.v1 import registry_pb2

DEFAULT_QUEUE_SIZE = 64
#: per-request timeout when neither the spec nor the package's config.json sets one
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_IDLE_TIMEOUT_S = 600.0
DEFAULT_SCALE_DOWN_DELAY_S = 30.0


class Lifecycle(BaseModel):
    """Operations on the service (docs/serving.md), not part of what a user applies."""

    model_config = ConfigDict(extra="allow", frozen=True)
    stopped: bool = False
    stopped_at: float = 0.0
    restarted_at: float = 0.0


class ServiceSpec(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    model: str = ""
    version: int = 0  # 0 = the latest version
    runtime: str = "process"
    replicas: int = 1
    resources: Resources = Field(default_factory=Resources)
    env: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = 0.0  # 0 = the package's default
    annotations: dict[str, str] = Field(default_factory=dict)
    auth: Auth = Field(default_factory=Auth)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    traffic: list[TrafficTarget] = Field(default_factory=list)
    autoscaling: Autoscaling | None = None  # None = off (stored as {})
    concurrency: int = 1
    queue_size: int = DEFAULT_QUEUE_SIZE
    deploy_timeout_s: float = 0.0  # 0 = the controller's default
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)

    @field_validator("autoscaling", mode="before")
    @classmethod
    def _autoscaling_off(cls, value: Any) -> Any:
        """``{}`` (or ``max`` 0) is autoscaling off, as the registry has always stored it."""
        if not value or (isinstance(value, dict) and not value.get("max")):
            return None
        return value

    @field_serializer("autoscaling")
    def _autoscaling_json(self, value: Autoscaling | None) -> dict[str, Any]:
        return value.model_dump() if value is not None else {}

    @classmethod
    def load(cls, data: Any, where: str = "") -> ServiceSpec:
        """Parse a stored or received spec; every problem is named with its JSON path."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = [Problem(path="$.spec" + json_path(e["loc"])[1:], message=e["msg"],
                                fix="see config/modelservice.schema.json", code=e["type"])
                        for e in exc.errors()]
            raise invalid("service.spec_invalid", f"the spec of {where or 'the service'} is "
                          f"invalid at {', '.join(p.path for p in problems)}",
                          "correct the fields listed and apply the service again "
                          "(`modelport apply`)", path=problems[0].path if problems else "",
                          problems=problems) from None

    def to_json(self) -> dict[str, Any]:
        """The stored form: the keys that were given, as they were given."""
        return self.model_dump(mode="json", exclude_unset=True)

    def replace(self, **changes: Any) -> ServiceSpec:
        """A copy with ``changes`` (stored form values) applied."""
        return ServiceSpec.load({**self.to_json(), **changes})

    def request_timeout_s(self, config: dict[str, Any]) -> float:
        """The per-request timeout: the spec's, else the package's (config.json), else 60s;
        the runtime enforces it and gateways report it with the route."""
        return float(self.timeout_s or config.get("timeout_s") or DEFAULT_TIMEOUT_S)

    # protobuf ---------------------------------------------------------------------------
    @classmethod
    def from_proto(cls, spec: registry_pb2.ServiceSpec, name: str) -> ServiceSpec:
        """A received spec; the model defaults to the service's name."""
        r, a = spec.resources, spec.autoscaling
        return cls.load({
            "model": spec.model or name,
            "version": spec.version,
            "runtime": spec.runtime or "process",
            "replicas": spec.replicas if spec.HasField("replicas") else 1,
            "resources": {"cpu": r.cpu, "memory": r.memory, "gpu": r.gpu},
            "env": dict(spec.env),
            "timeout_s": spec.timeout_s,
            "annotations": dict(spec.annotations),
            "auth": {"required": spec.auth.required},
            "rate_limit": {"rps": spec.rate_limit.rps, "burst": spec.rate_limit.burst},
            "traffic": [{"version": t.version, "percent": t.percent} for t in spec.traffic],
            "autoscaling": {"min": a.min, "max": a.max,
                            "target_concurrency": a.target_concurrency or 1.0,
                            "idle_timeout_s": a.idle_timeout_s or DEFAULT_IDLE_TIMEOUT_S,
                            "scale_down_delay_s": a.scale_down_delay_s if a.scale_down_delay_s
                            else DEFAULT_SCALE_DOWN_DELAY_S} if a.max > 0 else {},
            "concurrency": spec.concurrency or 1,
            "queue_size": spec.queue_size or DEFAULT_QUEUE_SIZE,
            "deploy_timeout_s": spec.deploy_timeout_s or 0.0,
        }, name)

    def to_proto(self) -> registry_pb2.ServiceSpec:
        r, a = self.resources, self.autoscaling
        out = registry_pb2.ServiceSpec(
            model=self.model, version=self.version, runtime=self.runtime,
            replicas=self.replicas,
            resources=registry_pb2.Resources(cpu=r.cpu, memory=r.memory, gpu=r.gpu),
            env=self.env, timeout_s=self.timeout_s, annotations=self.annotations,
            auth=registry_pb2.ServiceAuth(required=self.auth.required),
            rate_limit=registry_pb2.RateLimit(rps=self.rate_limit.rps,
                                              burst=self.rate_limit.burst),
            traffic=[registry_pb2.TrafficTarget(version=t.version, percent=t.percent)
                     for t in self.traffic],
            concurrency=self.concurrency or 1,
            queue_size=self.queue_size or DEFAULT_QUEUE_SIZE,
            deploy_timeout_s=self.deploy_timeout_s)
        if a is not None:
            out.autoscaling.CopyFrom(registry_pb2.Autoscaling(
                min=a.min, max=a.max, target_concurrency=a.target_concurrency,
                idle_timeout_s=a.idle_timeout_s, scale_down_delay_s=a.scale_down_delay_s))
        return out
