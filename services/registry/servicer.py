"""gRPC face of the registry: translates protobuf to store operations and back."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable

import grpc

from modelport.errors import conflict, invalid, not_found, too_large
from modelport.package import Package
from modelport.spec.service import check_name
from modelport.v1 import builder_pb2, builder_pb2_grpc, registry_pb2, registry_pb2_grpc
from services.registry.blobs import PackageStore
from services.registry.metrics import METRICS
from services.registry.service_spec import ServiceSpec
from services.registry.serving import Serving, lifecycle_change, serving_status_to_proto
from services.registry.store.base import (
    EventRecord,
    ServiceRecord,
    Store,
    VersionRecord,
)
from services.rpc.errors import translate_errors


def version_to_proto(v: VersionRecord) -> registry_pb2.ModelVersion:
    return registry_pb2.ModelVersion(
        model=v.model, number=v.number, digest=v.digest, kind=v.kind, config_json=v.config_json,
        interface_json=v.interface_json, state=v.state, error=v.error, build_id=v.build_id,
        created_at=v.created_at, package_dir=v.package_dir, artifact=v.artifact)


def slug(text: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-") or "model"
    return f"{base}-{secrets.token_hex(3)}"


def add_package_version(store: Store, model: str, pkg: Package, service: str) -> VersionRecord:
    """A new version of ``model`` holding ``pkg`` (numbered next), with its VersionCreated
    event; also what GitOps.ApplyCommit uses (gitops_apply.py)."""
    v = store.add_version(VersionRecord(
        model=model, number=0, digest=pkg.digest, kind=pkg.kind,
        config_json=json.dumps(pkg.config), interface_json=json.dumps(pkg.interface()),
        requirements=pkg.requirements, python=pkg.python or "", package_dir=str(pkg.root)))
    store.add_event(EventRecord(time.time(), service, model, v.number, "Normal",
                                "VersionCreated",
                                f"version {v.number} created from package {pkg.digest[:19]}"))
    return v


def runtime_for(spec: ServiceSpec, asked: str, kind: str) -> ServiceSpec:
    """A custom image package (kind ``image``) runs on docker: a spec that leaves the
    runtime out gets it; one asking for ``process`` is refused."""
    if kind != "image":
        return spec
    if asked == "process":
        raise invalid("service.runtime_not_docker",
                      "the package is a custom image (model_type Image), which runs "
                      "only as a container, and the spec asks for runtime: process",
                      "leave runtime out of the spec, or set runtime: docker",
                      path="$.spec.runtime")
    return spec if spec.runtime == "docker" else spec.replace(runtime="docker")


class RegistryServicer(registry_pb2_grpc.RegistryServicer):
    def __init__(self, store: Store, packages: PackageStore, builder: builder_pb2_grpc.BuilderStub,
                 serving: Serving, trigger: Callable[[], None]) -> None:
        self.store = store
        self.packages = packages
        self.builder = builder
        #: routes over agents, traffic splits and cold starts (serving.py)
        self.serving = serving
        self.trigger = trigger

    # helpers --------------------------------------------------------------------------
    def _event(self, service: str, model: str, version: int, reason: str, message: str) -> None:
        self.store.add_event(EventRecord(time.time(), service, model, version, "Normal", reason,
                                         message))

    def _service_or_404(self, name: str) -> ServiceRecord:
        svc = self.store.get_service(name)
        if svc is None:
            raise not_found("service.not_found", f"service {name!r} not found",
                            "list services with `modelport list`")
        return svc

    def _service_proto(self, svc: ServiceRecord) -> registry_pb2.Service:
        st = svc.status
        model = svc.spec.model or svc.name
        shown = st.get("serving_version") or st.get("target_version")
        v = self.store.get_version(model, shown) if shown else None
        if v is None:
            versions = self.store.list_versions(model)
            v = versions[-1] if versions else None
        return registry_pb2.Service(
            name=svc.name, spec=svc.spec.to_proto(), generation=svc.generation,
            created_at=svc.created_at, interface_json=v.interface_json if v else "{}",
            status=registry_pb2.ServiceStatus(
                phase=st.get("phase", "pending"), serving_version=st.get("serving_version", 0),
                target_version=st.get("target_version", 0),
                ready_replicas=st.get("ready_replicas", 0),
                observed_generation=st.get("observed_generation", 0),
                message=st.get("message", ""), updated_at=st.get("updated_at", 0.0),
                conditions=[registry_pb2.Condition(**cd) for cd in st.get("conditions", [])],
                **serving_status_to_proto(st)))

    def _version_from_upload(self, model: str, upload_id: str, service: str
                             ) -> tuple[VersionRecord, bool]:
        """The version holding this package's content, and whether it was created now."""
        pkg: Package = self.packages.get(upload_id)
        existing = self.store.find_version_by_digest(model, pkg.digest)
        if existing is not None and existing.state != "failed":
            return existing, False
        return add_package_version(self.store, model, pkg, service), True

    def _kind_of(self, spec: ServiceSpec, upload_id: str) -> str:
        """The package kind the spec will serve: the upload's, else its model version's."""
        if upload_id:
            return self.packages.get(upload_id).kind
        versions = self.store.list_versions(spec.model)
        chosen = [v for v in versions if v.number == spec.version] if spec.version else (
            versions[-1:])
        return chosen[0].kind if chosen else ""

    # RPCs -----------------------------------------------------------------------------
    @translate_errors
    async def UploadPackage(self, request_iterator: AsyncIterator[registry_pb2.PackageChunk],
                            context: grpc.aio.ServicerContext) -> registry_pb2.PackageRef:
        import asyncio

        path = self.packages.new_upload_path()
        size = 0
        limit = self.packages.limits.max_upload_bytes
        try:
            with path.open("wb") as f:
                async for chunk in request_iterator:
                    size += len(chunk.data)
                    if size > limit:
                        raise too_large("package.upload_too_large",
                                        f"package upload is larger than {limit} bytes",
                                        "remove files the model does not need at run time, "
                                        "or raise MODELPORT_REGISTRY_MAX_UPLOAD_BYTES")
                    f.write(chunk.data)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if size == 0:
            path.unlink(missing_ok=True)
            raise invalid("package.empty", "the uploaded package is empty",
                          "upload a zip with config.json at its root")
        pkg = await asyncio.to_thread(self.packages.ingest, path)
        return registry_pb2.PackageRef(digest=pkg.digest, kind=pkg.kind, name=pkg.name,
                                       interface_json=json.dumps(pkg.interface()),
                                       upload_id=pkg.digest)

    @translate_errors
    async def CreateService(self, request: registry_pb2.CreateServiceRequest,
                            context: grpc.aio.ServicerContext) -> registry_pb2.Service:
        if request.name:
            name = check_name(request.name)
        else:
            if not request.upload_id:
                raise invalid("service.name_required", "a service without a package needs a name",
                              "pass --name")
            name = slug(self.packages.get(request.upload_id).name)
        if self.store.get_service(name) is not None:
            raise conflict("service.exists", f"a service named {name!r} already exists",
                           f"choose another name, or `modelport update {name} PACKAGE`")
        spec = ServiceSpec.from_proto(request.spec, name)
        spec = runtime_for(spec, request.spec.runtime, self._kind_of(
            spec, request.upload_id))
        if request.upload_id:
            self._version_from_upload(spec.model, request.upload_id, name)
        elif not self.store.list_versions(spec.model):
            raise not_found("model.not_found", f"model {spec.model!r} has no versions",
                            "upload a package with the service")
        svc = ServiceRecord(name=name, spec=spec, status={"phase": "pending"})
        self.store.add_service(svc)
        self._event(name, spec.model, 0, "ServiceCreated", f"service {name} created")
        self.trigger()
        return self._service_proto(svc)

    @translate_errors
    async def UpdateService(self, request: registry_pb2.UpdateServiceRequest,
                            context: grpc.aio.ServicerContext) -> registry_pb2.Service:
        svc = self._service_or_404(request.name)
        spec = ServiceSpec.from_proto(request.spec, svc.name) if request.HasField(
            "spec") else svc.spec
        asked = request.spec.runtime if request.HasField("spec") else ""
        spec = runtime_for(spec, asked, self._kind_of(spec, request.upload_id))
        created = False
        if request.upload_id:
            v, created = self._version_from_upload(spec.model, request.upload_id, svc.name)
            if not request.HasField("spec") or not request.spec.version:
                # Serve the uploaded content: "latest" when it is the newest version, else pin
                # the older version it matches (uploading an old package rolls back).
                latest = self.store.list_versions(spec.model)[-1].number
                spec = spec.replace(version=0 if v.number == latest else v.number)
        lifecycle = svc.spec.to_json().get("lifecycle")
        if lifecycle:  # stop/restart are not the spec's to undo (serving.py)
            spec = spec.replace(lifecycle=lifecycle)
        if spec.to_json() != svc.spec.to_json() or created:
            svc = self.store.update_spec(svc.name, spec)
            self._event(svc.name, spec.model, 0, "SpecUpdated",
                        f"generation {svc.generation} applied")
        self.trigger()
        return self._service_proto(svc)

    @translate_errors
    async def GetService(self, request: registry_pb2.GetServiceRequest,
                         context: grpc.aio.ServicerContext) -> registry_pb2.Service:
        return self._service_proto(self._service_or_404(request.name))

    @translate_errors
    async def ListServices(self, request: registry_pb2.ListServicesRequest,
                           context: grpc.aio.ServicerContext
                           ) -> registry_pb2.ListServicesResponse:
        return registry_pb2.ListServicesResponse(
            services=[self._service_proto(s) for s in self.store.list_services()])

    @translate_errors
    async def DeleteService(self, request: registry_pb2.DeleteServiceRequest,
                            context: grpc.aio.ServicerContext
                            ) -> registry_pb2.DeleteServiceResponse:
        svc = self._service_or_404(request.name)
        self.store.delete_service(svc.name)
        self._event(svc.name, svc.spec.model or svc.name, 0, "ServiceDeleted",
                    f"service {svc.name} deleted; its model versions are kept")
        self.trigger()  # the controller stops the replicas of services that no longer exist
        return registry_pb2.DeleteServiceResponse(name=svc.name)

    # lifecycle (docs/serving.md) ------------------------------------------------------
    def _lifecycle(self, name: str, action: str, reason: str) -> registry_pb2.Service:
        svc = self._service_or_404(name)
        spec, event = lifecycle_change(svc, action, reason, time.time())
        if spec.to_json() != svc.spec.to_json():
            svc = self.store.update_spec(svc.name, spec)
        self._event(svc.name, spec.model or svc.name, 0, *event)
        self.trigger()
        return self._service_proto(svc)

    @translate_errors
    async def StartService(self, request: registry_pb2.ServiceActionRequest,
                           context: grpc.aio.ServicerContext) -> registry_pb2.Service:
        return self._lifecycle(request.name, "start", request.reason)

    @translate_errors
    async def StopService(self, request: registry_pb2.ServiceActionRequest,
                          context: grpc.aio.ServicerContext) -> registry_pb2.Service:
        return self._lifecycle(request.name, "stop", request.reason)

    @translate_errors
    async def RestartService(self, request: registry_pb2.ServiceActionRequest,
                             context: grpc.aio.ServicerContext) -> registry_pb2.Service:
        return self._lifecycle(request.name, "restart", request.reason)

    @translate_errors
    async def ListVersions(self, request: registry_pb2.ListVersionsRequest,
                           context: grpc.aio.ServicerContext
                           ) -> registry_pb2.ListVersionsResponse:
        versions = self.store.list_versions(request.model)
        if not versions:
            raise not_found("model.not_found", f"model {request.model!r} has no versions",
                            "model names are the service names they were created with")
        return registry_pb2.ListVersionsResponse(versions=[version_to_proto(v) for v in versions])

    def _version_or_404(self, model: str, number: int) -> VersionRecord:
        if number == 0:
            versions = self.store.list_versions(model)
            v = versions[-1] if versions else None
        else:
            v = self.store.get_version(model, number)
        if v is None:
            raise not_found("version.not_found", f"model {model!r} has no version {number}",
                            f"list versions with `modelport versions {model}`")
        return v

    @translate_errors
    async def GetVersion(self, request: registry_pb2.GetVersionRequest,
                         context: grpc.aio.ServicerContext) -> registry_pb2.ModelVersion:
        return version_to_proto(self._version_or_404(request.model, request.number))

    @translate_errors
    async def GetBuildLog(self, request: registry_pb2.GetBuildLogRequest,
                          context: grpc.aio.ServicerContext) -> registry_pb2.BuildLog:
        v = self._version_or_404(request.model, request.number)
        if not v.build_id:
            return registry_pb2.BuildLog(text="", state=v.state)
        log = await self.builder.GetBuildLog(builder_pb2.BuildLogRequest(id=v.build_id),
                                             timeout=10)
        return registry_pb2.BuildLog(text=log.text, state=v.state)

    @translate_errors
    async def ListEvents(self, request: registry_pb2.ListEventsRequest,
                         context: grpc.aio.ServicerContext) -> registry_pb2.ListEventsResponse:
        limit = request.limit or 100
        if request.service:
            events = self.store.list_events(request.service, limit, request.version)
        else:
            events = self.store.list_model_events(request.model, request.version, limit)
        return registry_pb2.ListEventsResponse(events=[registry_pb2.Event(
            id=e.id, ts=e.ts, service=e.service, model=e.model, version=e.version, type=e.type,
            reason=e.reason, message=e.message) for e in events])

    @translate_errors
    async def RecordEvent(self, request: registry_pb2.Event,
                          context: grpc.aio.ServicerContext) -> registry_pb2.Event:
        """An event another component saw (the xDS server: a client NACKed an update)."""
        if not request.service or not request.reason:
            raise invalid("event.fields", "an event needs a service and a reason",
                          "set Event.service and Event.reason")
        kind = request.type if request.type in ("Normal", "Warning") else "Warning"
        record = EventRecord(time.time(), request.service, request.model or request.service,
                             request.version, kind, request.reason, request.message)
        self.store.add_event(record)
        return registry_pb2.Event(id=record.id, ts=record.ts, service=record.service,
                                  model=record.model, version=record.version, type=kind,
                                  reason=record.reason, message=record.message)

    @translate_errors
    async def Metrics(self, request: registry_pb2.MetricsRequest,
                      context: grpc.aio.ServicerContext) -> registry_pb2.MetricsText:
        return registry_pb2.MetricsText(text=METRICS.exposition())

    @translate_errors
    async def ResolveRoute(self, request: registry_pb2.ResolveRouteRequest,
                           context: grpc.aio.ServicerContext) -> registry_pb2.Route:
        return await self.serving.resolve_route(request, self._service_or_404,
                                                self._version_or_404)
