"""The SQLite store on a real file: numbering, reuse by digest, persistence, WAL."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.errors import ModelportError
from services.registry.service_spec import ServiceSpec
from services.registry.store import EventRecord, ServiceRecord, SqliteStore, VersionRecord


def v(digest: str) -> VersionRecord:
    return VersionRecord(model="m", number=0, digest=digest, kind="predictor", config_json="{}",
                         interface_json="{}", requirements="", python="", package_dir="/p")


def test_versions_are_numbered_and_found_by_digest(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db")
    assert store.add_version(v("sha256:a")).number == 1
    assert store.add_version(v("sha256:b")).number == 2
    assert store.find_version_by_digest("m", "sha256:a").number == 1
    store.update_version("m", 2, state="failed", error="boom")
    assert store.get_version("m", 2).error == "boom"
    with pytest.raises(ValueError):
        store.update_version("m", 2, nonsense=1)


def test_services_survive_reopen_and_names_are_unique(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = SqliteStore(path)
    store.add_service(ServiceRecord("a", ServiceSpec.load({"replicas": 1}), {"phase": "pending"}))
    with pytest.raises(ModelportError) as exc:
        store.add_service(ServiceRecord("a", ServiceSpec(), {}))
    assert exc.value.code == "service.exists"
    assert store.update_spec("a", ServiceSpec.load({"replicas": 2})).generation == 2
    store.add_event(EventRecord(1.0, "a", "a", 1, "Normal", "Created", "made"))
    store.close()

    again = SqliteStore(path)
    svc = again.get_service("a")
    assert svc.spec.to_json() == {"replicas": 2} and svc.generation == 2
    assert [e.reason for e in again.list_events("a")] == ["Created"]
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert again.delete_service("a") and again.get_service("a") is None
