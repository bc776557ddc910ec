"""The GPUs of this host and which replica holds each.

Discovery, in order: the ``MODELPORT_RUNTIME_GPUS`` setting (``"0,1"``: an inventory the
operator configures, also how the scheduling is tested on machines without GPUs;
``"none"``: use no GPU), else NVML (``pynvml``), else ``nvidia-smi --query-gpu``, else
none. A replica asking for N GPUs gets N free ones, all or nothing, and keeps them across
restarts until it stops; when fewer are free it waits (the supervisor shows it
``pending`` with the reason) and is placed as soon as enough are released.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger(__name__)

NVIDIA_SMI_QUERY = ["--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"]


@dataclass(frozen=True)
class Gpu:
    id: str  # what CUDA_VISIBLE_DEVICES and Docker device requests take: the index
    uuid: str = ""
    name: str = ""
    memory_bytes: int = 0


class GpusUnavailable(Exception):
    """Too few free GPUs for a replica; the message says how many exist and who holds them."""


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """``index, uuid, name, memory.total [MiB]`` lines (csv, noheader, nounits) -> GPUs."""
    gpus = []
    for row in csv.reader(io.StringIO(text)):
        cells = [c.strip() for c in row]
        if len(cells) < 4 or not cells[0].isdigit():
            continue
        try:
            memory = int(float(cells[3]) * 1024 * 1024)
        except ValueError:
            memory = 0
        gpus.append(Gpu(cells[0], cells[1], cells[2], memory))
    return gpus


def _from_nvml() -> list[Gpu] | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver / no library: pynvml raises its own NVMLError types
        return None
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            uuid, name = pynvml.nvmlDeviceGetUUID(h), pynvml.nvmlDeviceGetName(h)
            gpus.append(Gpu(str(i), uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                            name.decode() if isinstance(name, bytes) else str(name),
                            int(pynvml.nvmlDeviceGetMemoryInfo(h).total)))
        return gpus
    except Exception as exc:
        log.warning("NVML is present but listing GPUs failed: %s", exc)
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _from_nvidia_smi() -> list[Gpu] | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, *NVIDIA_SMI_QUERY], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nvidia-smi failed: %s", exc)
        return None
    return parse_nvidia_smi(out)


def discover(setting: str = "") -> tuple[list[Gpu], str]:
    """The GPUs to schedule on and where that list came from (for logs and GetCapacity)."""
    setting = setting.strip()
    if setting.lower() == "none":
        return [], "none"
    if setting:
        ids = [part.strip() for part in setting.split(",") if part.strip()]
        return [Gpu(i, name="configured") for i in dict.fromkeys(ids)], "configured"
    for source, probe in (("nvml", _from_nvml), ("nvidia-smi", _from_nvidia_smi)):
        found = probe()
        if found:
            return found, source
    return [], "none"


class GpuInventory:
    """All-or-nothing placement of replicas on free GPUs, lowest ids first."""

    def __init__(self, gpus: list[Gpu], source: str = "configured") -> None:
        self.gpus = list(gpus)
        self.source = source
        self._holder: dict[str, str] = {}  # gpu id -> replica id
        self._changed = asyncio.Condition()

    def held_by(self, replica_id: str) -> list[str]:
        return [g.id for g in self.gpus if self._holder.get(g.id) == replica_id]

    def holder(self, gpu_id: str) -> str:
        return self._holder.get(gpu_id, "")

    def free(self) -> list[str]:
        return [g.id for g in self.gpus if g.id not in self._holder]

    def try_acquire(self, replica_id: str, count: int) -> list[str]:
        """GPUs for the replica (the ones it holds already, when enough); raises when short."""
        mine = self.held_by(replica_id)
        if len(mine) >= count:
            return mine[:count]
        free = self.free()
        if len(mine) + len(free) < count:
            raise GpusUnavailable(self.shortage(count))
        chosen = mine + free[: count - len(mine)]
        for gpu_id in chosen:
            self._holder[gpu_id] = replica_id
        return chosen

    async def acquire(self, replica_id: str, count: int,
                      on_wait: object = None) -> list[str]:
        """Wait until ``count`` GPUs are free and take them; ``on_wait(message)`` is called
        each time the replica has to wait (the supervisor shows it as ``pending``)."""
        async with self._changed:
            while True:
                try:
                    return self.try_acquire(replica_id, count)
                except GpusUnavailable as short:
                    if callable(on_wait):
                        on_wait(str(short))
                    await self._changed.wait()

    async def release(self, replica_id: str) -> list[str]:
        """Give back the replica's GPUs and wake replicas waiting for some."""
        freed = [gpu_id for gpu_id, holder in self._holder.items() if holder == replica_id]
        for gpu_id in freed:
            del self._holder[gpu_id]
        if freed:
            async with self._changed:
                self._changed.notify_all()
        return freed

    def shortage(self, count: int) -> str:
        """Why ``count`` GPUs cannot be had now, in one sentence."""
        total = len(self.gpus)
        if total == 0:
            return (f"needs {count} GPU{'s' if count > 1 else ''} but this runtime has none "
                    "(no NVIDIA GPU found; MODELPORT_RUNTIME_GPUS lists GPUs to use)")
        if count > total:
            return (f"needs {count} GPUs but this runtime has only {total} "
                    f"({', '.join(g.id for g in self.gpus)})")
        held = ", ".join(f"GPU {gpu_id} by replica {rid}"
                         for gpu_id, rid in sorted(self._holder.items()))
        return (f"waiting for {count} free GPU{'s' if count > 1 else ''}: "
                f"{len(self.free())} of {total} free; held: {held}")

    def snapshot(self) -> list[tuple[Gpu, str]]:
        """Each GPU with the replica holding it ("" = free)."""
        return [(g, self._holder.get(g.id, "")) for g in self.gpus]
