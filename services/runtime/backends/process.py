"""The process backend: a replica is a worker subprocess in the version's virtualenv.

The worker gets an environment built from scratch (nothing of the platform's own
environment leaks into model code), its own process group (stopping it stops whatever
the model started), and ``<replica_dir>/replica.log`` for stdout and stderr (piped
through the runtime, which timestamps and rotates it: ``replica_log.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Awaitable
from pathlib import Path

from modelport.errors import Kind, ModelportError
from services.runtime import replica_log
from services.runtime.backends import (
    MAX_SOCKET_PATH,
    ExitWatch,
    ReplicaSpec,
    launch_worker,
    short_private_path,
    worker_env,
)
from services.runtime.containment import Containment
from services.runtime.worker.link import WorkerLink
from services.runtime.worker.listener import WorkerListener, accept_worker

__all__ = ["ProcessBackend", "ProcessReplica", "ReplicaSpec", "build_env"]

log = logging.getLogger(__name__)

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
#: after SIGTERM, how long the group has before SIGKILL
TERM_GRACE_S = 5.0
#: log lines quoted when a worker dies before connecting
#: how long an exited worker's last output may take to reach the log
PUMP_DRAIN_S = 2.0
#: unix socket paths are limited to 107 bytes on Linux


def build_env(spec: ReplicaSpec, shim_root: Path, replica_dir: Path) -> dict[str, str]:
    """The worker's whole environment: PATH with the venv first, a private HOME and TMPDIR,
    PYTHONPATH = the shim only, then the spec's env; CUDA_VISIBLE_DEVICES = its GPUs."""
    bin_dir = Path(spec.python).parent
    venv = bin_dir.parent
    env = worker_env(spec, bin_dir=str(bin_dir),
                     virtual_env=str(venv) if (venv / "pyvenv.cfg").is_file() else None,
                     shim_dir=str(shim_root), home=str(replica_dir / "home"),
                     tmp=str(replica_dir / "tmp"), system_path=SYSTEM_PATH)
    if spec.gpus is not None:  # placed by the supervisor's GPU inventory: that wins
        env["CUDA_VISIBLE_DEVICES"] = ",".join(spec.gpus)
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # CUDA's indexes = nvidia-smi's / NVML's
    return env


def socket_path(replica_dir: Path) -> Path:
    """``<replica_dir>/worker.sock``, or a short private path when that is too long."""
    path = replica_dir / "worker.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    return short_private_path(replica_dir, ".sock")


class ProcessReplica(ExitWatch):
    """A running worker subprocess (the process group leader) and its link."""

    def __init__(self, spec: ReplicaSpec, proc: asyncio.subprocess.Process,
                 log_path: Path) -> None:
        self.replica_id = spec.replica_id
        self.spec = spec
        self.proc = proc
        self.pid: int | None = proc.pid
        self.log_path = log_path
        self.link: WorkerLink = None  # type: ignore[assignment]  # set by ProcessBackend.start
        loop = asyncio.get_running_loop()
        self._exit: asyncio.Future[int] = loop.create_future()
        # stdout+stderr -> the replica log, timestamped and rotated (replica_log.py)
        self._pump = (loop.create_task(replica_log.pump(proc.stdout, log_path.parent),
                                       name=f"{spec.replica_id}-log")
                      if proc.stdout is not None else None)
        self._waiter = loop.create_task(self._watch(), name=f"{spec.replica_id}-wait")

    async def _watch(self) -> None:
        code = await self.proc.wait()
        # whatever the worker left in its group (forked children) goes with it
        self._signal_group(signal.SIGKILL)
        if self._pump is not None:
            # the last lines before the exit are in the log before anyone reads it; a
            # child that left the group may hold the pipe open, so this is bounded
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._pump), PUMP_DRAIN_S)
        if not self._exit.done():
            self._exit.set_result(code)
        if self.link is not None:
            self.link.connection_lost(code)

    def _signal_group(self, sig: int) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL)

    async def stop(self, grace_s: float = 10.0) -> int:
        """``shutdown`` over the link, then SIGTERM, then SIGKILL, all to the whole group."""
        await self._ask_to_shut_down(grace_s)
        if not self._exit.done():
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TERM_GRACE_S):
                    await self.wait()
        if not self._exit.done():
            self._signal_group(signal.SIGKILL)
        code = await self.wait()
        await self._waiter
        return code


class ProcessBackend:
    """Runs each replica as ``<venv python> -m modelport_worker.shim`` on this host."""

    name = "process"

    def __init__(self, shim_root: Path, containment: Containment | None = None) -> None:
        #: the directory holding the installed ``modelport_worker`` package
        self.shim_root = Path(shim_root)
        #: who the worker runs as and what it may use (services/runtime/containment.py);
        #: by default only resource limits, as the platform's own user
        self.containment = containment or Containment(self.shim_root.parent, enabled=False,
                                                      open_files=0, processes=0)

    async def start(self, spec: ReplicaSpec, replica_dir: Path) -> ProcessReplica:
        replica_dir = Path(replica_dir)
        replica_dir.mkdir(parents=True, exist_ok=True)
        (replica_dir / "home").mkdir(exist_ok=True)
        tmp = replica_dir / "tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # what a killed request left behind
        tmp.mkdir()
        log_path = replica_dir / "replica.log"
        sock = socket_path(replica_dir)
        argv = [spec.python, "-m", "modelport_worker.shim", "--socket", str(sock),
                "--package", str(spec.package_dir)]
        if spec.kind:
            argv += ["--kind", spec.kind]
        listener = await WorkerListener.open(sock)

        async def launch() -> ProcessReplica:
            replica_log.note(replica_dir, f"starting {spec.replica_id} ({spec.service} "
                                          f"v{spec.version})")
            launch = await asyncio.to_thread(
                self.containment.prepare, spec.service, spec.python, Path(spec.package_dir),
                self.shim_root, replica_dir, sock, str(spec.resources.get("memory") or ""))
            try:
                proc = await asyncio.create_subprocess_exec(
                    *launch.argv(argv), stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    env={**build_env(spec, self.shim_root, replica_dir), **launch.env},
                    # not the package: python -m would put it first on sys.path;
                    # the shim moves into the package itself
                    cwd=str(replica_dir), start_new_session=True)
            except OSError as exc:
                raise ModelportError(
                    Kind.UNAVAILABLE, "replica.spawn_failed",
                    f"cannot start {spec.python}: {exc}",
                    fix="rebuild the version's environment") from None
            return ProcessReplica(spec, proc, log_path)

        def accept(replica: ProcessReplica) -> Awaitable[WorkerLink]:
            return accept_worker(
                listener, spec.startup_timeout_s, spec.replica_id, replica.exit_future,
                replica.wait, replica.log_path,
                fix="check that the environment's Python is 3.8 or newer and starts")

        return await launch_worker(listener, launch, accept, TERM_GRACE_S)
