"""Startup, readiness and liveness probes of a replica, from config.json ``health``.

Semantics as in the ModelArts reference (section 3): while the **startup** probe runs,
the others wait; the startup check is ``setup()`` finishing, and it may take
``initial_delay + period x failure_threshold`` seconds before the replica is ``failed``
with the reason (and retried with backoff). After that, both other probes ask the worker
for a health answer every period: **readiness** failing ``failure_threshold`` times in a
row takes the replica out of load balancing (state ``unready``) until it answers again;
**liveness** failing ``failure_threshold`` times kills the worker, which is restarted.

config.json, ModelArts' flat fields apply to all three probes; nested objects override
one probe::

    "health": {"period_seconds": 5, "failure_threshold": 3,
               "startup": {"period_seconds": 2, "failure_threshold": 60},
               "readiness": {"failure_threshold": 1}}

The ModelArts ``check_method``/``url``/``command`` fields are accepted, but the check is
always the worker's own health answer: a package runs behind the shim, not as an HTTP
server of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

_FIELDS = {"initial_delay_seconds": "initial_delay_s", "period_seconds": "period_s",
           "timeout_seconds": "timeout_s", "failure_threshold": "failure_threshold"}


@dataclass(frozen=True)
class Probe:
    initial_delay_s: float
    period_s: float
    timeout_s: float
    failure_threshold: int

    @property
    def budget_s(self) -> float:
        """How long the probe may keep failing before it acts."""
        return self.initial_delay_s + self.period_s * self.failure_threshold

    def merged(self, raw: Any) -> Probe:
        """This probe with the config.json fields in ``raw`` (a dict) applied."""
        if not isinstance(raw, dict):
            return self
        changes: dict[str, Any] = {}
        for key, attr in _FIELDS.items():
            value = raw.get(key)
            if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
                # ModelArts writes strings (ASCII digits: int("²") fails)
                value = int(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                if attr in ("period_s", "failure_threshold") and value <= 0:
                    continue
                changes[attr] = int(value) if attr == "failure_threshold" else float(value)
        return replace(self, **changes)


@dataclass(frozen=True)
class Probes:
    startup: Probe
    readiness: Probe
    liveness: Probe

    @classmethod
    def defaults(cls, interval_s: float = 10.0, timeout_s: float = 10.0,
                 failures: int = 3, startup_s: float = 120.0) -> Probes:
        """Without ``health``: setup may take ``startup_s``; one missed health answer makes a
        replica unready, ``failures`` in a row restart it."""
        return cls(startup=Probe(0.0, 1.0, timeout_s, max(1, int(startup_s))),
                   readiness=Probe(0.0, interval_s, timeout_s, 1),
                   liveness=Probe(0.0, interval_s, timeout_s, failures))

    def with_health(self, health: Any) -> Probes:
        """Apply config.json ``health``: flat fields to every probe, nested ones to theirs."""
        if not isinstance(health, dict):
            return self
        out = {}
        for name in ("startup", "readiness", "liveness"):
            probe = getattr(self, name).merged(health)
            out[name] = probe.merged(health.get(name))
        return Probes(**out)

    @property
    def startup_timeout_s(self) -> float:
        return self.startup.budget_s

    @property
    def period_s(self) -> float:
        """One health ask serves both running probes: at the shorter period."""
        return min(self.readiness.period_s, self.liveness.period_s)

    @property
    def timeout_s(self) -> float:
        return max(0.1, min(self.readiness.timeout_s, self.liveness.timeout_s) or 1.0)

    @property
    def initial_delay_s(self) -> float:
        return min(self.readiness.initial_delay_s, self.liveness.initial_delay_s)


def startup_failure(budget_s: float, configured: bool) -> str:
    """The reason a replica whose setup did not finish in time is ``failed``."""
    where = "config.json health.startup" if configured else (
        "the default; set config.json health.startup to allow more")
    return (f"startup probe failed: setup() did not finish within {budget_s:g}s ({where}); "
            "the replica is restarted with backoff")
