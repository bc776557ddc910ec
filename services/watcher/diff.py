"""Pair desired and live services and say what applying would change: a pure function.

`modelport diff` prints this plan and `sync` carries out the very same plan, so what
diff shows is what the next sync does. Specs are compared in one flat "comparable"
form (`replicas`, `env.LOG_LEVEL`, `package` as a content digest, ...) so every
difference is reported per field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

MANAGED_BY = "modelport.io/managed-by"
SOURCE = "modelport.io/gitops-source"
SOURCE_REPO = "modelport.io/source-repo"
SOURCE_PATH = "modelport.io/source-path"
SOURCE_COMMIT = "modelport.io/source-commit"
GITOPS = "gitops"
#: annotations that change with every commit and never count as a difference
VOLATILE = (SOURCE_COMMIT,)


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.field}: {_show(self.old)} -> {_show(self.new)}"


@dataclass
class Change:
    """One service's fate in a sync: create | update | prune | keep | orphan."""

    action: str
    name: str
    fields: list[FieldChange] = field(default_factory=list)
    drift: bool = False  # live changed outside git while the declaration did not
    file: str = ""
    line: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "name": self.name, "drift": self.drift,
                "file": self.file, "line": self.line,
                "fields": [{"field": f.field, "old": f.old, "new": f.new} for f in self.fields]}


@dataclass(frozen=True)
class Target:
    """A declared service in comparable form, with where it was declared."""

    name: str
    spec: dict[str, Any]
    file: str
    line: int

    @property
    def hash(self) -> str:
        return spec_hash(self.spec)


@dataclass(frozen=True)
class LiveService:
    name: str
    spec: dict[str, Any]  # comparable form (see comparable)
    annotations: dict[str, str]
    #: the registry's GitOps record says this source synced it, and no other source claims
    #: it: an edit by hand that dropped the annotations is drift, not someone else's service
    owned: bool = False

    def managed_by(self, source_id: str) -> bool:
        if self.annotations.get(MANAGED_BY) == GITOPS:
            return self.annotations.get(SOURCE) == source_id
        return self.owned


def _show(v: Any) -> str:
    if v is None:
        return "(none)"
    if isinstance(v, str) and v.startswith("sha256:"):
        return v[:19]
    return json.dumps(v) if not isinstance(v, str) else v


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k in ("env", "resources", "annotations"):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def field_changes(live: dict[str, Any], desired: dict[str, Any]) -> list[FieldChange]:
    a, b = flatten(live), flatten(desired)
    return [FieldChange(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)]


def _rounded(value: Any) -> Any:
    """Floats compared at 6 decimals: the registry stores some as 32-bit floats."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def comparable(*, model: str, package: str | None, version: int, runtime: str, replicas: int,
               env: dict[str, str], cpu: float, memory: str, gpu: int, timeout_s: float,
               annotations: dict[str, str], serving: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """One spec as compared: `package` (a digest) stands for the version when the service is
    declared by package; `version` when it refers to a registry version. `serving` holds the
    traffic/autoscaling/concurrency/auth/rate-limit fields, each normalised the same way on
    both sides."""
    out: dict[str, Any] = {"model": model}
    for key in SERVING_FIELDS:
        if serving and key in serving:
            out[key] = _rounded(serving[key])
    if package is not None:
        out["package"] = package
    else:
        out["version"] = version
    out.update(runtime=runtime, replicas=replicas, env=dict(env),
               resources={"cpu": float(cpu), "memory": memory, "gpu": int(gpu)},
               timeout_s=float(timeout_s),
               annotations={k: v for k, v in annotations.items() if k not in VOLATILE})
    return out


SERVING_FIELDS = ("traffic", "autoscaling", "concurrency", "auth", "rate_limit")


def plan(targets: dict[str, Target], live: dict[str, LiveService], source_id: str,
         prune: bool, applied: dict[str, str]) -> list[Change]:
    """What a sync does: create what is missing, update what differs, prune what this
    source manages and no longer declares (or report it, with prune off). `applied` maps a
    service to the hash of what was last applied, which tells drift from a new commit.
    Services this source does not manage are never in the result."""
    changes: list[Change] = []
    for name in sorted(targets):
        t = targets[name]
        cur = live.get(name)
        if cur is None:
            changes.append(Change("create", name, field_changes({}, t.spec),
                                  drift=applied.get(name) == t.hash, file=t.file, line=t.line))
            continue
        diffs = field_changes(cur.spec, t.spec)
        action = "update" if diffs else "keep"
        changes.append(Change(action, name, diffs, drift=bool(diffs) and applied.get(name) ==
                              t.hash, file=t.file, line=t.line))
    for name in sorted(live):
        if name in targets or not live[name].managed_by(source_id):
            continue
        changes.append(Change("prune" if prune else "orphan", name,
                              file=live[name].annotations.get(SOURCE_PATH, "")))
    return changes


def conflicts(targets: dict[str, Any], live: dict[str, LiveService], source_id: str
              ) -> list[str]:
    """Declared names taken by a service this source does not manage (CLI-made, or
    another repository's): never touched, reported instead."""
    return sorted(n for n in targets if n in live and not live[n].managed_by(source_id))
