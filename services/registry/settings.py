"""Registry settings (env prefix MODELPORT_REGISTRY_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelport.home import HomeLayout


class RegistrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELPORT_REGISTRY_")

    home: Path = Field(description="platform home: database, blobs, packages")
    listen: str = Field("", description="gRPC address; default unix:<home run dir>/registry.sock")
    builder_address: str = Field("", description="builder gRPC address")
    runtime_address: str = Field("", description="runtime gRPC address (the local agent); "
                                 "\"none\" = only agents that register by heartbeat")
    agent_ttl_s: float = Field(5.0, gt=0, description="a runtime agent silent this long is "
                               "lost: its replicas are started on other agents")
    heartbeat_s: float = Field(1.0, gt=0, description="how often agents are asked to "
                               "heartbeat")
    max_upload_bytes: int = Field(100 * 1024 * 1024, description="largest accepted package zip")
    max_entries: int = Field(10_000, description="most files a package zip may hold")
    max_uncompressed_bytes: int = Field(2 * 1024**3, description="largest extracted package")
    reconcile_interval_s: float = Field(0.5, description="seconds between controller passes")
    task_ttl_s: float = Field(86400.0, gt=0, description="how long finished async tasks and "
                              "their results are kept")
    task_lease_s: float = Field(30.0, gt=0, description="a running task whose gateway has not "
                                "renewed it for this long is failed as interrupted")
    batch_lease_s: float = Field(10.0, gt=0, description="a running batch item whose gateway "
                                 "has not renewed it for this long is run again")
    max_batch_bytes: int = Field(2 * 1024**3, description="largest accepted batch input "
                                 "archive")

    event_retention_s: float = Field(7 * 86400.0, description="events older than this are "
                                     "deleted; 0 keeps them forever")

    @property
    def layout(self) -> HomeLayout:
        return HomeLayout(self.home)

    def resolved(self) -> RegistrySettings:
        lay = self.layout
        return self.model_copy(update={
            "listen": self.listen or lay.socket("registry"),
            "builder_address": self.builder_address or lay.socket("builder"),
            "runtime_address": self.runtime_address or lay.socket("runtime"),
        })
