"""Replicas asking for GPUs, on a configured inventory of two, with real worker processes:
each sees only its GPUs (CUDA_VISIBLE_DEVICES), one asking for more than are free is
`pending` with the reason (no crash), and starts once a holder stops."""

from __future__ import annotations

import json
from pathlib import Path

from modelport.worker.values import Value
from services.runtime.gpus import Gpu, GpuInventory
from services.runtime.supervisor import Supervisor
from tests.runtime.support import make_spec, replica_predict, run, wait_state

CODE = """
import os

class Predictor:
    def predict(self, text):
        return {"visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "order": os.environ.get("CUDA_DEVICE_ORDER")}
"""


def _package(tmp_path: Path) -> Path:
    pkg = tmp_path / "packages" / "gpu_env"
    pkg.mkdir(parents=True)
    (pkg / "config.json").write_text(json.dumps({
        "name": "gpu-env", "predictor": "predict:Predictor",
        "input": [{"name": "text", "type": "text"}]}))
    (pkg / "predict.py").write_text(CODE)
    return pkg


async def _visible(sup: Supervisor, rid: str) -> str | None:
    result = await replica_predict(sup, rid, f"{rid}-q", {"text": Value.of_text("x")})
    seen = json.loads(result.data)
    assert seen["order"] == "PCI_BUS_ID"  # indexes mean what nvidia-smi shows
    return seen["visible"]


def test_replicas_are_placed_on_free_gpus(tmp_path: Path, shim_root: Path) -> None:
    _package(tmp_path)

    async def scenario() -> None:
        from services.runtime.backends.process import ProcessBackend

        sup = Supervisor(tmp_path / "work", ProcessBackend(shim_root),
                         gpus=GpuInventory([Gpu("0"), Gpu("1")]))
        try:
            await sup.start(make_spec("gpu_env", tmp_path, "one", resources={"gpu": 1}))
            await sup.start(make_spec("gpu_env", tmp_path, "none"))
            await wait_state(sup, "one", "ready")
            await wait_state(sup, "none", "ready")
            assert await _visible(sup, "one") == "0"
            assert await _visible(sup, "none") == ""  # asked for none: sees none

            await sup.start(make_spec("gpu_env", tmp_path, "two", resources={"gpu": 2}))
            pending = await wait_state(sup, "two", "pending")
            assert "waiting for 2 free GPUs" in pending.message
            assert "GPU 0 by replica one" in pending.message and pending.pid is None

            await sup.stop("one")
            ready = await wait_state(sup, "two", "ready")
            assert ready.gpus == ("0", "1")
            assert await _visible(sup, "two") == "0,1"
            log = (tmp_path / "work" / "replicas" / "two" / "replica.log").read_text()
            assert "pending: waiting for 2 free GPUs" in log and "placed on GPU 0, 1" in log
        finally:
            await sup.close()

    run(scenario())
