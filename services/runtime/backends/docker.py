"""The Docker backend: a replica is a container of the version's image (a custom image
package's container is ``image.py``'s: no shim, reached over HTTP).

The container runs ``/opt/modelport/venv/bin/python -m modelport_worker.shim`` (the image
layout is the builder's, ``services/builder/image.py``) with:

- ``network_mode="none"``: the model reaches nothing, and nothing reaches it;
- the worker's unix socket in a bind-mounted directory (``/run/modelport``): the runtime
  listens there and the worker connects, exactly as with the process backend;
- the stdlib-only worker shim bind-mounted read-only (``/opt/modelport/shim``), so a new
  platform version never needs an image rebuild;
- the host user's uid/gid, so files in the mounts stay the user's;
- CPU and memory limits from the spec, and the replica's GPUs as a device request;
- its stdout/stderr followed into the replica log (``replica_log.pump``).

Blocking Docker API calls run in threads of their own (a container's log follow and wait
last as long as the container), never in the event loop's default executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelport.errors import Kind, ModelportError
from services.component.own_thread import in_own_thread
from services.runtime import containment, replica_log
from services.runtime.backends import (
    MAX_SOCKET_PATH,
    ExitWatch,
    ReplicaSpec,
    launch_worker,
    short_private_path,
    worker_env,
)
from services.runtime.worker.errors import describe_exit
from services.runtime.worker.link import WorkerLink
from services.runtime.worker.listener import WorkerListener, accept_worker

log = logging.getLogger(__name__)

#: where the image keeps its parts (services/builder/image.py writes this layout)
IMAGE_ROOT = "/opt/modelport"
IMAGE_PYTHON = f"{IMAGE_ROOT}/venv/bin/python"
IMAGE_PACKAGE = f"{IMAGE_ROOT}/package"
SHIM_MOUNT = f"{IMAGE_ROOT}/shim"
SOCKET_MOUNT = "/run/modelport"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: labels on every container this backend runs; `modelport.runtime` names the runtime
#: (its work directory's digest) so a restarted runtime finds what its predecessor left
LABEL_RUNTIME, LABEL_REPLICA = "modelport.runtime", "modelport.replica"
LABEL_SERVICE, LABEL_VERSION = "modelport.service", "modelport.version"
TERM_GRACE_S = 5
PUMP_DRAIN_S = 2.0
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_UNITS = {None: 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def memory_bytes(text: str) -> int:
    """``512Mi`` -> 536870912; ``""`` -> 0 (no limit)."""
    if not text:
        return 0
    m = _MEMORY.match(text.strip())
    if m is None:
        raise ModelportError(Kind.INVALID, "replica.memory_invalid",
                             f"memory {text!r} is not a size", fix="write it like 512Mi or 2Gi")
    return int(float(m[1]) * _UNITS[m[2]])


def container_name(replica_id: str) -> str:
    return f"modelport-{replica_id}"


def runtime_label(work_dir: Path) -> str:
    return hashlib.sha256(str(Path(work_dir).resolve()).encode()).hexdigest()[:16]


def exit_status(code: int) -> int:
    """Docker's exit status as the supervisor reads one: 128+N (killed by signal N) -> -N."""
    if code > 128 and code - 128 in {s.value for s in signal.Signals}:
        return -(code - 128)
    return code


def socket_dir(replica_dir: Path) -> Path:
    """``<replica_dir>/sock``, or a short private directory when that path is too long."""
    path = Path(replica_dir) / "sock"
    if len(str(path / "worker.sock")) > MAX_SOCKET_PATH:
        path = short_private_path(replica_dir)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def default_user() -> str:
    """The runtime's own uid:gid (files in the mounts stay the user's), never root."""
    uid, gid = os.getuid(), os.getgid()
    return f"{uid}:{gid}" if uid != 0 else "65534:65534"


def container_env(spec: ReplicaSpec) -> dict[str, str]:
    """The worker's whole environment inside the container (nothing of the host's)."""
    return worker_env(spec, bin_dir=f"{IMAGE_ROOT}/venv/bin",
                      virtual_env=f"{IMAGE_ROOT}/venv", shim_dir=SHIM_MOUNT, home="/tmp",
                      tmp="/tmp", system_path=SYSTEM_PATH)


def container_options(spec: ReplicaSpec, *, shim_root: Path, sock_dir: Path,
                      runtime: str, user: str = "") -> dict[str, Any]:
    """Keyword arguments for ``containers.create``: the whole container, as data.

    Contained as docs/security.md says: never root (``user``: the runtime's own user, or
    the service's worker id when the runtime is root), ``no-new-privileges``, every
    capability dropped, a read-only root file system with a scratch tmpfs at /tmp (HOME
    and TMPDIR), and no network.
    """
    from docker.types import Mount

    argv = [IMAGE_PYTHON, "-m", "modelport_worker.shim", "--socket",
            f"{SOCKET_MOUNT}/worker.sock", "--package", IMAGE_PACKAGE]
    if spec.kind:
        argv += ["--kind", spec.kind]
    options: dict[str, Any] = dict(
        image=spec.image, command=argv, name=container_name(spec.replica_id),
        environment=container_env(spec), user=user or default_user(),
        working_dir=IMAGE_PACKAGE, network_mode="none",
        security_opt=["no-new-privileges"], cap_drop=["ALL"], read_only=True,
        tmpfs={"/tmp": "rw,nosuid,nodev,mode=1777"},
        labels={LABEL_RUNTIME: runtime, LABEL_REPLICA: spec.replica_id,
                LABEL_SERVICE: spec.service, LABEL_VERSION: str(spec.version)},
        mounts=[Mount(SHIM_MOUNT, str(shim_root), type="bind", read_only=True),
                Mount(SOCKET_MOUNT, str(sock_dir), type="bind")])
    options.update(resource_options(spec))
    return options


def resource_options(spec: ReplicaSpec) -> dict[str, Any]:
    """The spec's CPU quota, memory limit (no swap beyond it: an OOM kill is visible) and
    the replica's GPUs as a device request, as ``containers.create`` takes them."""
    from docker.types import DeviceRequest

    options: dict[str, Any] = {}
    cpu = float(spec.resources.get("cpu") or 0)
    if cpu > 0:
        options["nano_cpus"] = int(cpu * 1e9)
    if memory := memory_bytes(str(spec.resources.get("memory") or "")):
        options["mem_limit"] = memory
        options["memswap_limit"] = memory
    if spec.gpus:
        options["device_requests"] = [DeviceRequest(device_ids=list(spec.gpus),
                                                    capabilities=[["gpu"]])]
    return options


def unavailable(reason: str) -> ModelportError:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return ModelportError(Kind.UNAVAILABLE, "runtime.docker_unavailable",
                          f"no Docker engine answers at {host}: {reason}",
                          fix="start dockerd on the runtime's host (.ci/docker-setup does it), "
                              "or deploy with `runtime: process`")


class ContainerReplica(ExitWatch):
    """A running container and its link; the supervisor's ReplicaHandle."""

    def __init__(self, spec: ReplicaSpec, client: Any, container: Any, log_path: Path,
                 sock_dir: Path) -> None:
        self.replica_id = spec.replica_id
        self.spec = spec
        self.container = container
        self.pid: int | None = None
        self.log_path = log_path
        self.link: WorkerLink = None  # type: ignore[assignment]  # set by DockerBackend.start
        self._client = client
        self._sock_dir = sock_dir
        self.oom_killed = False
        loop = asyncio.get_running_loop()
        self._exit: asyncio.Future[int] = loop.create_future()
        self._output = asyncio.StreamReader(limit=2**22)
        self._pump = loop.create_task(replica_log.pump(self._output, log_path.parent),
                                      name=f"{spec.replica_id}-log")
        self._follow_logs(loop)
        self._waiter = loop.create_task(self._watch(), name=f"{spec.replica_id}-wait")

    def _follow_logs(self, loop: asyncio.AbstractEventLoop) -> None:
        """A thread copying the container's stdout+stderr into the replica log's pump."""
        reader, container = self._output, self.container

        def feed(data: bytes | None) -> None:
            if data is None:
                reader.feed_eof()
            else:
                reader.feed_data(data)

        def body() -> None:
            try:
                for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                    loop.call_soon_threadsafe(feed, chunk)
            except Exception as exc:  # the container went away under us: end the log
                log.debug("log follow of %s ended: %s", self.replica_id, exc)
            finally:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(feed, None)

        threading.Thread(target=body, name=f"{self.replica_id}-logs", daemon=True).start()

    async def _watch(self) -> None:
        container = self.container

        def wait() -> int:
            try:
                return int(container.wait().get("StatusCode", -1))
            except Exception as exc:  # removed or engine gone: treat as exited
                log.warning("waiting for container of %s failed: %s", self.replica_id, exc)
                return -int(signal.SIGKILL)

        code = await in_own_thread(wait, f"{self.replica_id}-wait")
        with contextlib.suppress(Exception):
            await in_own_thread(container.reload, f"{self.replica_id}-inspect")
            self.oom_killed = bool(container.attrs.get("State", {}).get("OOMKilled"))
        if self.oom_killed:
            replica_log.note(self.log_path.parent, "the container was killed: out of memory "
                             f"(limit {self.spec.resources.get('memory') or 'none'})")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._pump), PUMP_DRAIN_S)
        status = exit_status(code)
        if not self._exit.done():
            self._exit.set_result(status)
        if self.link is not None:
            self.link.connection_lost(status)
        await self._remove()

    async def _remove(self) -> None:
        container = self.container

        def remove() -> None:
            with contextlib.suppress(Exception):
                container.remove(force=True)

        await in_own_thread(remove, f"{self.replica_id}-remove")

    def kill(self) -> None:
        """SIGKILL the container now (returns at once; ``wait`` sees the exit)."""
        container = self.container

        def kill() -> None:
            with contextlib.suppress(Exception):
                container.kill()

        threading.Thread(target=kill, name=f"{self.replica_id}-kill", daemon=True).start()

    async def stop(self, grace_s: float = 10.0) -> int:
        """``shutdown`` over the link, then ``docker stop`` (SIGTERM, then SIGKILL)."""
        await self._ask_to_shut_down(grace_s)
        if not self._exit.done():
            container = self.container

            def stop() -> None:
                with contextlib.suppress(Exception):
                    container.stop(timeout=TERM_GRACE_S)

            await in_own_thread(stop, f"{self.replica_id}-stop")
        code = await self.wait()
        await self._waiter
        return code


class DockerBackend:
    """Runs each replica as a container of the image its version was built into."""

    name = "docker"

    def __init__(self, shim_root: Path, work_dir: Path,
                 client_factory: Callable[[], Any] | None = None) -> None:
        #: the directory holding the installed ``modelport_worker`` package
        self.shim_root = Path(shim_root)
        self.work_dir = Path(work_dir)
        self.runtime = runtime_label(work_dir)
        self._factory = client_factory
        self._client: Any = None
        self._lock = asyncio.Lock()

    def _connect(self) -> Any:
        import docker

        client = self._factory() if self._factory is not None else docker.from_env(timeout=60)
        client.ping()
        return client

    async def client(self) -> Any:
        """The engine's client, connected on first use; leftovers of an earlier runtime
        on the same home are removed then."""
        async with self._lock:
            if self._client is None:
                try:
                    client = await asyncio.to_thread(self._connect)
                except Exception as exc:
                    raise unavailable(str(exc)) from None
                await asyncio.to_thread(self._remove_leftovers, client)
                self._client = client
            return self._client

    def _remove_leftovers(self, client: Any) -> None:
        for c in client.containers.list(all=True, ignore_removed=True,  # (gone meanwhile)
                                        filters={"label": f"{LABEL_RUNTIME}={self.runtime}"}):
            log.info("removing container %s left by an earlier runtime", c.name)
            with contextlib.suppress(Exception):
                c.remove(force=True)

    async def available(self) -> bool:
        try:
            await self.client()
        except ModelportError:
            return False
        return True

    async def start(self, spec: ReplicaSpec, replica_dir: Path) -> ContainerReplica:
        replica_dir = Path(replica_dir)
        replica_dir.mkdir(parents=True, exist_ok=True)
        if not spec.image:
            raise ModelportError(Kind.INVALID, "replica.no_image",
                                 f"replica {spec.replica_id} names no image to run",
                                 fix="build the version with `runtime: docker`")
        if spec.kind == "image":  # a custom image: no shim, reached over HTTP
            from services.runtime.backends.image import start_image

            return await start_image(self, spec, replica_dir)
        client = await self.client()
        # the container's user is not the runtime's: the mounted shim must be readable
        await asyncio.to_thread(_world_readable, self.shim_root)
        sock_dir = socket_dir(replica_dir)
        sock = sock_dir / "worker.sock"
        ids = containment.container_user(self.work_dir, spec.service)
        options = container_options(spec, shim_root=self.shim_root, sock_dir=sock_dir,
                                    runtime=self.runtime,
                                    user=f"{ids[0]}:{ids[1]}" if ids else "")
        listener = await WorkerListener.open(sock)
        os.chmod(sock, 0o660)
        if ids:  # the container's (unprivileged) user connects to the socket
            os.chown(sock_dir, *ids)
            os.chown(sock, *ids)

        async def launch() -> ContainerReplica:
            replica_log.note(replica_dir, f"starting {spec.replica_id} ({spec.service} "
                                          f"v{spec.version}) in a container of {spec.image}")
            container = await asyncio.to_thread(self._create, client, options)
            replica = ContainerReplica(spec, client, container, replica_dir / "replica.log",
                                       sock_dir)
            await asyncio.to_thread(container.reload)
            replica.pid = container.attrs.get("State", {}).get("Pid") or None
            return replica

        return await launch_worker(listener, launch, functools.partial(
            self._accept, listener, spec=spec), TERM_GRACE_S + 5)

    def _create(self, client: Any, options: dict[str, Any]) -> Any:
        """Create and start the container (a leftover of the same name is removed first)."""
        import docker

        self._remove_named(client, options["name"])
        try:
            container = client.containers.create(**options)
        except docker.errors.ImageNotFound:
            raise ModelportError(Kind.UNAVAILABLE, "replica.image_missing",
                                 f"image {options['image']} is not on this Docker host",
                                 fix="rebuild the version (update the service with its "
                                     "package again); images are built on the runtime's "
                                     "Docker host") from None
        except docker.errors.APIError as exc:
            raise ModelportError(Kind.UNAVAILABLE, "replica.container_create_failed",
                                 f"Docker could not create the container: {exc.explanation}",
                                 fix="see the runtime's log") from None
        try:
            container.start()
        except docker.errors.APIError as exc:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            hint = ("the host needs the NVIDIA container toolkit for GPU device requests"
                    if "device driver" in str(exc.explanation) else "see the runtime's log")
            raise ModelportError(Kind.UNAVAILABLE, "replica.container_start_failed",
                                 f"Docker could not start the container: {exc.explanation}",
                                 fix=hint) from None
        return container

    @staticmethod
    def _remove_named(client: Any, name: str, timeout_s: float = 60.0) -> None:
        """Remove a container of this name (the replica's previous one, still being removed
        after it exited, or one a killed runtime left) and wait until it is gone."""
        import docker

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if time.monotonic() > deadline:
                    raise ModelportError(Kind.UNAVAILABLE, "replica.container_in_the_way",
                                         f"container {name} cannot be removed: "
                                         f"{exc.explanation}",
                                         fix=f"remove it by hand: `docker rm -f {name}`"
                                         ) from None
                time.sleep(0.2)  # 409: its removal is in progress

    async def _accept(self, listener: WorkerListener, replica: ContainerReplica,
                      spec: ReplicaSpec) -> WorkerLink:
        def why(code: int) -> str:
            return "was killed: out of memory" if replica.oom_killed else describe_exit(code)

        return await accept_worker(
            listener, spec.startup_timeout_s, spec.replica_id, replica.exit_future,
            replica.wait, replica.log_path, who="the container's worker", why=why,
            fix="check that the image's Python is 3.8 or newer and starts"
                + (", or raise resources.memory" if replica.oom_killed else ""))


def _world_readable(top: Path) -> None:
    """Directories 0755 and files a+r under ``top`` (the worker shim: modelport's own
    stdlib code, nothing secret), whatever the umask it was written with."""
    for dirpath, _, files in os.walk(top):
        os.chmod(dirpath, 0o755)
        for name in files:
            path = os.path.join(dirpath, name)
            mode = os.stat(path).st_mode
            if mode & 0o444 != 0o444:
                os.chmod(path, mode | 0o444)
