"""Pick the replica that serves a request: least loaded among the ready replicas of a version.

A request for a version whose replicas are starting or restarting waits for one
(bounded), so a crash-and-restart does not fail the requests that come after it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from modelport.errors import Kind, ModelportError
from services.runtime.supervisor import Supervisor

_WAITING_STATES = ("starting", "restarting")


class Dispatcher:
    def __init__(self, supervisor: Supervisor, ready_wait_s: float = 60.0) -> None:
        self.supervisor = supervisor
        self.ready_wait_s = ready_wait_s
        self.in_flight: Counter[str] = Counter()

    async def pick(self, service: str, version: int, timeout_s: float) -> str:
        deadline = time.monotonic() + min(self.ready_wait_s, timeout_s or self.ready_wait_s)
        while True:
            mine = [r for r in self.supervisor.list()
                    if r.service == service and r.version == version and r.state != "stopped"]
            ready = [r for r in mine if r.state == "ready"]
            if ready:
                return min(ready, key=lambda r: self.in_flight[r.id]).id
            if not mine:
                raise ModelportError(Kind.UNAVAILABLE, "replica.none",
                                     f"no replica of {service!r} version {version} on this "
                                     "runtime", "the platform is moving it; retry shortly")
            waiting = [r for r in mine if r.state in _WAITING_STATES]
            if not waiting or time.monotonic() > deadline:
                why = "; ".join(f"{r.id}: {r.state} {r.message}".strip() for r in mine)
                raise ModelportError(Kind.UNAVAILABLE, "replica.not_ready",
                                     f"no ready replica of {service!r} version {version} ({why})",
                                     f"see `modelport events {service}` and the replica log")
            await asyncio.sleep(0.05)
