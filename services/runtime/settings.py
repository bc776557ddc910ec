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

    def resolved(self) -> RuntimeSettings:
        return self.model_copy(update={"listen": self.listen or HomeLayout(self.home).socket(
            "runtime")})
