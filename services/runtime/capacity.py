"""What this runtime can run replicas on: GPUs (and who holds each), CPUs, memory, backends.

``GetCapacity`` answers with it; the runtime logs it at start. A several-host controller
places replicas with it.
"""

from __future__ import annotations

import os
from typing import Any

import psutil

from modelport.v1 import runtime_pb2


async def report(supervisor: Any) -> runtime_pb2.Capacity:
    inventory = supervisor.gpus
    out = runtime_pb2.Capacity(gpu_source=inventory.source, cpus=os.cpu_count() or 0,
                               memory_bytes=psutil.virtual_memory().total)
    for gpu, holder in inventory.snapshot():
        out.gpus.add(id=gpu.id, uuid=gpu.uuid, name=gpu.name, memory_bytes=gpu.memory_bytes,
                     replica_id=holder)
    out.runtimes.append("process")
    docker = await supervisor._get_backend("docker")
    if await docker.available():
        out.runtimes.append("docker")
    return out


def describe(inventory: Any) -> str:
    """One log line: ``GPUs (nvml): 0 NVIDIA H100 80GB, 1 ...`` or ``no GPUs``."""
    if not inventory.gpus:
        return f"no GPUs ({inventory.source})"
    listed = ", ".join(f"{g.id} {g.name}".strip() for g in inventory.gpus)
    return f"GPUs ({inventory.source}): {listed}"
