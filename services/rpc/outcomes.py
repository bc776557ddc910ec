"""Recording an outcome with a registry that may be restarting.

A runner that finished a task or a batch item must not lose the outcome because the
registry is down for a moment (the launcher restarts it within seconds): UNAVAILABLE is
retried with a growing pause, any other error is final. If every try fails, the caller's
lease runs out and the registry applies its own rule (a task is failed as interrupted,
a batch item is run again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

log = logging.getLogger(__name__)

T = TypeVar("T")
ATTEMPTS = 5


async def record(call: Callable[[], Awaitable[T]], what: str) -> T | None:
    """``call()``'s answer, retrying while the peer is UNAVAILABLE; None when it could not
    be recorded (logged with ``what``)."""
    for attempt in range(ATTEMPTS):
        try:
            return await call()
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE or attempt == ATTEMPTS - 1:
                log.error("cannot record %s: %s", what, err.details())
                return None
            await asyncio.sleep(1.0 + attempt)
    return None
