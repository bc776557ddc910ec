"""The management API under /api/v1: what the CLI, SDK and console use.

Each handler translates HTTP to one registry RPC; package uploads are streamed to
the registry in chunks, never held whole in memory.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from modelport.errors import invalid, not_found, too_large
from modelport.spec.service import ModelService, parse_service
from modelport.v1 import registry_pb2, registry_pb2_grpc
from services.gateway import call_examples
from services.gateway.rest.params import parse_json
from services.gateway.rest.serving import (
    serving_spec_proto,
    serving_spec_view,
    serving_status_view,
)
from services.rpc.errors import from_rpc_error

CHUNK = 1024 * 1024
#: events a service view from GET /api/v1/services/{name} carries (newest last)
RECENT_EVENTS = 10


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


class ManagementApi:
    def __init__(self, registry: registry_pb2_grpc.RegistryStub, max_upload_bytes: int,
                 forget_route: Callable[[str], None] = lambda name: None) -> None:
        self.registry = registry
        self.forget_route = forget_route
        self.max_upload_bytes = max_upload_bytes

    async def _call(self, method: str, request: Any, timeout: float = 30) -> Any:
        try:
            return await getattr(self.registry, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, "registry") from None

    # views ----------------------------------------------------------------------------
    def service_view(self, request: Request, svc: registry_pb2.Service) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        url = f"{base}/v1/services/{svc.name}/infer"
        iface = json.loads(svc.interface_json or "{}")
        inputs = iface.get("inputs", [])
        st = svc.status
        spec = svc.spec
        examples = {"curl": call_examples.curl(url, inputs),
                    "python": call_examples.python(url, inputs),
                    "sdk": call_examples.sdk(base, svc.name, inputs)}
        if spec.auth.required:  # the call guide says how to authenticate
            examples = call_examples.with_auth(examples, base, svc.name, inputs)
        return {
            "name": svc.name,
            "url": url,
            "call": examples["python"],
            "examples": examples,
            "phase": st.phase,
            "message": st.message,
            "serving_version": st.serving_version,
            "target_version": st.target_version,
            "ready_replicas": st.ready_replicas,
            "generation": svc.generation,
            "observed_generation": st.observed_generation,
            "conditions": [{"type": c.type, "status": c.status, "reason": c.reason,
                            "message": c.message} for c in st.conditions],
            "kind": iface.get("kind", ""),
            "inputs": inputs,
            "outputs": iface.get("outputs", []),
            "spec": {"model": spec.model, "version": spec.version, "runtime": spec.runtime,
                     "replicas": spec.replicas, "env": dict(spec.env),
                     "resources": {"cpu": spec.resources.cpu, "memory": spec.resources.memory,
                                   "gpu": spec.resources.gpu},
                     "timeout_s": spec.timeout_s, "annotations": dict(spec.annotations),
                     "auth": {"required": spec.auth.required},
                     "rate_limit": {"rps": spec.rate_limit.rps,
                                    "burst": spec.rate_limit.burst},
                     **serving_spec_view(spec)},
            **serving_status_view(st),
            "created_at": svc.created_at,
        }

    # uploads --------------------------------------------------------------------------
    async def upload(self, source: UploadFile | Request) -> registry_pb2.PackageRef:
        """Stream a package to the registry (also POST /api/v1/gitops/packages's)."""
        limit = self.max_upload_bytes
        declared = source.size if isinstance(source, UploadFile) else int(
            source.headers.get("content-length") or 0)
        over = too_large("package.upload_too_large",
                         f"package upload is larger than the {limit}-byte limit",
                         "remove files the model does not need at run time, or ask the "
                         "operator to raise MODELPORT_GATEWAY_MAX_UPLOAD_BYTES")
        if declared and declared > limit:
            raise over
        overflow = False

        async def chunks() -> AsyncIterator[registry_pb2.PackageChunk]:
            # Raising inside a request iterator cancels the RPC; end the stream instead.
            nonlocal overflow
            size = 0
            stream = _read_chunks(source) if isinstance(source, UploadFile) else source.stream()
            async for data in stream:
                size += len(data)
                if size > limit:
                    overflow = True
                    return
                yield registry_pb2.PackageChunk(data=data)

        try:
            ref = await self.registry.UploadPackage(chunks(), timeout=600)
        except grpc.aio.AioRpcError as err:
            if overflow:
                raise over from None
            raise from_rpc_error(err, "registry") from None
        if overflow:
            raise over
        return ref

    async def _form(self, request: Request) -> tuple[UploadFile | Request | None, dict[str, str]]:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form(max_part_size=1024 * 1024)
            package = form.get("package")
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            if package is not None and not isinstance(package, UploadFile):
                raise invalid("request.package_field", "the 'package' field must be a file",
                              "send the zip as -F package=@model.zip")
            return package, fields
        if ctype in ("application/zip", "application/octet-stream"):
            return request, dict(request.query_params)
        if ctype.startswith("application/json"):
            try:
                return None, {"spec": (await request.body()).decode()}
            except UnicodeDecodeError as exc:
                raise invalid("service.spec_invalid", f"the spec is not UTF-8 text (byte "
                              f"{exc.start})", "send the ModelService document as UTF-8 "
                              "JSON or YAML") from None
        raise invalid("request.content_type", f"unsupported Content-Type {ctype!r} for a package "
                      "upload", "send multipart/form-data with a 'package' file field")

    @staticmethod
    def _spec(fields: dict[str, str], name: str) -> registry_pb2.ServiceSpec | None:
        """A ModelService document (JSON or YAML text) in the 'spec' field -> proto spec."""
        raw = fields.get("spec")
        return ManagementApi.spec_proto(raw, name) if raw else None

    @staticmethod
    def spec_proto(raw: str, name: str) -> registry_pb2.ServiceSpec:
        """A ModelService document (JSON or YAML text) -> proto spec, validated as the CLI
        validates it (also what POST /api/v1/gitops/apply converts each service with)."""
        try:
            import yaml

            doc = yaml.safe_load(raw)
        except Exception:
            raise invalid("service.spec_invalid", "the 'spec' field is not JSON or YAML",
                          "send a ModelService document") from None
        if isinstance(doc, dict) and "metadata" not in doc:
            doc = {"metadata": {"name": name or "placeholder"}, "spec": doc}
        svc: ModelService = parse_service(doc)
        s = svc.spec
        model = s.model
        return registry_pb2.ServiceSpec(
            model=model.name if model else "", version=model.version if model else 0,
            # "" when the document leaves it out: the registry picks (a custom image
            # package runs on docker; a spec asking for process is refused)
            runtime=s.runtime if "runtime" in s.model_fields_set else "",
            replicas=s.replicas,
            resources=registry_pb2.Resources(cpu=s.resources.cpu, memory=s.resources.memory,
                                             gpu=s.resources.gpu),
            env=s.env, timeout_s=s.timeout_s, annotations=svc.metadata.annotations,
            auth=registry_pb2.ServiceAuth(required=s.auth.required),
            rate_limit=registry_pb2.RateLimit(rps=s.rate_limit.rps, burst=s.rate_limit.burst),
            **serving_spec_proto(s))

    # handlers -------------------------------------------------------------------------
    async def create(self, request: Request) -> Response:
        package, fields = await self._form(request)
        name = fields.get("name", "")
        spec = self._spec(fields, name)
        upload_id = ""
        if package is not None:
            upload_id = (await self.upload(package)).upload_id
        elif spec is None or not spec.model:
            raise invalid("request.package_missing", "no package was uploaded",
                          "send the zip as a multipart file field named 'package'")
        svc = await self._call("CreateService", registry_pb2.CreateServiceRequest(
            name=name, spec=spec, upload_id=upload_id))
        return _json(self.service_view(request, svc), 201)

    async def apply(self, request: Request) -> Response:
        """PUT /api/v1/services/{name}: create or update to match the given spec (+package)."""
        name = request.path_params["name"]
        package, fields = await self._form(request)
        spec = self._spec(fields, name)
        upload_id = (await self.upload(package)).upload_id if package is not None else ""
        try:
            await self.registry.GetService(registry_pb2.GetServiceRequest(name=name), timeout=10)
            exists = True
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise from_rpc_error(err, "registry") from None
            exists = False
        if exists:
            svc = await self._call("UpdateService", registry_pb2.UpdateServiceRequest(
                name=name, spec=spec, upload_id=upload_id))
            return _json(self.service_view(request, svc))
        svc = await self._call("CreateService", registry_pb2.CreateServiceRequest(
            name=name, spec=spec, upload_id=upload_id))
        return _json(self.service_view(request, svc), 201)

    async def update_package(self, request: Request) -> Response:
        name = request.path_params["name"]
        package, fields = await self._form(request)
        if package is None:
            raise invalid("request.package_missing", "no package was uploaded",
                          "send the zip as a multipart file field named 'package'")
        svc = await self._call("GetService", registry_pb2.GetServiceRequest(name=name))
        ref = await self.upload(package)
        if same := await self._same_package(svc, ref.digest):
            return _json({**self.service_view(request, svc), "unchanged": True,
                          "notice": f"unchanged: version {same} already has this package"})
        svc = await self._call("UpdateService", registry_pb2.UpdateServiceRequest(
            name=name, upload_id=ref.upload_id))
        return _json({**self.service_view(request, svc), "unchanged": False})

    async def traffic(self, request: Request) -> Response:
        """PUT /api/v1/services/{name}/traffic ``{"traffic": [{version, percent}, ...]}``:
        the canary split alone, the rest of the spec kept (an empty list sends everything
        to the target version). What the console's split editor and pin buttons send."""
        name = request.path_params["name"]
        fix = 'send {"traffic": [{"version": 1, "percent": 90}, {"version": 2, "percent": 10}]}'
        # orjson: no lone surrogates, NaN or RecursionError from a deep body (params.py)
        body = parse_json(await request.body() or b"null", "request.body", "the body", fix)
        if not isinstance(body, dict) or not isinstance(body.get("traffic"), list):
            raise invalid("request.body", "the body must be a JSON object with a 'traffic' "
                          "list", fix)
        split = parse_service({"metadata": {"name": name},
                               "spec": {"traffic": body["traffic"]}}).spec.traffic
        svc = await self._call("GetService", registry_pb2.GetServiceRequest(name=name))
        spec = registry_pb2.ServiceSpec()
        spec.CopyFrom(svc.spec)
        del spec.traffic[:]
        spec.traffic.extend(registry_pb2.TrafficTarget(version=t.version, percent=t.percent)
                            for t in split)
        svc = await self._call("UpdateService", registry_pb2.UpdateServiceRequest(
            name=name, spec=spec))
        self.forget_route(svc.name)
        return _json(self.service_view(request, svc))

    async def _same_package(self, svc: registry_pb2.Service, digest: str) -> int:
        """The number of the version ``svc`` serves (or is rolling out) when its package is
        ``digest`` and it did not fail to build (a failed one is built again), else 0: an
        update with that package would change nothing."""
        number = svc.status.target_version or svc.status.serving_version
        if not number:
            return 0
        v = await self._call("GetVersion", registry_pb2.GetVersionRequest(
            model=svc.spec.model or svc.name, number=number))
        return number if v.digest == digest and v.state != "failed" else 0

    async def list(self, request: Request) -> Response:
        resp = await self._call("ListServices", registry_pb2.ListServicesRequest())
        return _json({"services": [self.service_view(request, s) for s in resp.services]})

    async def get(self, request: Request) -> Response:
        svc = await self._call("GetService", registry_pb2.GetServiceRequest(
            name=request.path_params["name"]))
        # whoever reads the status next calls the service: let this gateway's route follow it
        self.forget_route(svc.name)
        recent = await self._call("ListEvents", registry_pb2.ListEventsRequest(
            service=svc.name, limit=RECENT_EVENTS))
        return _json({**self.service_view(request, svc),
                      "events": [_event_view(e) for e in recent.events]})

    async def delete(self, request: Request) -> Response:
        resp = await self._call("DeleteService", registry_pb2.DeleteServiceRequest(
            name=request.path_params["name"]))
        self.forget_route(resp.name)
        return _json({"deleted": resp.name})

    async def lifecycle(self, request: Request) -> Response:
        """POST /api/v1/services/{name}/start|stop|restart (docs/serving.md)."""
        action = request.path_params["action"]
        reason = request.query_params.get("reason", "")
        method = {"start": "StartService", "stop": "StopService",
                  "restart": "RestartService"}[action]
        svc = await self._call(method, registry_pb2.ServiceActionRequest(
            name=request.path_params["name"], reason=reason[:200]))
        self.forget_route(svc.name)  # a stopped service answers 503 here at once
        return _json(self.service_view(request, svc))

    async def versions(self, request: Request) -> Response:
        svc = await self._call("GetService", registry_pb2.GetServiceRequest(
            name=request.path_params["name"]))
        resp = await self._call("ListVersions", registry_pb2.ListVersionsRequest(
            model=svc.spec.model or svc.name))
        return _json({"versions": [_version_view(v) for v in resp.versions]})

    async def model_versions(self, request: Request) -> Response:
        resp = await self._call("ListVersions", registry_pb2.ListVersionsRequest(
            model=request.path_params["model"]))
        return _json({"versions": [_version_view(v) for v in resp.versions]})

    async def build_log(self, request: Request) -> Response:
        number = int(request.path_params["number"])
        if not 0 < number < 2**31:
            raise not_found("version.not_found", f"model {request.path_params['model']!r} has "
                            f"no version {number}", "list versions with GET "
                            "/api/v1/models/{model}/versions")
        log = await self._call("GetBuildLog", registry_pb2.GetBuildLogRequest(
            model=request.path_params["model"], number=number))
        return PlainTextResponse(log.text, headers={"X-Build-State": log.state})

    async def events(self, request: Request) -> Response:
        q = request.query_params
        try:
            limit, version = int(q.get("limit") or 100), int(q.get("version") or 0)
            if not (0 <= limit < 2**31 and 0 <= version < 2**31):
                raise ValueError
        except ValueError:
            raise invalid("request.query_invalid", "limit and version must be whole numbers",
                          "send e.g. ?version=2&limit=50") from None
        resp = await self._call("ListEvents", registry_pb2.ListEventsRequest(
            service=request.path_params["name"], limit=limit, version=version))
        return _json({"events": [_event_view(e) for e in resp.events]})

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/services", self.create, methods=["POST"]),
            Route("/api/v1/services", self.list, methods=["GET"]),
            Route("/api/v1/services/{name}", self.get, methods=["GET"]),
            Route("/api/v1/services/{name}", self.apply, methods=["PUT"]),
            Route("/api/v1/services/{name}", self.delete, methods=["DELETE"]),
            Route("/api/v1/services/{name}/package", self.update_package, methods=["PUT"]),
            Route("/api/v1/services/{name}/traffic", self.traffic, methods=["PUT"]),
            Route("/api/v1/services/{name}/{action:lifecycle}", self.lifecycle,
                  methods=["POST"]),
            Route("/api/v1/services/{name}/versions", self.versions, methods=["GET"]),
            Route("/api/v1/services/{name}/events", self.events, methods=["GET"]),
            Route("/api/v1/models/{model}/versions", self.model_versions, methods=["GET"]),
            Route("/api/v1/models/{model}/versions/{number:int}/build-log", self.build_log,
                  methods=["GET"]),
        ]


async def _read_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while data := await upload.read(CHUNK):
        yield data


def _event_view(e: registry_pb2.Event) -> dict[str, Any]:
    return {"ts": e.ts, "type": e.type, "reason": e.reason, "message": e.message,
            "version": e.version}


def _version_view(v: registry_pb2.ModelVersion) -> dict[str, Any]:
    return {"model": v.model, "number": v.number, "digest": v.digest, "kind": v.kind,
            "state": v.state, "error": v.error, "build_id": v.build_id,
            "created_at": v.created_at}


__all__ = ["JSONResponse", "ManagementApi"]
