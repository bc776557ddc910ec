"""Custom images (config.json ``"model_type": "Image"``): a replica is a container of the
user's own image, serving HTTP on its port, with no worker shim inside.

The container is the Docker backend's (``docker.py``) minus what belongs to the shim: no
command (the image's ENTRYPOINT/CMD runs), no mounts. It keeps the rest:
``network_mode: none``, never root (the image's own USER when that is not root, else the
user other containers run as), no capabilities, ``no-new-privileges``, a read-only root
with a tmpfs at ``/tmp``, the spec's CPU, memory and GPUs, the labels, and its
stdout/stderr in the replica log. The runtime reaches the port from inside the
container's network namespace (``netns.py``) and talks HTTP to it (``http_link.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from modelport.errors import Kind, ModelportError
from services.component.own_thread import in_own_thread
from services.runtime import containment, replica_log
from services.runtime.backends import ReplicaSpec
from services.runtime.backends.docker import (
    LABEL_REPLICA,
    LABEL_RUNTIME,
    LABEL_SERVICE,
    LABEL_VERSION,
    TERM_GRACE_S,
    ContainerReplica,
    container_name,
    default_user,
    resource_options,
)
from services.runtime.http_link import Check, HttpLink
from services.runtime.netns import NetnsDialer

#: the kind a custom image package has (modelport/package/model.py)
KIND = "image"
_ROOT_USERS = {"", "0", "root"}


def image_env(spec: ReplicaSpec) -> dict[str, str]:
    """Added to the image's own environment: the spec's variables and the replica's
    identity (the image keeps its PATH, HOME and the rest)."""
    return {"MODELPORT_SERVICE": spec.service, "MODELPORT_VERSION": str(spec.version),
            "MODELPORT_REPLICA_ID": spec.replica_id,
            **{k: str(v) for k, v in spec.env.items()}}


def run_as(image_user: str, fallback: str) -> str:
    """The image's USER when it is not root; else ``fallback`` (never root)."""
    name = (image_user or "").split(":", 1)[0].strip()
    return image_user if name not in _ROOT_USERS else fallback


def image_options(spec: ReplicaSpec, *, runtime: str, user: str) -> dict[str, Any]:
    """Keyword arguments for ``containers.create``: the custom image's container."""
    options: dict[str, Any] = dict(
        image=spec.image, name=container_name(spec.replica_id), environment=image_env(spec),
        user=user, network_mode="none", security_opt=["no-new-privileges"],
        cap_drop=["ALL"], read_only=True, tmpfs={"/tmp": "rw,nosuid,nodev,mode=1777"},
        labels={LABEL_RUNTIME: runtime, LABEL_REPLICA: spec.replica_id,
                LABEL_SERVICE: spec.service, LABEL_VERSION: str(spec.version)})
    options.update(resource_options(spec))
    return options


class ImageReplica(ContainerReplica):
    """A custom image's container; its link is an ``HttpLink``."""

    link: HttpLink  # type: ignore[assignment]

    async def run_exec(self, command: str, timeout_s: float) -> tuple[int, str]:
        """``/bin/sh -c command`` in the container (a health check_method EXEC)."""
        container = self.container

        def run() -> tuple[int, str]:
            result = container.exec_run(["/bin/sh", "-c", command], stdout=True,
                                        stderr=True)
            output = result.output or b""
            return int(result.exit_code if result.exit_code is not None else -1), (
                output.decode("utf-8", "replace") if isinstance(output, bytes) else "")

        return await asyncio.wait_for(in_own_thread(run, f"{self.replica_id}-exec"),
                                      timeout_s)

    async def stop(self, grace_s: float = 10.0) -> int:
        """``docker stop``: SIGTERM, then SIGKILL after ``grace_s`` (the image has no
        worker to ask first)."""
        if not self._exit.done():
            container = self.container

            def stop() -> None:
                with contextlib.suppress(Exception):
                    container.stop(timeout=max(1, int(grace_s)))

            await in_own_thread(stop, f"{self.replica_id}-stop")
        code = await self.wait()
        await self._waiter
        return code


async def start_image(backend: Any, spec: ReplicaSpec, replica_dir: Path) -> ImageReplica:
    """Run the replica's container and enter its network namespace; the caller then waits
    for its health check (``HttpLink.wait_ready``)."""
    client = await backend.client()
    ids = containment.container_user(backend.work_dir, spec.service)
    fallback = f"{ids[0]}:{ids[1]}" if ids else default_user()
    user = run_as(await asyncio.to_thread(_image_user, client, spec.image), fallback)
    options = image_options(spec, runtime=backend.runtime, user=user)
    replica_log.note(replica_dir, f"starting {spec.replica_id} ({spec.service} v{spec.version}) "
                                  f"in a container of {spec.image} (custom image, port "
                                  f"{Check.of(spec.config).port}, user {user})")
    container = await asyncio.to_thread(backend._create, client, options)
    replica = ImageReplica(spec, client, container, replica_dir / "replica.log", replica_dir)
    try:
        await asyncio.to_thread(container.reload)
        pid = int(container.attrs.get("State", {}).get("Pid") or 0)
        replica.pid = pid or None
        if not pid:  # it exited at once: say so with its log (wait_ready's check)
            await asyncio.wait_for(replica.wait(), TERM_GRACE_S)
        dialer = NetnsDialer(pid, spec.replica_id)
        if pid:
            await dialer.open()
        else:
            dialer.close()
        replica.link = HttpLink(spec.replica_id, dialer, Check.of(spec.config),
                                replica.run_exec, replica.exit_future, replica_dir)
        if replica.exit_future.done():
            replica.link.connection_lost(replica.exit_future.result())
    except BaseException:
        replica.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(replica.wait(), TERM_GRACE_S + 5)
        raise
    return replica


def _image_user(client: Any, image: str) -> str:
    try:
        return str(client.images.get(image).attrs.get("Config", {}).get("User") or "")
    except Exception as exc:  # noqa: BLE001 - create() names a missing image itself
        if type(exc).__name__ == "ImageNotFound":
            raise ModelportError(Kind.UNAVAILABLE, "replica.image_missing",
                                 f"image {image} is not on this Docker host",
                                 fix="rebuild the version (update the service with its "
                                     "package again); images are built on the runtime's "
                                     "Docker host") from None
        return ""
