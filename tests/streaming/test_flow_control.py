"""The worker end of stream flow control: a windowed predict sends at most `window`
chunks ahead of the runtime's credit, and the model's generator waits meanwhile."""

from __future__ import annotations

import select
import time
from pathlib import Path

import pytest

from modelport.worker import protocol as p
from modelport.worker.values import Value, decode_result
from tests.streaming.conftest import TICKER, model_log, wait_until_still
from tests.worker.support import ShimProcess, install_copy


@pytest.fixture
def worker(tmp_path: Path):  # noqa: ANN201
    shim = ShimProcess(install_copy(tmp_path / "shim"), TICKER, tmp_path / "worker.log")
    shim.setup()
    yield shim
    shim.close()


def _inputs(n: int, log: Path) -> dict[str, Value]:
    return {"n": Value.of_json(n), "delay": Value.of_json(0), "gate": Value.of_text(""),
            "log": Value.of_text(str(log)), "fail_at": Value.of_json(-1),
            "size": Value.of_json(0)}


def _chunks(worker: ShimProcess, count: int) -> list[int]:
    got = []
    while len(got) < count:
        frame = worker.recv()
        if frame.kind == p.CHUNK:
            got.append(decode_result(frame.header["result"], frame.parts).decoded()["i"])
    return got


def _nothing_more(worker: ShimProcess, wait: float = 0.5) -> bool:
    """No chunk or done arrives within `wait` seconds (log frames aside)."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([worker.channel.sock], [], [], left)
        if readable and worker.recv().kind != p.LOG:
            return False
    return True


def test_window_holds_the_model_until_credit(worker: ShimProcess, tmp_path: Path) -> None:
    log = tmp_path / "model.log"
    worker.send(p.predict("r1", _inputs(50, log), window=4))
    assert _chunks(worker, 4) == [0, 1, 2, 3]
    # the generator made item 4 and waits in the shim for room in the window
    assert wait_until_still(log, quiet=0.5) == [f"made {i}" for i in range(5)]
    assert _nothing_more(worker)
    worker.send(p.credit("r1", 3))
    assert _chunks(worker, 3) == [4, 5, 6]
    assert wait_until_still(log, quiet=0.5)[-1] == "made 7"
    worker.send(p.cancel("r1"))
    done = worker.recv_until(p.DONE, "r1")[-1]
    assert done.header["error"]["code"] == p.ErrorCode.CANCELLED
    deadline = time.monotonic() + 10
    while "closed" not in model_log(log):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_without_window_the_stream_runs_free(worker: ShimProcess, tmp_path: Path) -> None:
    log = tmp_path / "model.log"
    worker.send(p.predict("r2", _inputs(30, log)))
    frames = worker.recv_until(p.DONE, "r2")
    assert sum(f.kind == p.CHUNK for f in frames) == 30
    assert model_log(log)[-1] == "finished"
