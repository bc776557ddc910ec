"""The ModelService spec: one model for the CLI's `apply`, the REST API and (later) GitOps.

    apiVersion: modelport/v1
    kind: ModelService
    metadata: {name: mnist}
    spec: {package: ../models/mnist, runtime: process, replicas: 1}

All problems are reported at once with their JSON paths, like package validation.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from modelport.errors import Problem, invalid
from modelport.package import plain_json

#: what the registry's protobuf int32 fields (GPUs, versions, burst) take
INT32_MAX = 2**31 - 1
#: the models below refuse NaN and Infinity (YAML's .nan/.inf, or 1e400): a timeout or
#: rate of either reached the registry and the runtime as a value nothing could use
_PLAIN = ConfigDict(extra="forbid", allow_inf_nan=False)

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
NAME_FIX = "use 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise invalid("service.name_invalid", f"service name {name!r} is not a DNS label", NAME_FIX,
                      path="$.metadata.name")
    return name


class Resources(BaseModel):
    model_config = _PLAIN
    cpu: float = Field(0, ge=0, description="CPU cores; 0 = no limit")
    memory: str = Field("", description="memory limit such as 512Mi or 2Gi; empty = no limit")
    gpu: int = Field(0, ge=0, le=INT32_MAX, description="number of GPUs")

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str) -> str:
        # ASCII digits only, and a size a double holds: "١٢Mi" and 400 digits got through
        m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?", v)
        if v and m is None:
            raise ValueError("memory must look like 512Mi or 2Gi")
        if m is not None and not float(m.group(1)) < 2.0**63:
            raise ValueError("memory is more bytes than any machine has")
        return v


class Auth(BaseModel):
    model_config = _PLAIN
    required: bool = Field(False, description="calls need an API key with scope "
                           "invoke:<service> or invoke:* (docs/security.md)")


class RateLimit(BaseModel):
    model_config = _PLAIN
    rps: float = Field(0, ge=0, description="requests per second the service accepts; "
                       "0 = no limit; more get 429 with Retry-After")
    burst: int = Field(0, ge=0, le=INT32_MAX, description="requests allowed at once above "
                       "the rate; 0 = max(1, rps)")


class TrafficTarget(BaseModel):
    model_config = _PLAIN
    version: int = Field(ge=1, le=INT32_MAX, description="model version number")
    percent: float = Field(ge=0, le=100, description="share of requests without an "
                           "X-Model-Version header; all entries add up to 100")


class Autoscaling(BaseModel):
    model_config = _PLAIN
    min: int = Field(1, ge=0, le=64, description="fewest replicas; 0 scales to zero when idle")
    max: int = Field(ge=1, le=64, description="most replicas")
    target_concurrency: float = Field(1.0, gt=0, description="requests in flight or queued "
                                      "per replica to aim for")
    idle_timeout_s: float = Field(600.0, gt=0, description="with min 0: scale to zero after "
                                  "this long without requests (the next request waits for a "
                                  "cold start)")
    scale_down_delay_s: float = Field(30.0, ge=0, description="load must stay lower this "
                                      "long before replicas are removed")

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class ModelRef(BaseModel):
    model_config = _PLAIN
    name: str
    version: int = Field(0, ge=0, le=INT32_MAX, description="0 = latest")


class ServiceSpecBody(BaseModel):
    model_config = _PLAIN
    package: str | None = Field(None, description="directory or zip, relative to the YAML file")
    model: ModelRef | None = None
    runtime: Literal["process", "docker"] = "process"
    replicas: int = Field(1, ge=0, le=64)
    resources: Resources = Field(default_factory=Resources)
    env: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(0, ge=0, description="per-request timeout; 0 = package default")
    auth: Auth = Field(default_factory=Auth)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    traffic: list[TrafficTarget] = Field(default_factory=list, description="canary split "
                                         "across versions, e.g. [{version: 3, percent: 90}, "
                                         "{version: 4, percent: 10}]; empty = all to the "
                                         "target version")
    autoscaling: Autoscaling | None = Field(None, description="replicas follow the load "
                                            "(replaces `replicas`)")
    concurrency: int = Field(1, ge=1, le=1024, description="requests one replica works on at "
                             "once; 1 suits models that are not thread-safe")
    queue_size: int = Field(64, ge=1, le=100_000, description="requests that may wait for a "
                            "free replica (per runtime); more get 429 with Retry-After")
    deploy_timeout_s: float = Field(1200.0, gt=0, description="a rollout whose replicas are "
                                    "not ready by then is rolled back")

    @model_validator(mode="after")
    def _traffic(self) -> ServiceSpecBody:
        if self.traffic:
            total = sum(t.percent for t in self.traffic)
            if abs(total - 100.0) > 1e-6:
                raise ValueError(f"traffic percentages add up to {total:g}, not 100")
            versions = [t.version for t in self.traffic]
            if len(set(versions)) != len(versions):
                raise ValueError("traffic names a version more than once")
        return self


class Metadata(BaseModel):
    model_config = _PLAIN
    name: str
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"{v!r} is not a DNS label: {NAME_FIX}")
        return v


class ModelService(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    api_version: Literal["modelport/v1"] = Field("modelport/v1", alias="apiVersion")
    kind: Literal["ModelService"] = "ModelService"
    metadata: Metadata
    spec: ServiceSpecBody = Field(default_factory=ServiceSpecBody)


def json_path(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as the JSON path problems are reported at."""
    out = "$"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def parse_service(doc: Any, source: str = "") -> ModelService:
    """Validate one ModelService document; every problem is reported at once."""
    if not isinstance(doc, dict):
        raise invalid("service.not_a_mapping", f"{source or 'the document'} is not a YAML mapping",
                      "write a ModelService with apiVersion, kind, metadata and spec")
    try:  # before pydantic walks it: a YAML alias bomb, lone surrogates, NaN
        plain_json.check(doc, source or "spec", "service")
    except plain_json.NotPlain as exc:
        raise invalid("service.spec_invalid", f"{source or 'the service spec'} cannot be "
                      f"used: {exc.problem.message}", exc.problem.fix,
                      path=exc.problem.path, problems=[exc.problem]) from None
    try:
        svc = ModelService.model_validate(doc)
    except ValidationError as exc:
        problems = [
            Problem(path=(f"{source}:" if source else "") + json_path(e["loc"]),
                    message=e["msg"], fix="see config/modelservice.schema.json", code=e["type"])
            for e in exc.errors()
        ]
        raise invalid("service.invalid", f"{source or 'service spec'} has {len(problems)} "
                      "problem(s)", "correct the fields listed", problems=problems) from None
    if svc.spec.package and svc.spec.model:
        raise invalid("service.package_and_model", "spec.package and spec.model are exclusive",
                      "give either a package path or a registry model reference",
                      path="$.spec")
    return svc


def load_service_file(text: str, source: str = "") -> list[ModelService]:
    """Parse every ModelService document in a YAML file."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise invalid("service.yaml_invalid", f"{source or 'YAML'} is not valid YAML: {exc}",
                      "fix the YAML syntax") from None
    return [parse_service(d, source) for d in docs]


def json_schema() -> dict[str, Any]:
    return ModelService.model_json_schema(by_alias=True)


SCHEMA_PATH = "config/modelservice.schema.json"


def write_schema(root: str = ".") -> str:
    """Write the ModelService JSON Schema for editors; `python -m modelport.spec.service`."""
    import json
    from pathlib import Path

    path = Path(root) / SCHEMA_PATH
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return str(path)


if __name__ == "__main__":
    print(write_schema())
