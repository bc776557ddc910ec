"""predict_batch in the worker: one model call, each item answered on its own (real socket)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from modelport.worker import protocol as p
from modelport.worker.exit_codes import EXIT_SETUP_FAILED
from modelport.worker.frames import Frame
from modelport.worker.values import BatchItem, Value, decode_result
from tests.worker.support import ShimProcess, ends

Start = Callable[..., ShimProcess]


def item(request_id: str, x: object, **extra: str) -> BatchItem:
    inputs = {"x": Value.of_json(x)}
    inputs.update({k: Value.of_text(v) for k, v in extra.items()})
    return BatchItem(request_id, inputs)


def answers(worker: ShimProcess, ids: list[str]) -> dict[str, list[Frame]]:
    """Every frame for each id until its ``done`` (logs and other frames skipped)."""
    out: dict[str, list[Frame]] = {i: [] for i in ids}
    left = set(ids)
    while left:
        frame = worker.recv()
        if frame.id in out and frame.kind in (p.OUTPUT, p.DONE):
            out[frame.id].append(frame)
            if ends(frame):
                left.discard(frame.id)
    return out


def value(frames: list[Frame]) -> object:
    (output,) = frames  # the result is also the item's end
    assert output.kind == p.OUTPUT and ends(output) and "error" not in output.header, (
        output.header)
    return decode_result(output.header["result"], output.parts).decoded()


def busy_with(worker: ShimProcess, request_id: str) -> dict:
    """Health replies until the worker runs ``request_id`` (it has taken the gate batch)."""
    for n in range(2000):
        worker.send(p.health(f"h{n}"))
        reply = worker.recv_until(p.HEALTH)[-1]
        if reply.header["busy"] == request_id:
            return reply.header
        time.sleep(0.005)
    raise AssertionError(f"the worker never started {request_id}")


def test_a_batch_is_one_call_and_every_item_is_answered_by_id(shim: Start) -> None:
    worker = shim("batching")
    worker.setup()
    worker.send(p.predict_batch([item("a", 1), item("b", 2.5), item("c", -3)]))
    got = answers(worker, ["a", "b", "c"])
    assert value(got["a"]) == {"y": 2, "batch": 3}
    assert value(got["b"]) == {"y": 5.0, "batch": 3}
    assert value(got["c"]) == {"y": -6, "batch": 3}
    timings = got["a"][-1].header["timings"]
    assert timings["batch"] == 3
    assert [ph[0] for ph in timings["phases"]] == ["queue", "preprocess", "predict",
                                                  "postprocess"]


def test_per_item_errors_fail_only_their_item(shim: Start) -> None:
    worker = shim("batching")
    worker.setup()
    worker.send(p.predict_batch([item("ok", 1), item("bad", 2, mode="bad"),
                                 item("invalid", "not a number")]))
    got = answers(worker, ["ok", "bad", "invalid"])
    assert value(got["ok"]) == {"y": 2, "batch": 2}  # the invalid item never reached the model
    (done,) = got["bad"]
    assert done.header["error"]["type"] == "ValueError"
    assert done.header["error"]["message"] == "bad item x=2"
    assert "code" not in done.header["error"]  # the model's error, not the shim's
    (done,) = got["invalid"]
    assert done.header["error"]["code"] == p.ErrorCode.INVALID_INPUT
    assert "'x' must be a number" in done.header["error"]["message"]
    assert "request bad failed: ValueError: bad item x=2" in worker.log_text()


def test_predict_batch_raising_fails_every_item_with_its_error(shim: Start) -> None:
    worker = shim("batching")
    worker.setup()
    worker.send(p.predict_batch([item("r1", 1), item("r2", 2, mode="raise")]))
    got = answers(worker, ["r1", "r2"])
    for rid in ("r1", "r2"):
        (done,) = got[rid]
        assert done.header["error"]["type"] == "RuntimeError"
        assert done.header["error"]["message"] == "the model failed on a batch of 2"
    assert worker.log_text().count("raise RuntimeError") == 1  # one traceback per batch


def test_a_wrong_length_result_fails_every_item_naming_the_lengths(shim: Start) -> None:
    worker = shim("batching")
    worker.setup()
    worker.send(p.predict_batch([item("r1", 1), item("r2", 2), item("r3", 3, mode="short")]))
    got = answers(worker, ["r1", "r2", "r3"])
    for rid in ("r1", "r2", "r3"):
        (done,) = got[rid]
        error = done.header["error"]
        assert error["code"] == p.ErrorCode.BATCH_INVALID
        assert "predict_batch returned 2 results for 3 inputs" in error["message"]


def test_cancel_health_and_duplicates_with_a_batch_queued(shim: Start, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    worker = shim("batching")
    worker.setup()
    worker.send(p.predict_batch([item("g", 0, gate=str(gate))]))
    busy_with(worker, "g")
    worker.send(p.predict_batch([item("q1", 1), item("q2", 2), item("q1", 3)]))
    (dup,) = worker.recv_until(p.DONE, "q1")
    assert dup.header["error"]["code"] == p.ErrorCode.DUPLICATE_ID
    worker.send(p.predict_batch([item("g", 4)]))  # the running item's id
    (dup,) = worker.recv_until(p.DONE, "g")
    assert dup.header["error"]["code"] == p.ErrorCode.DUPLICATE_ID
    worker.send(p.health("h"))
    health = worker.recv_until(p.HEALTH)[-1].header
    assert health["busy"] == "g" and health["queued"] == 2
    worker.send(p.cancel("q2"))
    (cancelled,) = worker.recv_until(p.DONE, "q2")
    assert cancelled.header["error"]["code"] == p.ErrorCode.CANCELLED
    gate.touch()
    got = answers(worker, ["g", "q1"])
    assert value(got["g"]) == {"y": 0, "batch": 1}
    assert value(got["q1"]) == {"y": 2, "batch": 1}  # q2 left the batch before it ran


def test_batches_queued_behind_a_long_call_run_as_one_call(shim: Start, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    worker = shim("batching")  # config.json: max_batch_size 8
    worker.setup()
    worker.send(p.predict_batch([item("g", 0, gate=str(gate))]))
    busy_with(worker, "g")
    worker.send(p.predict_batch([item("a1", 1)]))
    worker.send(p.predict_batch([item("b1", 2), item("b2", 3)]))
    worker.send(p.predict_batch([item(f"c{i}", i) for i in range(6)]))  # 3 + 6 > 8: apart
    worker.send(p.health("h"))
    assert worker.recv_until(p.HEALTH)[-1].header["queued"] == 9
    gate.touch()
    got = answers(worker, ["g", "a1", "b1", "b2"] + [f"c{i}" for i in range(6)])
    assert value(got["g"]) == {"y": 0, "batch": 1}
    assert [value(got[r]) for r in ("a1", "b1", "b2")] == [
        {"y": 2, "batch": 3}, {"y": 4, "batch": 3}, {"y": 6, "batch": 3}]
    assert value(got["c5"]) == {"y": 10, "batch": 6}


def test_shutdown_fails_queued_batches_and_finishes_the_running_one(
        shim: Start, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    worker = shim("batching")
    worker.setup()
    worker.send(p.predict_batch([item("g1", 1, gate=str(gate)), item("g2", 2)]))
    busy_with(worker, "g1")
    worker.send(p.predict_batch([item("q1", 1), item("q2", 2)]))
    worker.send(p.shutdown())
    dropped = answers(worker, ["q1", "q2"])
    for rid in ("q1", "q2"):
        assert dropped[rid][0].header["error"]["code"] == p.ErrorCode.SHUTTING_DOWN
    gate.touch()
    got = answers(worker, ["g1", "g2"])
    assert value(got["g1"]) == {"y": 2, "batch": 2}
    assert value(got["g2"]) == {"y": 4, "batch": 2}
    assert worker.proc.wait(timeout=10) == 0


def test_declaring_batching_without_predict_batch_fails_setup(shim: Start) -> None:
    worker = shim("batching_missing")
    assert worker.recv().kind == p.HELLO
    worker.send(p.setup())
    failed = worker.recv_until(p.SETUP_FAILED)[-1]
    assert failed.header["error"]["type"] == "ConfigError"
    assert "has no predict_batch method" in failed.header["error"]["message"]
    assert worker.proc.wait(timeout=10) == EXIT_SETUP_FAILED


def test_a_kind_without_batches_runs_the_items_one_by_one(shim: Start) -> None:
    worker = shim("echo")
    worker.setup()
    worker.send(p.predict_batch([BatchItem("e1", {"text": Value.of_text("one")}),
                                 BatchItem("e2", {"count": Value.of_json(2)})]))
    got = answers(worker, ["e1", "e2"])
    assert value(got["e1"])["text"] == "one"
    assert value(got["e2"])["count"] == 2
