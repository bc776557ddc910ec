"""The watcher's one way into the platform: the gateway's REST API.

A commit is written with `POST /api/v1/gitops/apply` (one registry transaction) after its
new package content was staged with `POST /api/v1/gitops/packages`; the intent to apply
it and commits that cannot be applied go to `/api/v1/gitops/reports`.

Fault injection (tests and `make chaos` only): with `kill_after_writes` N the process
SIGKILLs itself once its Nth write (report, staged package or apply) has been answered.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

from modelport.client import Client
from modelport.errors import ModelportError
from services.telemetry import tracing

log = logging.getLogger(__name__)


class Platform:
    def __init__(self, url: str, timeout: float = 300.0, kill_after_writes: int = 0) -> None:
        self.client = Client(url, timeout=timeout)
        self.url = self.client.url
        self.kill_after_writes = kill_after_writes
        self.writes = 0
        if tracing.enabled():  # the gateway continues the sync's trace (traceparent)
            self.client.http.event_hooks["request"].append(_inject_trace)

    def _wrote(self) -> None:
        self.writes += 1
        if self.kill_after_writes and self.writes >= self.kill_after_writes:
            log.warning("fault injection: SIGKILL after write %d", self.writes)
            print(f"fault injection: SIGKILL after write {self.writes}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    def close(self) -> None:
        self.client.close()

    def services(self) -> list[dict[str, Any]]:
        return self.client.list()["services"]

    def model_versions(self, model: str) -> list[dict[str, Any]]:
        try:
            return self.client._json("GET", f"/api/v1/models/{model}/versions")["versions"]
        except ModelportError as exc:
            if exc.code == "model.not_found":
                return []
            raise

    def stage(self, package: Path) -> str:
        """Upload a package zip; stored by content, it changes no service. Its digest."""
        with package.open("rb") as f:
            ref = self.client._json("POST", "/api/v1/gitops/packages", content=f,
                                    headers={"Content-Type": "application/zip"})
        self._wrote()
        return str(ref["digest"])

    def apply_commit(self, body: dict[str, Any]) -> dict[str, Any]:
        """The whole commit, in force when this returns; nothing of it when it raises."""
        out = self.client._json("POST", "/api/v1/gitops/apply", json=body)
        self._wrote()
        return out

    def report(self, payload: dict[str, Any]) -> dict[str, Any]:
        out = self.client._json("POST", "/api/v1/gitops/reports", json=payload)
        self._wrote()
        return out

    def gitops(self, source: str = "") -> dict[str, Any]:
        return self.client._json("GET", "/api/v1/gitops", params={"source": source} if source
                                 else None)

    def wait_sync(self, source: str, after: int, timeout: float) -> int:
        data = self.client._json("GET", "/api/v1/gitops/wait", params={
            "source": source, "after": after, "timeout": timeout}, timeout=timeout + 15)
        return int(data["sync_requests"])


def _inject_trace(request: Any) -> None:
    from opentelemetry import propagate

    propagate.inject(request.headers)
