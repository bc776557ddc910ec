"""GPU discovery and all-or-nothing placement (services/runtime/gpus.py)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from services.runtime import gpus
from services.runtime.gpus import Gpu, GpuInventory, GpusUnavailable, discover, parse_nvidia_smi
from tests.runtime.support import run

SMI = """0, GPU-6f1c, NVIDIA H100 80GB HBM3, 81559
1, GPU-77aa, NVIDIA H100 80GB HBM3, 81559
"""


def test_configured_inventory_and_none() -> None:
    found, source = discover("0, 1,1")
    assert source == "configured" and [g.id for g in found] == ["0", "1"]
    assert discover("none") == ([], "none")


def test_nvidia_smi_output_is_parsed() -> None:
    a, b = parse_nvidia_smi(SMI + "garbage line\n")
    assert a == Gpu("0", "GPU-6f1c", "NVIDIA H100 80GB HBM3", 81559 * 2**20)
    assert b.id == "1"


def test_discovery_runs_nvidia_smi_when_nvml_has_no_gpu(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setattr(gpus, "_from_nvml", lambda: None)  # as on a host without NVML GPUs
    smi = tmp_path / "nvidia-smi"  # an executable answering the query nvidia-smi gets
    smi.write_text("#!/bin/sh\n[ \"$1\" = '--query-gpu=index,uuid,name,memory.total' ] "
                   f"|| exit 9\ncat <<'EOF'\n{SMI}EOF\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    found, source = discover("")
    assert source == "nvidia-smi" and [g.id for g in found] == ["0", "1"]


def test_placement_is_all_or_nothing_and_says_who_holds_what() -> None:
    inv = GpuInventory([Gpu("0"), Gpu("1"), Gpu("2")])
    assert inv.try_acquire("a", 2) == ["0", "1"]
    assert inv.try_acquire("a", 2) == ["0", "1"]  # a restart keeps its GPUs
    with pytest.raises(GpusUnavailable) as short:
        inv.try_acquire("b", 2)
    assert "1 of 3 free" in str(short.value) and "GPU 0 by replica a" in str(short.value)
    assert inv.free() == ["2"]  # nothing was taken by the failed attempt
    with pytest.raises(GpusUnavailable, match="only 3"):
        inv.try_acquire("c", 4)
    with pytest.raises(GpusUnavailable, match="has none"):
        GpuInventory([]).try_acquire("d", 1)


def test_a_waiting_replica_is_placed_when_gpus_are_released() -> None:
    async def scenario() -> None:
        inv = GpuInventory([Gpu("0"), Gpu("1")])
        inv.try_acquire("a", 1)
        reasons: list[str] = []
        waiter = asyncio.create_task(inv.acquire("b", 2, on_wait=reasons.append))
        await asyncio.sleep(0.05)
        assert not waiter.done() and "waiting for 2 free GPUs" in reasons[0]
        assert await inv.release("a") == ["0"]
        assert await asyncio.wait_for(waiter, 5) == ["0", "1"]
        assert inv.held_by("b") == ["0", "1"]

    run(scenario())
