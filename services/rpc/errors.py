"""Carry a ModelportError across a gRPC hop and back, losing nothing.

Servers abort with the kind's status code and the whole error as JSON in trailing
metadata; clients turn an AioRpcError back into the same ModelportError.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from modelport.errors import GRPC_METADATA_KEY, GRPC_STATUS, Kind, ModelportError, disk_full

log = logging.getLogger(__name__)

_CODE_TO_KIND: dict[grpc.StatusCode, Kind] = {
    grpc.StatusCode.INVALID_ARGUMENT: Kind.INVALID,
    grpc.StatusCode.NOT_FOUND: Kind.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: Kind.CONFLICT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Kind.EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED: Kind.DEADLINE,
    grpc.StatusCode.UNAVAILABLE: Kind.UNAVAILABLE,
    grpc.StatusCode.ABORTED: Kind.MODEL,
    grpc.StatusCode.UNAUTHENTICATED: Kind.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED: Kind.FORBIDDEN,
}

F = TypeVar("F", bound=Callable[..., Any])


async def abort(context: grpc.aio.ServicerContext, err: ModelportError) -> None:
    code = getattr(grpc.StatusCode, GRPC_STATUS[err.kind])
    await context.abort(code, err.message, trailing_metadata=((GRPC_METADATA_KEY, err.to_json()),))


def translate_errors(method: F) -> F:
    """Servicer decorator: ModelportError -> status + metadata; anything else -> INTERNAL."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except ModelportError as err:
            await abort(context, err)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            if (full := disk_full(exc)) is not None:  # the operator's to fix: no traceback
                log.error("%s: %s (%s)", method.__name__, full.message, exc)
                await abort(context, full)
            ref = uuid.uuid4().hex[:12]
            log.exception("internal error in %s (ref %s)", method.__name__, ref)
            await abort(context, ModelportError(
                Kind.INTERNAL, "internal", f"internal error (ref {ref}); see the component log"))

    return wrapper  # type: ignore[return-value]


def from_rpc_error(err: grpc.aio.AioRpcError, hop: str = "") -> ModelportError:
    """Rebuild the ModelportError a peer sent, or describe a transport failure."""
    for key, value in err.trailing_metadata() or ():
        if key == GRPC_METADATA_KEY:
            return ModelportError.from_dict(json.loads(value))
    kind = _CODE_TO_KIND.get(err.code(), Kind.INTERNAL)
    if err.code() == grpc.StatusCode.UNAVAILABLE:
        return ModelportError(kind, "component.unavailable",
                              f"{hop or 'a platform component'} is not reachable: {err.details()}",
                              fix="check that `modelport up` is running")
    return ModelportError(kind, f"rpc.{err.code().name.lower()}", err.details() or str(err.code()))
