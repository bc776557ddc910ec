"""Events are kept for a configurable time (MODELPORT_REGISTRY_EVENT_RETENTION_S)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

log = logging.getLogger(__name__)


def prune_events(store: Any, retention_s: float, now: float | None = None) -> int:
    """Delete events older than ``retention_s``; returns how many were deleted."""
    if retention_s <= 0:
        return 0
    removed = store.prune_events((time.time() if now is None else now) - retention_s)
    if removed:
        log.info("pruned %d events older than %gs", removed, retention_s)
    return removed


async def prune_forever(store: Any, retention_s: float, every_s: float) -> None:
    while True:
        try:
            prune_events(store, retention_s)
        except Exception:  # a locked database now is fine next time
            log.exception("pruning events failed")
        await asyncio.sleep(every_s)
