"""One registry lookup per key at a time: concurrent cache misses share it.

The gateway caches routes, policies and tokens for about a second. When an entry
expires under load, every request in flight missed it at once and each asked the
registry the same question (32 identical gRPC calls at 32 concurrent clients, each about
0.2 ms of the gateway's CPU). Here the first miss asks, and the others wait for its answer
(or its error), which is the answer they would each have got.

With tracing on, every request keeps its own lookup: its trace shows the registry call
as its own child span, as it always did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from services.telemetry import tracing

V = TypeVar("V")


class SingleFlight(Generic[V]):
    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[V]] = {}

    async def run(self, key: Hashable, lookup: Callable[[], Awaitable[V]]) -> V:
        """``await lookup()``, or the result of the same key's lookup already running.

        A caller that is cancelled does not cancel the lookup others wait for.
        """
        if tracing.enabled():
            return await lookup()
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(lookup())
            self._flights[key] = flight
            flight.add_done_callback(lambda f: self._land(key, f))
        return await asyncio.shield(flight)

    def forget(self, which: Hashable | Callable[[Hashable], bool] | None = None) -> None:
        """Later callers start a lookup of their own: what changed (a revoke, an update)
        may postdate the one running. ``which``: a key, a predicate on keys, or None
        (all)."""
        if which is None:
            self._flights.clear()
        elif callable(which):
            for key in [k for k in self._flights if which(k)]:
                del self._flights[key]
        else:
            self._flights.pop(which, None)

    def _land(self, key: Hashable, flight: asyncio.Future[V]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: no "never retrieved" warning when nobody waits
