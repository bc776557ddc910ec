"""Backends: where a replica runs.

A backend runs replica R of version V with resources X and gives back a handle with a
``WorkerLink`` to it. The process backend (``process.py``) runs the worker as a local
subprocess in the version's virtualenv; the Docker backend (``docker.py``) runs it as a
container of the version's image; a Kubernetes backend (worker reached over its pod
address) would implement the same two protocols, so the supervisor never knows which one
it drives.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from services.runtime.worker.link import WorkerLink
from services.runtime.worker.listener import WorkerListener


@dataclass
class ReplicaSpec:
    """Everything needed to run one replica of one model version."""

    replica_id: str
    service: str
    version: int
    #: package kind ("predictor", "file_contract"); "" lets the worker detect it
    kind: str
    #: the environment's interpreter, e.g. <venv>/bin/python (not resolved: the venv
    #: is the symlink's directory)
    python: str
    package_dir: Path
    #: the package's config.json as validated by the registry; {} = the worker reads it
    config: dict[str, Any]
    #: extra environment for the model (spec env); nothing else is inherited
    env: dict[str, str]
    #: default per-request timeout
    timeout_s: float
    #: spawn + connect, and setup, each bounded by this
    startup_timeout_s: float = 120.0
    #: cpu, memory, gpu: enforced by backends that can (Docker); the process backend
    #: passes GPU choice through env (CUDA_VISIBLE_DEVICES) only
    resources: dict[str, Any] = field(default_factory=dict)
    #: which backend runs it: "process" or "docker" (backends/docker.py)
    runtime: str = "process"
    #: docker: the image the builder made for this version
    image: str = ""
    #: GPUs the supervisor placed it on (services/runtime/gpus.py); None = this host
    #: schedules no GPUs (the environment is left alone), [] = it must see none
    gpus: list[str] | None = None


def worker_env(spec: ReplicaSpec, *, bin_dir: str, virtual_env: str | None, shim_dir: str,
               home: str, tmp: str, system_path: str) -> dict[str, str]:
    """A worker's whole environment (nothing of the host's): PATH with the environment's
    ``bin_dir`` first, a private HOME and TMPDIR, PYTHONPATH = the shim only, the replica's
    identity, then the spec's own variables (its PYTHONPATH and PATH keep the shim and
    ``bin_dir`` in front)."""
    env = {
        "PATH": f"{bin_dir}:{system_path}",
        "HOME": home,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",  # a segfault in native code leaves a traceback in the log
        "PYTHONPATH": shim_dir,
        "MODELPORT_SERVICE": spec.service,
        "MODELPORT_VERSION": str(spec.version),
        "MODELPORT_REPLICA_ID": spec.replica_id,
    }
    if virtual_env is not None:
        env["VIRTUAL_ENV"] = virtual_env
    for key, value in spec.env.items():
        if key == "PYTHONPATH":
            env[key] = f"{shim_dir}:{value}"
        elif key == "PATH":
            env[key] = f"{bin_dir}:{value}"
        else:
            env[key] = str(value)
    return env


#: a unix socket's path must fit in sun_path (108 bytes on Linux), with room to spare
MAX_SOCKET_PATH = 100


def short_private_path(replica_dir: Path, suffix: str = "") -> Path:
    """A short, per-user private path standing for ``replica_dir``, for a worker socket
    whose natural path under a deep home would not fit in a unix socket address."""
    private = Path(tempfile.gettempdir()) / f"modelport-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    return private / (hashlib.sha256(str(replica_dir).encode()).hexdigest()[:20] + suffix)


class ExitWatch:
    """The exit status of a replica as a future, shared by every backend's handle.

    A backend sets ``self._exit`` (an ``asyncio.Future[int]``) and resolves it once;
    ``exit_code``, ``exit_future`` and ``wait`` read it the same way everywhere.
    """

    _exit: asyncio.Future[int]

    @property
    def exit_code(self) -> int | None:
        return self._exit.result() if self._exit.done() else None

    @property
    def exit_future(self) -> asyncio.Future[int]:
        return self._exit

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    async def _ask_to_shut_down(self, grace_s: float) -> None:
        """The graceful first step of every backend's ``stop``: ``shutdown`` over the
        worker link, then wait for the exit until ``grace_s`` has passed in all."""
        if self._exit.done():
            return
        deadline = time.monotonic() + grace_s
        link = getattr(self, "link", None)
        if link is not None and not link.closed:
            await link.shutdown(timeout_s=grace_s)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self.wait()


class ReplicaHandle(Protocol):
    """One running replica, as a backend gives it back."""

    replica_id: str
    #: the worker's pid as this host sees it (None when not a local process)
    pid: int | None
    log_path: Path
    link: WorkerLink

    @property
    def exit_code(self) -> int | None:
        """The exit status once the replica has exited, else None."""

    async def wait(self) -> int:
        """Until the replica exits; its exit status (negative: killed by that signal)."""

    async def stop(self, grace_s: float = 10.0) -> int:
        """Graceful shutdown, then SIGTERM, then SIGKILL of everything it started."""

    def kill(self) -> None:
        """SIGKILL everything it started, now (the supervisor's health check uses this)."""


class Backend(Protocol):
    name: str

    async def start(self, spec: ReplicaSpec, replica_dir: Path) -> ReplicaHandle:
        """Run the replica and return once its worker has connected and said hello.

        ``replica_dir`` is the replica's own scratch directory (log, home, tmp). Raises
        ModelportError when it cannot start (the message says why, with the log's tail).
        Setup is the caller's next step, over ``handle.link``.
        """


R = TypeVar("R", bound=ReplicaHandle)


async def launch_worker(listener: WorkerListener, launch: Callable[[], Awaitable[R]],
                        accept: Callable[[R], Awaitable[WorkerLink]], reap_s: float) -> R:
    """Every backend's start: ``launch()`` the worker, then ``accept`` its connection.
    On any failure, or cancellation, a half-started replica is killed and reaped (for at
    most ``reap_s``) so nothing is left running; the listener is closed either way."""
    replica: R | None = None
    try:
        replica = await launch()
        replica.link = await accept(replica)
        return replica
    except BaseException:
        if replica is not None:
            replica.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(replica.wait(), reap_s)
        raise
    finally:
        await listener.close()
