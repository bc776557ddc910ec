"""Records the registry keeps and the storage interface the rest of the registry codes against."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.registry.service_spec import ServiceSpec


@dataclass
class VersionRecord:
    """An immutable numbered model version; only its build state moves."""

    model: str
    number: int
    digest: str
    kind: str
    config_json: str
    interface_json: str
    requirements: str
    python: str
    package_dir: str
    state: str = "pending"  # pending | building | ready | failed
    error: str = ""
    build_id: str = ""
    artifact: str = ""
    created_at: float = 0.0


@dataclass
class ServiceRecord:
    """Desired state (spec, generation) and observed state (status) of one service."""

    name: str
    spec: ServiceSpec
    status: dict[str, Any] = field(default_factory=dict)
    generation: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class EventRecord:
    ts: float
    service: str
    model: str
    version: int
    type: str  # Normal | Warning
    reason: str
    message: str
    id: int = 0


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[None]:
        """Writes inside the block commit together or not at all (nested blocks join)."""
        ...

    def add_version(self, v: VersionRecord) -> VersionRecord: ...
    def find_version_by_digest(self, model: str, digest: str) -> VersionRecord | None: ...
    def get_version(self, model: str, number: int) -> VersionRecord | None: ...
    def list_versions(self, model: str) -> list[VersionRecord]: ...
    def update_version(self, model: str, number: int, **fields: Any) -> None: ...

    def add_service(self, s: ServiceRecord) -> None: ...
    def get_service(self, name: str) -> ServiceRecord | None: ...
    def list_services(self) -> list[ServiceRecord]: ...
    def update_spec(self, name: str, spec: ServiceSpec) -> ServiceRecord: ...
    def update_status(self, name: str, status: dict[str, Any]) -> None: ...
    def delete_service(self, name: str) -> bool: ...

    def add_event(self, e: EventRecord) -> None: ...
    def list_events(self, service: str, limit: int = 100,
                    version: int = 0) -> list[EventRecord]: ...
    def list_model_events(self, model: str, version: int = 0,
                          limit: int = 100) -> list[EventRecord]: ...
    def prune_events(self, before: float) -> int: ...

    # GitOps sync state (services/registry/gitops_sources.py): JSON-able dicts keyed by id/name
    def put_gitops_source(self, source: dict[str, Any]) -> None: ...
    def list_gitops_sources(self) -> list[dict[str, Any]]: ...
    def replace_gitops_services(self, source: str, rows: list[dict[str, Any]]) -> None: ...
    def list_gitops_services(self, source: str = "") -> list[dict[str, Any]]: ...
    def close(self) -> None: ...
