"""What the planner asks for: the actions act.py carries out, and the plan holding them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StartBuild:
    version: int


@dataclass(frozen=True)
class StartReplica:
    version: int
    agent: str = ""       # runtime agent address; "" = the registry's own runtime
    template: str = ""


@dataclass(frozen=True)
class StopReplica:
    replica_id: str
    version: int
    reason: str
    agent: str = ""
    drain_s: float = 0.0  # > 0: requests in flight finish first (the runtime drains it)


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    version: int = 0
    warning: bool = False


Action = StartBuild | StartReplica | StopReplica | Event


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
