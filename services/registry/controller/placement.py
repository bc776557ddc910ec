"""Which runtime agent a new replica goes to: a pure function of the agents and their load.

Candidates are the live agents that offer the service's runtime (process, docker), have
room (``max_replicas``) and, for a replica asking for GPUs, enough GPUs that no other
replica placed there asks for. Among them: the one holding the fewest replicas of this
service (replicas spread over hosts, so losing one host leaves the others serving), then
the one holding the fewest replicas overall. No candidate: ``None`` and a sentence saying
why, which becomes a ``ScheduleFailed`` event.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AgentView:
    address: str
    id: str = ""
    max_replicas: int = 0          # 0 = no limit
    gpus: int = -1                 # -1 = unknown (the runtime itself waits for free ones)
    runtimes: tuple[str, ...] = ()  # () = unknown: assume it can run anything

    @property
    def name(self) -> str:
        return self.id or self.address


@dataclass
class Cluster:
    """The live agents, and what each holds; ``place`` records each new replica so the
    next choice in the same pass sees it."""

    agents: list[AgentView]
    replicas: Counter[str] = field(default_factory=Counter)       # address -> live replicas
    by_service: dict[str, Counter[str]] = field(default_factory=dict)
    gpus_used: Counter[str] = field(default_factory=Counter)      # address -> GPUs asked

    @property
    def addresses(self) -> set[str]:
        return {a.address for a in self.agents}

    def note(self, service: str, address: str, gpu: int = 0) -> None:
        """An existing replica of ``service`` on ``address``."""
        self.replicas[address] += 1
        self.by_service.setdefault(service, Counter())[address] += 1
        self.gpus_used[address] += max(0, gpu)

    def place(self, service: str, runtime: str = "process", gpu: int = 0
              ) -> tuple[AgentView | None, str]:
        if not self.agents:
            return None, ("no runtime agent is registered; start a runtime (`modelport serve "
                          "runtime`) pointed at this registry")
        mine = self.by_service.get(service, Counter())
        why: list[str] = []
        fits: list[AgentView] = []
        for a in self.agents:
            if a.runtimes and runtime not in a.runtimes:
                why.append(f"{a.name}: no {runtime} runtime")
            elif a.max_replicas and self.replicas[a.address] >= a.max_replicas:
                why.append(f"{a.name}: full ({self.replicas[a.address]}/{a.max_replicas} "
                           "replicas)")
            elif gpu > 0 and a.gpus >= 0 and a.gpus - self.gpus_used[a.address] < gpu:
                free = max(0, a.gpus - self.gpus_used[a.address])
                why.append(f"{a.name}: {free} free GPU(s), {gpu} needed")
            else:
                fits.append(a)
        if not fits:
            return None, (f"insufficient resources: none of {len(self.agents)} runtime "
                          f"agent(s) can take a replica ({'; '.join(why)})")
        best = min(fits, key=lambda a: (mine[a.address], self.replicas[a.address], a.address))
        self.note(service, best.address, gpu)
        return best, ""
