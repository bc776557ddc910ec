"""The registry's side of serving: status fields for replicas and routing, lifecycle
operations, and the route table gateways resolve (docs/serving.md).

``ResolveRoute`` answers with every version a request may go to: its share of the
traffic split, its interface, and the runtime agents holding its replicas (ready ones
first). A stopped service is a 503 saying so. A service without a replica to route to
(scaled to zero, or its agent lost and replicas being placed elsewhere) makes a caller
that passes ``wait_s`` wait for one: the registry records the demand (which starts a
replica of a scaled-to-zero service) and answers as soon as one is ready.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from modelport.errors import conflict, unavailable
from modelport.v1 import registry_pb2
from services.registry.agents import AgentTable
from services.registry.controller.activity import Activity
from services.registry.service_spec import ServiceSpec
from services.registry.store.base import ServiceRecord, Store, VersionRecord

#: how often a waiting ResolveRoute re-reads the status the controller writes
WAIT_POLL_S = 0.1


# ---------------------------------------------------------------------- status -> proto

def serving_status_to_proto(status: dict[str, Any]) -> dict[str, Any]:
    notes = status.get("replicas") or {}
    return {
        "traffic": [registry_pb2.TrafficTarget(version=int(t["version"]),
                                               percent=float(t["percent"]))
                    for t in status.get("traffic") or []],
        "desired_replicas": int(status.get("desired_replicas") or 0),
        "replicas": [registry_pb2.ReplicaView(
            id=rid, version=int(n.get("version") or 0), agent=str(n.get("agent") or ""),
            restarts=int(n.get("restarts") or 0), state=str(n.get("state") or ""),
            message=str(n.get("pending") or n.get("unready") or ""))
            for rid, n in sorted(notes.items())],
    }


# ---------------------------------------------------------------------- lifecycle

def lifecycle_change(svc: ServiceRecord, action: str, reason: str, now: float
                     ) -> tuple[ServiceSpec, tuple[str, str]]:
    """The spec after start / stop / restart, and the event (reason, message) to record.

    Kept under ``spec.lifecycle``: applying a spec (CLI, GitOps) leaves it alone."""
    spec = svc.spec
    life = dict(spec.to_json().get("lifecycle") or {})
    why = f" ({reason})" if reason else ""
    name = svc.name
    if action == "stop":
        if life.get("stopped"):
            return spec, ("ServiceStopping", f"service {name} is already stopped{why}")
        life.update(stopped=True, stopped_at=now)
        event = ("ServiceStopping", f"stopping service {name}{why}: its replicas finish the "
                 "requests they have, then stop; calls get 503 until it is started")
    elif action == "start":
        if not life.get("stopped"):
            if svc.status.get("phase") != "failed":
                return spec, ("ServiceStarting", f"service {name} is already started{why}")
            life["restarted_at"] = now  # starting a failed service starts fresh replicas
        life.pop("stopped", None)
        life.pop("stopped_at", None)
        event = ("ServiceStarting", f"starting service {name}{why}")
    elif action == "restart":
        if life.get("stopped"):
            raise conflict("service.stopped", f"service {name!r} is stopped",
                           f"start it with `modelport start {name}`")
        life["restarted_at"] = now
        event = ("ServiceRestarting", f"restarting service {name}{why}: new replicas start, "
                 "take the traffic once ready, then the old ones drain and stop")
    else:  # pragma: no cover - the servicer passes only these three
        raise ValueError(action)
    return spec.replace(lifecycle=life), event


# ---------------------------------------------------------------------- routes

class Serving:
    def __init__(self, store: Store, agents: AgentTable, activity: Activity,
                 runtime_address: str, trigger: Callable[[], None]) -> None:
        self.store = store
        self.agents = agents
        self.activity = activity
        self.runtime_address = runtime_address
        self.trigger = trigger

    def _stopped(self, svc: ServiceRecord) -> bool:
        return svc.spec.lifecycle.stopped or (
            svc.status.get("phase") == "stopped")

    def _endpoints(self, svc: ServiceRecord) -> dict[int, list[registry_pb2.Endpoint]]:
        """Where each version's replicas are, on agents still alive (ready ones first)."""
        st = svc.status
        out: dict[int, list[registry_pb2.Endpoint]] = {}
        if "endpoints" not in st:  # written before agents: the one runtime holds them
            v = int(st.get("serving_version") or 0)
            if v:
                out[v] = [registry_pb2.Endpoint(address=self.runtime_address, agent="local",
                                                ready_replicas=int(st.get("ready_replicas")
                                                                   or 0), replicas=1)]
            return out
        for e in st.get("endpoints") or []:
            address = str(e.get("agent") or self.runtime_address)
            rec = self.agents.get(address)
            if rec is not None and not self.agents.is_live(rec):
                continue  # lost since the controller last looked
            out.setdefault(int(e["version"]), []).append(registry_pb2.Endpoint(
                address=address, agent=rec.id if rec is not None else address,
                ready_replicas=int(e.get("ready") or 0), replicas=int(e.get("live") or 0)))
        for eps in out.values():
            eps.sort(key=lambda e: (-e.ready_replicas, e.address))
        return out

    def _route(self, svc: ServiceRecord, pinned: int,
               version_or_404: Callable[[str, int], VersionRecord]) -> registry_pb2.Route:
        st = svc.status
        model = svc.spec.model or svc.name
        shares = {int(t["version"]): float(t["percent"]) for t in st.get("traffic") or []}
        if not shares and st.get("serving_version"):
            shares = {int(st["serving_version"]): 100.0}
        endpoints = self._endpoints(svc)
        wanted = [pinned] if pinned else sorted(set(shares) | set(endpoints))
        route = registry_pb2.Route(service=svc.name, phase=st.get("phase", "pending"),
                                   message=st.get("message", ""))
        for v in wanted:
            rec = version_or_404(model, v)
            config = json.loads(rec.config_json or "{}")
            route.versions.add(
                version=v, percent=shares.get(v, 0.0), interface_json=rec.interface_json,
                timeout_s=svc.spec.request_timeout_s(config),
                endpoints=endpoints.get(v, []))
        main = next((rv for rv in route.versions if rv.version == pinned), None) or max(
            route.versions, key=lambda rv: (rv.percent, rv.version), default=None)
        if main is not None:
            route.version = main.version
            route.interface_json = main.interface_json
            route.timeout_s = main.timeout_s
            route.runtime_address = (main.endpoints[0].address if main.endpoints
                                     else self.runtime_address)
        route.scaled_to_zero = (svc.spec.autoscaling is not None
                                and int(st.get("desired_replicas", 1) or 0) == 0)
        return route

    @staticmethod
    def _has_replicas(route: registry_pb2.Route) -> bool:
        serving = [rv for rv in route.versions if rv.percent > 0] or list(route.versions)
        return any(e.replicas for rv in serving for e in rv.endpoints)

    async def resolve_route(self, request: registry_pb2.ResolveRouteRequest,
                            service_or_404: Callable[[str], ServiceRecord],
                            version_or_404: Callable[[str, int], VersionRecord]
                            ) -> registry_pb2.Route:
        svc = service_or_404(request.service)
        deadline = time.monotonic() + max(0.0, request.wait_s)
        demanded = False
        while True:
            if self._stopped(svc):
                why = svc.status.get("message") or "stopped"
                raise unavailable("service.stopped",
                                  f"service {svc.name!r} is stopped ({why})",
                                  f"start it with `modelport start {svc.name}` (or POST "
                                  f"/api/v1/services/{svc.name}/start)")
            st = svc.status
            if st.get("traffic") or st.get("serving_version") or request.version:
                route = self._route(svc, request.version, version_or_404)
                if self._has_replicas(route) or request.wait_s <= 0:
                    return route
                if route.scaled_to_zero and not demanded:  # a cold start
                    self.activity.demand(svc.name)
                    self.trigger()
                    demanded = True
            elif request.wait_s <= 0 or st.get("phase") == "failed":
                phase = st.get("phase", "pending")
                raise unavailable("service.not_ready",
                                  f"service {svc.name!r} is {phase}: "
                                  f"{st.get('message', '')}".rstrip(": "),
                                  f"wait until it is running (`modelport get {svc.name}`)")
            if time.monotonic() >= deadline:
                raise unavailable("service.no_replica",
                                  f"service {svc.name!r} has no replica to take the request "
                                  f"after waiting {request.wait_s:g}s "
                                  f"({st.get('phase', 'pending')}: {st.get('message', '')})",
                                  f"retry shortly; `modelport events {svc.name}` says why")
            await asyncio.sleep(WAIT_POLL_S)
            svc = service_or_404(request.service)
