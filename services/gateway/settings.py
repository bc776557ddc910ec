"""Gateway settings (env prefix MODELPORT_GATEWAY_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelport.home import HomeLayout


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELPORT_GATEWAY_")

    home: Path = Field(description="platform home")
    host: str = Field("127.0.0.1", description="HTTP bind address")
    port: int = Field(8000, description="HTTP port; 0 = pick a free one")
    http_fd: int = Field(-1, description="serve HTTP on this inherited listening socket "
                         "instead of binding one (set by `modelport up`, which owns the port "
                         "so connections wait in its backlog while a gateway restarts)")
    grpc_port: int = Field(0, description="public gRPC port; 0 = pick a free one")
    listen: str = Field("", description="unused; components share the --listen flag")
    registry_address: str = Field("", description="registry gRPC address")
    port_file: str = Field("", description="write the bound ports here as JSON once serving")
    max_body_bytes: int = Field(12 * 1024 * 1024, description="largest inference request body")
    max_upload_bytes: int = Field(100 * 1024 * 1024, description="largest package upload")
    route_ttl_s: float = Field(1.0, description="how long a resolved route is reused")
    task_concurrency: int = Field(4, ge=0, description="async tasks this gateway runs at once "
                                  "(0: it runs none, only accepts them)")
    batch_concurrency: int = Field(4, ge=0, description="batch job items this gateway runs "
                                   "at once, over all jobs (each job has its own bound too)")
    max_batch_bytes: int = Field(2 * 1024**3, description="largest batch job input archive")
    gitops_webhook_secret: str = Field(
        "", description="when set, /api/v1/gitops/webhook requires this secret (GitHub/Gitea "
        "HMAC signature or GitLab token)")

    auth: bool = Field(True, description="require credentials for management (and for "
                       "services with auth.required); off only for throwaway local use "
                       "(`modelport up --no-auth`, loopback only)")
    auth_cache_s: float = Field(2.0, ge=0, description="how long a token's check is reused; "
                                "revocations elsewhere take effect within this")
    allow_registration: bool = Field(False, description="POST /api/v1/auth/register makes "
                                     "member accounts for anyone")
    runtime_address: str = Field("", description="runtime gRPC address (replica logs)")
    access_log_max_bytes: int = Field(50 * 1024 * 1024, description="access.log and "
                                      "error-access.log rotate past this size")
    access_log_backups: int = Field(3, description="rotated access logs kept")
    fast_infer: bool = Field(True, description="serve unary JSON infer requests on the raw "
                             "ASGI path in front of Starlette (rest/fast_infer.py, same "
                             "answers, a fraction of the CPU); false: all through Starlette")

    def resolved(self) -> GatewaySettings:
        return self.model_copy(update={
            "registry_address": self.registry_address or HomeLayout(self.home).socket("registry"),
            "runtime_address": self.runtime_address or HomeLayout(self.home).socket("runtime")})
