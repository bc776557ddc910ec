"""Recording an outcome with a registry that may be restarting.

A runner that finished a task or a batch item must not lose the outcome because the
registry is down for a moment (the launcher restarts it within seconds): UNAVAILABLE is
retried with a growing pause, and so is ``storage.full`` (the home's disk is full: the
outcome is held here, up to about a minute, for an operator to free space), any other
error is final. If every try fails, the caller's
lease runs out and the registry applies its own rule (a task is failed as interrupted,
a batch item is run again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from modelport.errors import Kind
from services.rpc.errors import from_rpc_error

log = logging.getLogger(__name__)

T = TypeVar("T")
ATTEMPTS = 5
#: tries while the registry's disk is full (1 + 2 + ... + 10 s of pauses)
STORAGE_ATTEMPTS = 11


async def record(call: Callable[[], Awaitable[T]], what: str) -> T | None:
    """``call()``'s answer, retrying while the peer is UNAVAILABLE; None when it could not
    be recorded (logged with ``what``)."""
    attempt = 0
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as err:
            full = err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and \
                from_rpc_error(err).kind is Kind.STORAGE
            limit = STORAGE_ATTEMPTS if full else ATTEMPTS
            if not (full or err.code() == grpc.StatusCode.UNAVAILABLE) or \
                    attempt >= limit - 1:
                log.error("cannot record %s: %s", what, err.details())
                return None
            if full and attempt == 0:
                log.warning("cannot record %s yet: %s; retrying", what, err.details())
            await asyncio.sleep(1.0 + attempt)
            attempt += 1
