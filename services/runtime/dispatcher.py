"""Pick the replica that serves a request: least loaded among the ready replicas of a version.

The slots and the queue are ``queue.py``'s: each replica takes at most its concurrency
limit, and a request that finds them all busy (or its replicas still starting or
restarting) waits in its service's bounded queue, so a crash-and-restart does not fail
the requests that come after it. Every ``pick`` is paired with a ``release``.
"""

from __future__ import annotations

from services.runtime.queue import Admission
from services.runtime.supervisor import Supervisor


class Dispatcher:
    def __init__(self, supervisor: Supervisor, ready_wait_s: float = 60.0) -> None:
        self.supervisor = supervisor
        self.ready_wait_s = ready_wait_s
        self.admission = Admission(supervisor, ready_wait_s)
        #: requests each replica is working on (services/runtime/metrics.py reads it)
        self.in_flight = self.admission.in_flight

    async def pick(self, service: str, version: int, timeout_s: float) -> str:
        """A slot on a replica (waiting in the queue for one); ``release`` gives it back."""
        return await self.admission.acquire(service, version, timeout_s)

    def release(self, replica_id: str, service: str = "") -> None:
        self.admission.release(replica_id, service)
