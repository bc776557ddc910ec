"""Condition types and reasons a service status can carry, each with a sentence for the user."""

from __future__ import annotations

import time
from typing import Any

BUILT = "Built"
READY = "Ready"
PROGRESSING = "Progressing"
STALLED = "Stalled"

# phases, as in the reference's service states
PENDING = "pending"
DEPLOYING = "deploying"
RUNNING = "running"
CONCERNING = "concerning"
FAILED = "failed"
STOPPED = "stopped"


def condition(type_: str, status: bool, reason: str, message: str,
              previous: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A condition dict; keeps last_transition when the status did not change."""
    now = time.time()
    for old in previous or []:
        if old.get("type") == type_ and old.get("status") == status:
            now = old.get("last_transition", now)
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "last_transition": now}
