"""How many replicas a service with ``autoscaling`` should run now: a pure function.

The load is what the runtimes report (requests in flight plus queued, summed over
agents). Up: at once, to ``ceil(load / target_concurrency)`` (at most ``max``). Down: only
after the load stayed lower for ``scale_down_delay_s``, to the highest need seen in that
window (at least ``min``, at least 1). To zero (``min: 0``): after ``idle_timeout_s``
without a request. From zero: as soon as a request arrives (the gateway asked the
registry for a route and waits for the cold start, which is recorded as ``demand_at``).

The decision is kept in the service status (``autoscale``), so each pass continues the
last one and an unchanged world changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from modelport.spec.service import Autoscaling


@dataclass(frozen=True)
class Load:
    """A service's requests across runtime agents."""

    in_flight: int = 0
    queued: int = 0
    last_request_at: float = 0.0

    @property
    def busy(self) -> int:
        return self.in_flight + self.queued


@dataclass(frozen=True)
class Decision:
    replicas: int
    state: dict[str, Any]
    #: (reason, message) of a change worth an event; None when nothing changed
    event: tuple[str, str] | None = None


def decide(auto: Autoscaling, previous: dict[str, Any], load: Load, demand_at: float,
           now: float) -> Decision:
    """The replicas to run now, continuing the decision kept in ``previous``."""
    lo = max(0, auto.min)
    hi = max(1, auto.max, lo)
    per = auto.target_concurrency
    idle_s = auto.idle_timeout_s
    delay_s = auto.scale_down_delay_s
    state = dict(previous)
    since = float(state.setdefault("since", now))  # when autoscaling took over
    current = int(state.get("replicas", max(lo, 1)))
    current = min(max(current, lo), hi)
    want = min(hi, math.ceil(load.busy / per)) if load.busy else 0
    if load.busy:  # idle counts from when the last request finished, not when it came
        state["busy_at"] = now
    last_activity = max(load.last_request_at, demand_at, since,
                        float(state.get("busy_at") or 0.0))

    def done(n: int, event: tuple[str, str] | None = None) -> Decision:
        state["replicas"] = n
        return Decision(n, state, event)

    if current == 0:
        zero_at = float(state.get("zero_at", 0.0))
        if load.busy or max(load.last_request_at, demand_at) > zero_at:
            state.pop("zero_at", None)
            state["below_since"] = 0.0
            n = max(1, lo, want)
            return done(n, ("ColdStart", f"a request arrived while scaled to zero; starting "
                                         f"{n} replica(s) (the request waits for it)"))
        return done(0)
    if want > current:
        state["below_since"] = 0.0
        return done(want, ("ScaledUp", f"{load.busy} request(s) in flight or queued for "
                                       f"{current} replica(s) (target {per:g} each); "
                                       f"scaling to {want}"))
    if lo == 0 and not load.busy and now - last_activity >= idle_s:
        state["below_since"] = 0.0
        state["zero_at"] = now
        return done(0, ("ScaledToZero", f"no requests for {now - last_activity:.0f}s "
                                        f"(idle timeout {idle_s:g}s); stopping every replica, "
                                        "the next request starts one again"))
    floor = max(lo, want, 1)
    if floor >= current:
        state["below_since"] = 0.0
        return done(current)
    below_since = float(state.get("below_since") or 0.0)
    if not below_since:
        state["below_since"] = now
        state["peak"] = floor
        return done(current)
    state["peak"] = max(int(state.get("peak", floor)), floor)
    if now - below_since >= delay_s:
        n = int(state["peak"])
        state["below_since"] = 0.0
        if n < current:
            return done(n, ("ScaledDown", f"load stayed at or below {n} replica(s)' worth for "
                                          f"{now - below_since:.0f}s; scaling {current} -> {n}"))
    return done(current)
