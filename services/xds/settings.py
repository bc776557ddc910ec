"""xDS server settings (env prefix MODELPORT_XDS_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelport.home import HomeLayout


class XdsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELPORT_XDS_")

    home: Path = Field(description="platform home")
    listen: str = Field("127.0.0.1:0", description="host:port of the ADS (and CSDS) gRPC "
                        "server; port 0 = pick a free one (`up --xds-port`)")
    registry_address: str = Field("", description="registry gRPC address; default the "
                                  "home's registry socket")
    poll_s: float = Field(0.5, gt=0, description="seconds between reads of the platform's "
                          "state (a change reaches clients within about this long)")
    envoy_host: str = Field("127.0.0.1", description="address the Envoy edge listener binds")
    envoy_port: int = Field(0, ge=0, description="port of the Envoy edge listener; 0 = no "
                            "edge resources (`up --envoy-port`)")
    port_file: str = Field("", description="write the bound port here as JSON once serving")

    def resolved(self) -> XdsSettings:
        return self.model_copy(update={
            "registry_address": self.registry_address or HomeLayout(self.home).socket(
                "registry")})
