"""Runtime settings (env prefix MODELPORT_RUNTIME_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelport.home import HomeLayout


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELPORT_RUNTIME_")

    home: Path = Field(description="platform home; replicas work under <home>/runtime")
    listen: str = Field("", description="gRPC address; default unix:<home run dir>/runtime.sock")
    ready_wait_s: float = Field(60.0, description="how long a request waits for a starting "
                                "or restarting replica before 503")

    metrics_host: str = Field("127.0.0.1", description="address of the /metrics HTTP server")
    metrics_port: int = Field(0, description="port of /metrics; 0 = pick a free one, -1 = off")
    replica_log_max_bytes: int = Field(10 * 1024 * 1024, description="a replica.log rotates "
                                       "when it would grow past this many bytes")
    replica_log_backups: int = Field(3, description="rotated replica logs kept "
                                     "(replica.log.1 ... .N)")

    def resolved(self) -> RuntimeSettings:
        return self.model_copy(update={"listen": self.listen or HomeLayout(self.home).socket(
            "runtime")})
