"""Member isolation on the Registry RPCs: who created a service (and its model), and
keeping members to what they own.

The gateway names the caller in the ``modelport-user``/``modelport-role`` metadata (the
registry's socket is reachable only by the platform's own user, see docs/security.md);
calls without it are the platform's own (controller, watcher sync).
"""

from __future__ import annotations

from typing import Any

import grpc

from modelport.errors import ModelportError, forbidden, not_found
from modelport.v1 import registry_pb2
from services.registry.store.accounts import AuthStore
from services.rpc.errors import abort

USER_KEY = "modelport-user"
ROLE_KEY = "modelport-role"


def _caller(context: grpc.aio.ServicerContext) -> tuple[str, str] | None:
    meta = dict(context.invocation_metadata() or ())
    user = meta.get(USER_KEY)
    return (user, meta.get(ROLE_KEY, "member")) if user else None


class OwnershipInterceptor(grpc.aio.ServerInterceptor):
    """Records who created a service (and its model) and keeps members to what they own.

    Members get NOT_FOUND for others' services and models (they cannot tell them from
    missing ones) and see only their own in ListServices.
    """

    _PREFIX = "/modelport.v1.Registry/"

    def __init__(self, auth: AuthStore) -> None:
        self.auth = auth

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        if handler is None or not method.startswith(self._PREFIX):
            return handler
        name = method[len(self._PREFIX):]
        check = getattr(self, f"_{name}", None)
        if check is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            caller = _caller(context)
            try:
                return await check(caller, request, lambda: inner(request, context))
            except ModelportError as err:
                await abort(context, err)

        return grpc.unary_unary_rpc_method_handler(
            guarded, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)

    # helpers ---------------------------------------------------------------------------
    def _mine(self, kind: str, name: str, caller: tuple[str, str] | None) -> bool:
        if caller is None or caller[1] == "admin":
            return True
        return self.auth.owner(kind, name) == caller[0]

    def _require(self, kind: str, name: str, caller: tuple[str, str] | None) -> None:
        if not self._mine(kind, name, caller):
            raise not_found(f"{kind}.not_found", f"{kind} {name!r} not found",
                            "list yours with `modelport list`")

    def _model_free(self, model: str, caller: tuple[str, str] | None) -> None:
        """A member may use a model they own or one nobody owns yet (a new name)."""
        if caller is None or caller[1] == "admin" or not model:
            return
        owner = self.auth.owner("model", model)
        if owner is not None and owner != caller[0]:
            raise forbidden("model.not_yours", f"model {model!r} belongs to another user",
                            "choose another service name, or deploy your own package")

    # per RPC: (caller, request, call) -> response --------------------------------------
    async def _CreateService(self, caller: Any, request: registry_pb2.CreateServiceRequest,
                             call: Any) -> Any:
        self._model_free(request.spec.model or request.name, caller)
        svc = await call()
        if caller is not None:
            self.auth.set_owner("service", svc.name, caller[0])
            model = svc.spec.model or svc.name
            if self.auth.owner("model", model) is None:
                self.auth.set_owner("model", model, caller[0])
        return svc

    async def _UpdateService(self, caller: Any, request: registry_pb2.UpdateServiceRequest,
                             call: Any) -> Any:
        self._require("service", request.name, caller)
        if request.HasField("spec"):
            self._model_free(request.spec.model or request.name, caller)
        return await call()

    async def _GetService(self, caller: Any, request: Any, call: Any) -> Any:
        self._require("service", request.name, caller)
        return await call()

    async def _DeleteService(self, caller: Any, request: Any, call: Any) -> Any:
        self._require("service", request.name, caller)
        return await call()

    # start / stop / restart (services/registry/serving.py): the owner's, like delete
    _StartService = _StopService = _RestartService = _DeleteService

    async def _ListServices(self, caller: Any, request: Any, call: Any) -> Any:
        resp = await call()
        if caller is None or caller[1] == "admin":
            return resp
        mine = self.auth.owned("service", caller[0])
        return registry_pb2.ListServicesResponse(
            services=[s for s in resp.services if s.name in mine])

    async def _ListVersions(self, caller: Any, request: Any, call: Any) -> Any:
        self._require("model", request.model, caller)
        return await call()

    async def _GetVersion(self, caller: Any, request: Any, call: Any) -> Any:
        self._require("model", request.model, caller)
        return await call()

    async def _GetBuildLog(self, caller: Any, request: Any, call: Any) -> Any:
        self._require("model", request.model, caller)
        return await call()

    async def _ListEvents(self, caller: Any, request: Any, call: Any) -> Any:
        if request.service:
            self._require("service", request.service, caller)
        else:
            self._require("model", request.model, caller)
        return await call()


def identity_metadata(user: str, role: str) -> tuple[tuple[str, str], ...]:
    """The metadata naming the caller of a Registry RPC (the gateway sends it)."""
    return ((USER_KEY, user), (ROLE_KEY, role))

