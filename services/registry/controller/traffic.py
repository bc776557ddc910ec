"""Traffic splits and replica templates: the terms in which wanted and serving compare.

A split is ``{version: percent}``; a template is the digest of what a replica is started
from. A service is in sync when the split that serves equals the wanted one and its
replicas run the wanted template.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from services.registry.service_spec import ServiceSpec


def template_of(spec: ServiceSpec) -> str:
    """Digest of what a replica is started from; a change rolls the replicas.

    It hashes the stored form (``to_json``), so a digest recorded by an earlier registry
    (in the status, and by the runtime with each replica) still matches."""
    stored = spec.to_json()
    keys = {k: stored.get(k) for k in ("runtime", "env", "resources", "concurrency",
                                        "queue_size")}
    keys["restarted_at"] = (stored.get("lifecycle") or {}).get("restarted_at", 0)
    return hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()
                          ).hexdigest()[:12]


def split_of(items: Any) -> dict[int, float]:
    """``[{version, percent}, ...]`` -> ``{version: percent}`` (shares above 0 only)."""
    out: dict[int, float] = {}
    for t in items or []:
        if float(t.get("percent") or 0) > 0:
            out[int(t["version"])] = float(t["percent"])
    return out


def describe(split: dict[int, float]) -> str:
    """The split in words, for events and status messages."""
    if len(split) == 1:
        return f"version {next(iter(split))}"
    return ", ".join(f"version {v} {p:g}%" for v, p in sorted(split.items()))


def primary(split: dict[int, float]) -> int:
    """The version with the largest share (the newest on a tie); 0 for no split."""
    return max(split, key=lambda v: (split[v], v)) if split else 0


def counts_for(split: dict[int, float], total: int) -> dict[int, int]:
    """Replicas per version: all of them for one version; by share (at least 1) for several."""
    if total <= 0:
        return {v: 0 for v in split}
    if len(split) == 1:
        return {v: total for v in split}
    return {v: max(1, round(total * p / 100.0)) for v, p in split.items()}
