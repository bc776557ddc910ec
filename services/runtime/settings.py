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

    gpus: str = Field("", description="GPUs to schedule replicas on: empty = discover them "
                      "(NVML, then nvidia-smi); \"0,1\" = exactly these ids; \"none\" = none")

    contain: str = Field("auto", pattern="^(auto|on|off)$", description="run each "
                         "service's process workers as a user of its own that cannot read "
                         "<home> (docs/security.md): auto = when the runtime runs as root")
    worker_id_base: int = Field(0, ge=0, description="first uid/gid for workers; 0 = 100000, "
                                "or 60000 in a user namespace that maps only 65536 ids")
    worker_id_count: int = Field(0, ge=0, description="how many ids from worker_id_base")
    worker_open_files: int = Field(4096, ge=0, description="RLIMIT_NOFILE of a process worker")
    worker_processes: int = Field(1024, ge=0, description="RLIMIT_NPROC (processes and threads)"
                                  " of a contained worker's user")

    # several hosts (docs/serving.md): this runtime as an agent of a registry
    registry_address: str = Field("", description="registry to register with and heartbeat "
                                  "to; default the home's registry socket; \"none\" = do not")
    advertise: str = Field("", description="address the registry and gateways reach this "
                           "runtime at; default the listen address (with the bound port)")
    agent_id: str = Field("", description="this agent's name; default its address")
    max_replicas: int = Field(0, ge=0, description="replicas the controller may place here; "
                              "0 = no limit")
    heartbeat_s: float = Field(1.0, gt=0, description="seconds between heartbeats")

    # proxyless xDS (docs/xds.md): a public gRPC port per service version held here
    direct_host: str = Field("", description="host the per-version public gRPC ports bind "
                             "(the xDS endpoints); default the host of a TCP --listen, else "
                             "127.0.0.1; \"none\" = open none")
    direct_auth: bool = Field(True, description="check invoke keys on those ports as the "
                              "gateway does (off only with `up --no-auth`)")

    def resolved(self) -> RuntimeSettings:
        layout = HomeLayout(self.home)
        return self.model_copy(update={
            "listen": self.listen or layout.socket("runtime"),
            "registry_address": self.registry_address or layout.socket("registry")})
