"""The watcher's one way into the platform: the gateway's management REST API.

Services are written with the same `PUT /api/v1/services/{name}` that `modelport apply`
uses; sync state goes to `/api/v1/gitops/reports`, where the registry keeps it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelport.client import Client
from modelport.errors import ModelportError
from services.telemetry import tracing


class Platform:
    def __init__(self, url: str, timeout: float = 300.0) -> None:
        self.client = Client(url, timeout=timeout)
        self.url = self.client.url
        if tracing.enabled():  # the gateway continues the sync's trace (traceparent)
            self.client.http.event_hooks["request"].append(_inject_trace)

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

    def apply(self, name: str, spec: str, package: Path | None = None) -> dict[str, Any]:
        if package is None:  # a spec alone travels as JSON (a form without a file is refused)
            return self.client._json("PUT", f"/api/v1/services/{name}", content=spec,
                                     headers={"Content-Type": "application/json"})
        return self.client.apply(name, spec, package, wait=False)

    def delete(self, name: str) -> None:
        self.client.delete(name)

    def report(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.client._json("POST", "/api/v1/gitops/reports", json=payload)

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
