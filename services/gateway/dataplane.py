"""The one inference path every protocol adapter calls: route -> check inputs -> runtime call.

Knows nothing of HTTP or gRPC framing: adapters decode into an InferenceRequest and
encode the InferenceResult. Routes are cached briefly; a runtime that no longer holds
the routed version (the model never started on the request) triggers one re-resolve.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from modelport.errors import Kind, ModelportError, invalid
from modelport.v1 import (
    inference_pb2,
    registry_pb2,
    registry_pb2_grpc,
    runtime_pb2,
    runtime_pb2_grpc,
)
from services.gateway import registry_outage, telemetry
from services.gateway.routing import Router, RouteTable
from services.gateway.runtime_link import Answer, RuntimeLinks
from services.gateway.single_flight import SingleFlight
from services.rpc.errors import from_rpc_error
from services.rpc.server import channel
from services.telemetry import tracing

_tracer = tracing.tracer("modelport.gateway")

#: error codes from the runtime that mean "no replica took the request": safe to re-route
_REROUTABLE = {"replica.none", "replica.not_ready"}
#: how often a request held for a restarting runtime tries it again
HOLD_STEP_S = 0.2


@dataclass
class Route:
    service: str
    version: int
    runtime_address: str
    interface: dict[str, Any]
    timeout_s: float
    expires: float

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return self.interface.get("inputs", [])


@dataclass
class InferenceRequest:
    service: str
    request_id: str
    inputs: list[inference_pb2.InputValue]
    version: int = 0
    timeout_s: float = 0.0
    #: the Open Inference Protocol adapters: numpy outputs may come back as raw tensors
    tensor_outputs: bool = False


@dataclass
class ForwardRequest:
    """An HTTP request for a custom image's service (``forward``), as the container gets it."""

    service: str
    request_id: str
    method: str
    target: str  # path and query: /infer?x=1
    headers: list[tuple[str, bytes]]
    body: bytes
    version: int = 0
    timeout_s: float = 0.0


@dataclass
class Forwarded:
    """The container's answer: its first part (status, headers, the body so far) and,
    unless that part ended it, the rest as they come (closing ``rest`` cancels)."""

    first: runtime_pb2.HttpResponsePart
    rest: AsyncIterator[runtime_pb2.HttpResponsePart] | None


@dataclass
class InferenceResult:
    request_id: str
    version: int
    output: inference_pb2.Output
    worker_ms: float
    total_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class DataPlane:
    #: services/gateway/auth/gate.py InferenceGate: auth -> limits, the first stage of every call
    #: (None: open, as in unit tests); a re-route inside one call does not pass it again
    gate: Any = None

    def __init__(self, registry: registry_pb2_grpc.RegistryStub, route_ttl_s: float = 1.0) -> None:
        self.registry = registry
        self.route_ttl_s = route_ttl_s
        #: route tables per (service, pinned version); routing.py picks version and agent
        self._routes: dict[tuple[str, int], RouteTable] = {}
        self.router = Router()
        self._runtimes: dict[str, runtime_pb2_grpc.RuntimeStub] = {}
        #: data sockets of runtimes on this host: unary predictions skip gRPC
        self.links = RuntimeLinks()
        self._lookups: SingleFlight[RouteTable] = SingleFlight()

    async def route(self, service: str, version: int = 0, fresh: bool = False) -> Route:
        telemetry.note_service(service)
        if self.gate is not None and not fresh:
            if tracing.enabled():
                with tracing.span(_tracer, "auth", {"modelport.service": service}):
                    await self.gate.admit(service)
            else:
                await self.gate.admit(service)
        route = await self._picked(service, version, fresh)
        telemetry.note_version(route.version)
        return route

    async def _picked(self, service: str, version: int, fresh: bool = False) -> Route:
        """A version and an endpoint from the (cached, unless ``fresh``) route table."""
        table = await self._table(service, version, fresh)
        vr = self.router.pick_version(table, version)
        endpoint = self.router.pick_endpoint(vr)
        return Route(service, vr.version, endpoint.address if endpoint else "", vr.interface,
                     vr.timeout_s, table.expires)

    async def _table(self, service: str, version: int, fresh: bool = False,
                     wait_s: float = 0.0) -> RouteTable:
        """The service's route table (cached ``route_ttl_s``); a pinned version the
        unpinned table does not list is asked for on its own. ``wait_s``: the registry
        waits for a replica (cold start) before answering."""
        now = time.monotonic()
        main = self._routes.get((service, 0))
        if not fresh and not wait_s:
            if main and main.expires > now and (not version or version in main.versions):
                return main
            own = self._routes.get((service, version))
            if version and own and own.expires > now:
                return own
        ask = version if wait_s or (version and main and main.expires > now) else 0
        try:
            if fresh or wait_s:
                table = await self._resolve(service, ask, wait_s)
            else:  # expired under load: the requests that missed together ask once
                table = await self._lookups.run(
                    (service, ask), lambda: self._resolve(service, ask, wait_s))
            if version and ask == 0 and version not in table.versions:
                ask, table = version, await self._resolve(service, version)
        except ModelportError as error:
            if error.code == "service.not_found":
                telemetry.note_unknown_service()
            stale = self._routes.get((service, ask))
            if stale is None or not registry_outage.away(error) or not registry_outage.usable(
                    stale.fetched_at, now):
                raise
            stale.expires = now + registry_outage.RETRY_S  # registry_outage.py: serve on
            return stale
        self._routes[(service, ask)] = table
        return table

    async def _resolve(self, service: str, version: int, wait_s: float = 0.0) -> RouteTable:
        with tracing.span(_tracer, "route", {"modelport.service": service}):
            try:
                r = await self.registry.ResolveRoute(
                    registry_pb2.ResolveRouteRequest(service=service, version=version,
                                                     wait_s=wait_s),
                    timeout=10 + wait_s)
            except grpc.aio.AioRpcError as err:
                error = from_rpc_error(err, "registry")
                if not registry_outage.away(error):  # unreachable: _table may use the last
                    self._routes.pop((service, version), None)
                raise error from None
        return RouteTable.from_proto(r, time.monotonic() + self.route_ttl_s)

    async def _with_replica(self, req: InferenceRequest, route: Route, timeout: float) -> Route:
        """A route whose version has no replica (scaled to zero; its agent lost and the
        replicas being placed elsewhere): wait, bounded by the request's timeout, for one."""
        table = await self._table(req.service, req.version, fresh=True, wait_s=timeout)
        vr = table.versions.get(route.version) if not req.version else None
        if vr is None or not vr.has_replicas:
            vr = self.router.pick_version(table, req.version)
        endpoint = self.router.pick_endpoint(vr)
        if endpoint is None:
            raise ModelportError(Kind.UNAVAILABLE, "service.no_replica",
                                 f"service {req.service!r} has no replica to take the request",
                                 f"retry shortly; `modelport events {req.service}` says why")
        return Route(req.service, vr.version, endpoint.address, vr.interface, vr.timeout_s,
                     table.expires)

    def forget(self, service: str) -> None:
        """Drop cached routes of a service (after this gateway changed or deleted it)."""
        for key in [k for k in self._routes if k[0] == service]:
            del self._routes[key]
        self._lookups.forget(lambda key: key[0] == service)
        if self.gate is not None:
            self.gate.forget(service)

    async def authorize(self, service: str) -> None:
        """The auth stage alone, for what belongs to a service without calling it (its
        async tasks, also after the service is gone)."""
        if self.gate is not None:
            await self.gate.admit(service, limit=False, strict=True)

    def runtime(self, address: str) -> runtime_pb2_grpc.RuntimeStub:
        stub = self._runtimes.get(address)
        if stub is None:
            stub = self._runtimes[address] = runtime_pb2_grpc.RuntimeStub(channel(address))
        return stub

    @staticmethod
    def check_inputs(route: Route, inputs: list[inference_pb2.InputValue]) -> None:
        """Unknown or missing input names -> one INVALID error listing what is expected."""
        if route.interface.get("kind") == "image":
            raise invalid("request.http_only",
                          f"service {route.service!r} is a custom image, which answers HTTP "
                          "on its own paths, not inputs",
                          f"call its paths over REST: /v1/services/{route.service}/<path> "
                          "(POST .../infer reaches its /infer)")
        if route.interface.get("kind") == "modelarts":
            return  # its `apis` request is a JSON Schema: extra keys allowed, none required
        expected = [i["name"] for i in route.inputs]
        given = [i.name for i in inputs]
        unknown = [n for n in given if n not in expected]
        missing = [n for n in expected if n not in given and not _optional(route, n)]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append(f"unknown input(s) {', '.join(map(repr, unknown))}")
            if missing:
                parts.append(f"missing input(s) {', '.join(map(repr, missing))}")
            raise invalid("request.inputs", f"{'; '.join(parts)} for service {route.service!r}",
                          "send exactly these inputs: " + ", ".join(
                              f"{i['name']} ({i['type']})" for i in route.inputs),
                          details={"expected": route.inputs})

    async def _prepared(self, req: InferenceRequest, route: Route | None
                        ) -> tuple[Route, float]:
        """The request's route (its inputs checked against it) and its timeout."""
        route = route or await self.route(req.service, req.version)
        self.check_inputs(route, req.inputs)
        return route, req.timeout_s or route.timeout_s or 60.0

    async def _reroute(self, req: InferenceRequest, route: Route, error: ModelportError,
                       may_retry: bool) -> Route | None:
        """After a call failed with ``error``: a runtime found gone is marked down; a
        fresh route when nothing reached a replica and this was the first try (so it
        may go to another replica or runtime), else None (the caller raises)."""
        if error.code == "component.unavailable":
            self.router.mark_down(route.runtime_address)
        if may_retry and (error.code in _REROUTABLE or error.code == "component.unavailable"):
            return await self.route(req.service, req.version, fresh=True)
        return None

    async def infer(self, req: InferenceRequest, route: Route | None = None) -> InferenceResult:
        start = time.perf_counter()
        route, timeout = await self._prepared(req, route)
        telemetry.note_request_id(req.request_id)
        attempt, held = 0, 0.0
        while True:
            if not route.runtime_address:
                route = await self._with_replica(req, route, timeout)
            try:
                if tracing.enabled():
                    with tracing.span(_tracer, "runtime.call", {
                            "modelport.service": route.service,
                            "modelport.version": route.version,
                            "modelport.request_id": req.request_id,
                            "modelport.attempt": attempt}):
                        answer = await self._counted_call(route, req, timeout)
                else:
                    answer = await self._counted_call(route, req, timeout)
                break
            except ModelportError as error:
                never_ran = error.details.get("not_sent") or (
                    attempt >= 1 and error.code in _REROUTABLE)
                if never_ran and held + HOLD_STEP_S < timeout:
                    # the runtime is restarting (its socket is gone, or it is back without
                    # the replica yet) and no model saw this request: hold it, up to its
                    # deadline, as for a version with no replica yet, then try again
                    held += HOLD_STEP_S
                    if error.details.get("not_sent"):
                        self.router.mark_down(route.runtime_address)
                    await asyncio.sleep(HOLD_STEP_S)
                    # the cached table (single flight, route_ttl_s): held requests do not
                    # each ask the registry; another runtime with a replica is taken
                    route = await self._picked(req.service, req.version)
                    continue
                fresh = await self._reroute(req, route, error, attempt == 0)
                if fresh is None:
                    raise
                route, attempt = fresh, attempt + 1
        telemetry.note_version(answer.version)
        return InferenceResult(req.request_id, answer.version, answer.output, answer.duration_ms,
                               (time.perf_counter() - start) * 1000)

    async def _counted_call(self, route: Route, req: InferenceRequest, timeout: float
                            ) -> Answer:
        """``_call``, counted in flight at its runtime while it runs (``Router.calling``
        without a generator context manager: this is every request's path)."""
        address = route.runtime_address
        self.router.begin_call(address)
        try:
            return await self._call(route, req, timeout)
        finally:
            self.router.end_call(address)

    async def _call(self, route: Route, req: InferenceRequest, timeout: float) -> Answer:
        """One unary call to the route's runtime: its data socket when it is on this host
        (``runtime_link.py``: no gRPC on the hot path), gRPC otherwise."""
        link = self.links.get(route.runtime_address)
        if link is not None:
            return await link.predict(req.request_id, route.service, route.version, req.inputs,
                                      timeout, req.tensor_outputs, tracing.carrier())
        try:
            resp = await self.runtime(route.runtime_address).Predict(
                predict_request(route, req, timeout), timeout=timeout + 5)
        except grpc.aio.AioRpcError as err:
            raise _runtime_failure(err, timeout, "answer") from None
        return Answer(resp.output, resp.version, resp.replica_id, resp.duration_ms)

    async def serves_http(self, service: str) -> bool:
        """Whether ``service`` is a custom image (some version of it), from the route table
        and without the auth stage: which routes it has is not a secret of the caller's,
        and one that is not keeps the router's own 404 (``rest/forward.py``)."""
        try:
            table = await self._table(service, 0)
        except ModelportError:
            return False
        return any(vr.interface.get("kind") == "image" for vr in table.versions.values())

    async def forward(self, req: ForwardRequest, route: Route) -> Forwarded:
        """An HTTP request to a replica of the route's version (a custom image): the
        runtime's ``ForwardHttp``. Routed again (once, then held up to its timeout, as
        ``infer`` does) only while no replica took it, so a method that is not idempotent
        never reaches a container twice."""
        timeout = req.timeout_s or route.timeout_s or 60.0
        telemetry.note_request_id(req.request_id)
        attempt, held = 0, 0.0
        while True:
            if not route.runtime_address:
                route = await self._with_replica(req, route, timeout)  # type: ignore[arg-type]
            address = route.runtime_address
            msg = runtime_pb2.HttpRequest(
                service=route.service, version=route.version, request_id=req.request_id,
                method=req.method, target=req.target, body=req.body, timeout_s=timeout,
                headers=[runtime_pb2.HttpHeader(name=k, value=v) for k, v in req.headers])
            call = self.runtime(address).ForwardHttp(msg, timeout=timeout + 5)
            self.router.begin_call(address)
            try:
                if tracing.enabled():
                    with tracing.span(_tracer, "runtime.call", {
                            "modelport.service": route.service,
                            "modelport.version": route.version,
                            "modelport.request_id": req.request_id,
                            "modelport.attempt": attempt}):
                        first = await call.read()
                else:
                    first = await call.read()
                if first is grpc.aio.EOF:
                    raise ModelportError(Kind.UNAVAILABLE, "runtime.no_answer",
                                         "the runtime ended the call without an answer",
                                         "retry; see the runtime's log")
            except grpc.aio.AioRpcError as err:
                self.router.end_call(address)
                call.cancel()
                error = _runtime_failure(err, timeout, "answer")
                if attempt >= 1 and error.code in _REROUTABLE and held + HOLD_STEP_S < timeout:
                    held += HOLD_STEP_S  # a rollout moving replicas: hold, as infer does
                    await asyncio.sleep(HOLD_STEP_S)
                    route = await self._picked(req.service, req.version)
                    continue
                fresh = await self._reroute(req, route, error, attempt == 0)  # type: ignore[arg-type]
                if fresh is None:
                    raise error from None
                route, attempt = fresh, attempt + 1
                continue
            except BaseException:
                self.router.end_call(address)
                call.cancel()
                raise
            telemetry.note_version(first.version or route.version)
            if first.end:
                self.router.end_call(address)
                return Forwarded(first, None)
            return Forwarded(first, self._rest(call, address, timeout))

    async def _rest(self, call: Any, address: str, timeout: float
                    ) -> AsyncIterator[runtime_pb2.HttpResponsePart]:
        try:
            while True:
                part = await call.read()
                if part is grpc.aio.EOF:
                    return
                yield part
                if part.end:
                    return
        except grpc.aio.AioRpcError as err:
            raise _runtime_failure(err, timeout, "finish") from None
        finally:
            self.router.end_call(address)
            call.cancel()

    async def infer_stream(self, req: InferenceRequest, route: Route | None = None
                           ) -> AsyncIterator[inference_pb2.PredictChunk]:
        """Chunks as the model yields them. Re-routed only before the first chunk, and only
        when no replica took the request; closing the iterator cancels the model's work."""
        route, timeout = await self._prepared(req, route)
        for attempt in (0, 1):
            if not route.runtime_address:
                route = await self._with_replica(req, route, timeout)
            msg = predict_request(route, req, timeout)
            call = self.runtime(route.runtime_address).PredictStream(msg, timeout=timeout + 1)
            started = False
            try:
                with self.router.calling(route.runtime_address):
                    async for chunk in call:
                        started = True
                        yield chunk
                return
            except grpc.aio.AioRpcError as err:
                error = _runtime_failure(err, timeout, "finish")
                fresh = await self._reroute(req, route, error, not started and attempt == 0)
                if fresh is None:
                    raise error from None
                route = fresh
            finally:
                call.cancel()  # no-op once finished; otherwise stops the runtime and the model


def predict_request(route: Route, req: InferenceRequest, timeout: float
                    ) -> inference_pb2.PredictRequest:
    """The runtime's request. Inputs go in with CopyFrom: the constructor's ``inputs=[...]``
    re-encodes every message (~10 ms for a 4 MB tensor with upb), CopyFrom only copies."""
    msg = inference_pb2.PredictRequest(service=route.service, version=route.version,
                                       request_id=req.request_id, timeout_s=timeout,
                                       tensor_outputs=req.tensor_outputs)
    for value in req.inputs:
        msg.inputs.add().CopyFrom(value)
    return msg


def _runtime_failure(err: grpc.aio.AioRpcError, timeout: float, verb: str) -> ModelportError:
    """A failed runtime RPC as the caller's error: the runtime's own error when it sent
    one, ``request.timeout`` when the call's deadline ran out first."""
    error = from_rpc_error(err, "runtime")
    if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED and error.code.startswith("rpc"):
        error = ModelportError(Kind.DEADLINE, "request.timeout",
                               f"the model did not {verb} within {timeout:g}s",
                               "raise timeout_s in config.json or the service spec")
    return error


def _optional(route: Route, name: str) -> bool:
    return any(i["name"] == name and i.get("optional") for i in route.inputs)
