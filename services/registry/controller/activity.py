"""Requests waiting for a scaled-to-zero service: the registry's note of the latest one.

``ResolveRoute`` with ``wait_s`` records the demand here and wakes the controller; the
autoscaler reads it (``demand_at``) and starts a replica (a cold start).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Activity:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._demand: dict[str, float] = {}

    def demand(self, service: str) -> None:
        self._demand[service] = self.clock()

    def demand_at(self, service: str) -> float:
        return self._demand.get(service, 0.0)

    def forget(self, service: str) -> None:
        self._demand.pop(service, None)
