"""gRPC at the edge: public calls' metadata become credentials for the data plane, and the
gateway's registry channel names the management caller (``modelport-user``)."""


from __future__ import annotations

import logging
from typing import Any

import grpc

from services.gateway.auth.principal import CREDENTIALS, PRINCIPAL, Credentials
from services.registry.ownership import identity_metadata

log = logging.getLogger(__name__)


class GrpcCredentialsInterceptor(grpc.aio.ServerInterceptor):
    """Public gRPC: the call's metadata are its credentials (authorization, apikey,
    x-apig-appcode), checked by the data plane like REST headers."""

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method.decode() if isinstance(details.method, bytes) else details.method

        def creds(context: grpc.aio.ServicerContext) -> Credentials:
            meta = {k.lower(): v for k, v in (context.invocation_metadata() or ())
                    if isinstance(v, str)}
            return Credentials(meta, "POST", method, "", context.peer() or "")

        kinds = {(False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
                 (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
                 (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
                 (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler)}
        attr, make = kinds[(handler.request_streaming, handler.response_streaming)]
        inner = getattr(handler, attr)
        if handler.response_streaming:
            async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
                token = CREDENTIALS.set(creds(context))
                try:
                    async for item in inner(request, context):
                        yield item
                finally:
                    CREDENTIALS.reset(token)

            wrapped: Any = streaming
        else:
            async def single(request: Any, context: grpc.aio.ServicerContext) -> Any:
                token = CREDENTIALS.set(creds(context))
                try:
                    return await inner(request, context)
                finally:
                    CREDENTIALS.reset(token)

            wrapped = single
        return make(wrapped, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)


def _with_identity(details: Any) -> Any:
    principal = PRINCIPAL.get()
    if principal is None:
        return details
    metadata = grpc.aio.Metadata(*(details.metadata or ()),
                                 *identity_metadata(principal.user, principal.role))
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata,
                                      details.credentials, details.wait_for_ready)


class _IdentityUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_identity(details), request)


class _IdentityStreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any,
                                     request_iterator: Any) -> Any:
        return await continuation(_with_identity(details), request_iterator)


class _IdentityUnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any,
                                     request: Any) -> Any:
        return await continuation(_with_identity(details), request)


def identity_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """For the gateway's registry channel: name the management caller to the registry."""
    return [_IdentityUnary(), _IdentityStreamUnary(), _IdentityUnaryStream()]
