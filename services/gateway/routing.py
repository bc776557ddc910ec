"""Which version and which runtime agent a request goes to: the traffic split, version
pinning and the choice among agents, in one place the data plane calls.

The registry's ``ResolveRoute`` gives a table per service (cached briefly by the data
plane): every version a request may go to, with its share of the split
(``spec.traffic``), its interface, and the runtime agents holding its replicas.

- **Pinned** (``X-Model-Version``, the OIP version path, gRPC ``version``): that version,
  whatever its share; one with no replica is a 503 ``version.not_serving``.
- **Unpinned**: a smooth weighted round robin over the versions of the split that have
  replicas (shares renormalised over them), so 90/10 is 90/10 request by request on each
  gateway, not just on average.
- **Agent**: among those holding the version's replicas, one with ready replicas and the
  fewest requests this gateway has in flight there per ready replica; an agent whose
  last call failed to connect is skipped for a few seconds when another can serve.

Responses say which version answered (``X-Model-Version``, ``metadata.version``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from modelport.errors import Kind, ModelportError, invalid
from modelport.v1 import registry_pb2

#: header a caller pins a version with (REST); responses carry the same header
VERSION_HEADER = "x-model-version"
#: seconds an agent that refused a connection is avoided
DOWN_S = 3.0


@dataclass(frozen=True)
class Endpoint:
    address: str
    agent: str = ""
    ready: int = 0
    replicas: int = 0


@dataclass
class VersionRoute:
    version: int
    percent: float
    interface: dict[str, Any]
    timeout_s: float
    endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def has_replicas(self) -> bool:
        return any(e.replicas or e.ready for e in self.endpoints)


@dataclass
class RouteTable:
    service: str
    versions: dict[int, VersionRoute]
    expires: float
    scaled_to_zero: bool = False
    phase: str = ""
    message: str = ""
    #: when the registry gave it (monotonic): how stale it is while the registry is away
    fetched_at: float = field(default_factory=time.monotonic)

    @classmethod
    def from_proto(cls, r: registry_pb2.Route, expires: float) -> RouteTable:
        versions: dict[int, VersionRoute] = {}
        for rv in r.versions:
            versions[rv.version] = VersionRoute(
                rv.version, rv.percent, json.loads(rv.interface_json or "{}"), rv.timeout_s,
                [Endpoint(e.address, e.agent, e.ready_replicas, e.replicas)
                 for e in rv.endpoints])
        if not versions and r.version:  # a registry that knows one runtime only
            versions[r.version] = VersionRoute(
                r.version, 100.0, json.loads(r.interface_json or "{}"), r.timeout_s,
                [Endpoint(r.runtime_address, "", 1, 1)] if r.runtime_address else [])
        return cls(r.service, versions, expires, r.scaled_to_zero, r.phase, r.message)

    #: (split, the part of it with replicas), computed once: a table is not changed after
    #: it is built, and every unpinned request of the next second reads it
    _shares: tuple[dict[int, float], dict[int, float]] | None = field(
        default=None, init=False, repr=False, compare=False)

    def split(self) -> dict[int, float]:
        return {v: vr.percent for v, vr in self.versions.items() if vr.percent > 0}

    def shares(self) -> tuple[dict[int, float], dict[int, float]]:
        """The traffic split, and the versions of it that have replicas."""
        if self._shares is None:
            split = self.split()
            self._shares = split, {v: p for v, p in split.items()
                                   if self.versions[v].has_replicas}
        return self._shares


def pinned_version(header: str | None) -> int:
    """``X-Model-Version: 3`` -> 3; absent or empty -> 0 (unpinned); else a 422."""
    if header is None or not header.strip():
        return 0
    text = header.strip().lstrip("vV")
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**31:  # not "²"
        raise invalid("request.version_header", f"X-Model-Version {header!r} is not a "
                      "version number", "send a version number such as 3, or leave the "
                      "header out to follow the traffic split")
    return int(text)


class Router:
    """Per-gateway routing state: the round robin's weights, requests in flight per agent,
    and agents that just failed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.outstanding: Counter[str] = Counter()
        self._weights: dict[str, dict[int, float]] = {}
        self._down: dict[str, float] = {}

    # ------------------------------------------------------------------ versions

    def pick_version(self, table: RouteTable, pinned: int = 0) -> VersionRoute:
        if pinned:
            vr = table.versions.get(pinned)
            if vr is None or (not vr.has_replicas and vr.percent <= 0):
                serving = ", ".join(f"{v} ({p:g}%)" for v, p in sorted(table.split().items()))
                raise ModelportError(
                    Kind.UNAVAILABLE, "version.not_serving",
                    f"version {pinned} of {table.service!r} has no replica to answer",
                    f"pin a serving version ({serving or 'none'}), or leave X-Model-Version "
                    "out to follow the traffic split")
            return vr
        split, live = table.shares()
        if not split:  # nothing has a share: any version with replicas, newest first
            ready = [vr for vr in table.versions.values() if vr.has_replicas]
            if ready or table.versions:
                return max(ready or table.versions.values(), key=lambda vr: vr.version)
            raise ModelportError(Kind.UNAVAILABLE, "service.not_ready",
                                 f"service {table.service!r} has no version to serve "
                                 f"({table.phase}: {table.message})".replace(": )", ")"),
                                 f"wait until it is running (`modelport get {table.service}`)")
        if not live:  # nothing to route to yet: the data plane waits (cold start)
            return table.versions[max(split, key=lambda v: (split[v], v))]
        if len(live) == 1:  # the round robin's answer, and its weights stay all zero
            (only,) = live
            current = self._weights.get(table.service)
            if current is not None and set(current) != {only}:
                del self._weights[table.service]
            return table.versions[only]
        return table.versions[self._round_robin(table.service, live)]

    def _round_robin(self, service: str, shares: dict[int, float]) -> int:
        """Smooth weighted round robin (nginx): exact shares, evenly interleaved."""
        current = self._weights.get(service)
        if current is None or set(current) != set(shares):
            current = self._weights[service] = {v: 0.0 for v in shares}
        total = sum(shares.values())
        for v, p in shares.items():
            current[v] += p
        best = max(current, key=lambda v: (current[v], v))
        current[best] -= total
        return best

    # ------------------------------------------------------------------ agents

    def pick_endpoint(self, vr: VersionRoute) -> Endpoint | None:
        if len(vr.endpoints) == 1:  # the one agent (failing or not) when it has replicas
            only = vr.endpoints[0]
            return only if only.replicas or only.ready else None
        now = self.clock()
        usable = [e for e in vr.endpoints if e.replicas or e.ready]
        up = [e for e in usable if self._down.get(e.address, 0.0) <= now] or usable
        ready = [e for e in up if e.ready]
        pool = ready or up
        if not pool:
            return None
        return min(pool, key=lambda e: (self.outstanding[e.address] / max(1, e.ready),
                                        -e.ready, e.address))

    def mark_down(self, address: str) -> None:
        """A call could not reach the agent: prefer others for a while."""
        self._down[address] = self.clock() + DOWN_S

    @contextmanager
    def calling(self, address: str) -> Iterator[None]:
        self.begin_call(address)
        try:
            yield
        finally:
            self.end_call(address)

    def begin_call(self, address: str) -> None:
        self.outstanding[address] += 1

    def end_call(self, address: str) -> None:
        left = self.outstanding[address] - 1
        if left <= 0:
            self.outstanding.pop(address, None)
        else:
            self.outstanding[address] = left
