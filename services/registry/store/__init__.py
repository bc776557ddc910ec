"""Storage behind one interface (base.Store): SQLite today, PostgreSQL later."""

from services.registry.store.base import EventRecord, ServiceRecord, Store, VersionRecord
from services.registry.store.sqlite import SqliteStore

__all__ = ["EventRecord", "ServiceRecord", "SqliteStore", "Store", "VersionRecord"]
