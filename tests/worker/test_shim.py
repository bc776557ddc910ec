"""The worker process itself, driven frame by frame over a real unix socket."""

from __future__ import annotations

import time
from collections.abc import Callable

from modelport.worker import protocol as p
from modelport.worker.exit_codes import EXIT_SETUP_FAILED
from modelport.worker.frames import frame_bytes
from modelport.worker.values import Value, decode_result
from modelport.worker.watch import PARK_AFTER_S
from tests.worker.support import ShimProcess, ends

Start = Callable[..., ShimProcess]


def test_hello_then_setup_then_ready(shim: Start) -> None:
    worker = shim("echo")
    hello = worker.recv()
    assert hello.kind == "hello" and hello.header["protocol"] == p.PROTOCOL_VERSION
    assert hello.header["pid"] == worker.proc.pid and hello.header["python"].count(".") == 2
    worker.send(p.setup())
    ready = worker.recv_until("ready")[-1]
    assert ready.header["package_kind"] == "predictor" and ready.header["streaming"] is False


def test_predict_sends_output_then_done(shim: Start) -> None:
    worker = shim("echo")
    worker.setup()
    worker.send(p.predict("r1", {"text": Value.of_text("hi"), "blob": Value.of_bytes(b"abc")}))
    (output,) = worker.recv_until("done", "r1")  # the result is also the request's end
    assert output.kind == "output" and output.id == "r1" and output.header["final"] is True
    result = decode_result(output.header["result"], output.parts)
    assert result.decoded()["blob_len"] == 3
    assert "error" not in output.header and output.header["duration_ms"] >= 0
    assert [phase[0] for phase in output.header["timings"]["phases"]][:2] == [
        "queue", "preprocess"]


def test_user_exception_is_done_with_error_and_traceback_in_log(shim: Start) -> None:
    worker = shim("raises_in_predict")
    worker.setup()
    worker.send(p.predict("r1", {"x": Value.of_json(3)}))
    (done,) = worker.recv_until("done", "r1")
    error = done.header["error"]
    assert error["type"] == "ValueError" and error["message"] == "bad input: 3"
    assert "code" not in error  # a user exception, not a shim-detected failure
    assert error["traceback"].startswith("Traceback")
    assert "shim.py" not in error["traceback"]  # starts at the user's code
    assert 'raise ValueError(f"bad input: {x}")' in error["traceback"]
    assert "raise ValueError" in worker.log_text()


def test_health_is_answered_while_a_prediction_runs(shim: Start) -> None:
    worker = shim("slow")
    worker.setup()
    worker.send(p.predict("slow-1", {"seconds": Value.of_json(1.5)}))
    worker.send(p.predict("slow-2", {"seconds": Value.of_json(0)}))
    time.sleep(0.3)
    worker.send(p.health("h1"))
    reply = worker.recv_until("health")[-1]
    assert reply.header == {"kind": "health", "id": "h1", "state": "ready", "busy": "slow-1",
                            "queued": 1}
    # cancel the queued one: it is dropped at once, before slow-1 finishes
    worker.send(p.cancel("slow-2"))
    frames = worker.recv_until("done")
    assert frames[-1].id == "slow-2"
    assert frames[-1].header["error"]["code"] == p.ErrorCode.CANCELLED
    assert worker.recv_until("done", "slow-1")[-1].header.get("error") is None


def test_streaming_sends_chunks_then_done(shim: Start) -> None:
    worker = shim("streaming")
    assert worker.setup().header["streaming"] is True
    worker.send(p.predict("s", {"n": Value.of_json(3)}))
    frames = worker.recv_until("done", "s")
    assert [f.kind for f in frames] == ["chunk", "chunk", "chunk", "done"]
    assert [decode_result(f.header["result"], f.parts).decoded()["i"]
            for f in frames[:3]] == [0, 1, 2]


def test_duplicate_request_ids_are_refused(shim: Start) -> None:
    worker = shim("slow")
    worker.setup()
    worker.send(p.predict("same", {"seconds": Value.of_json(0.5)}))
    worker.send(p.predict("same", {"seconds": Value.of_json(0)}))
    first = worker.recv_until("done", "same")[-1]
    assert first.header["error"]["code"] == p.ErrorCode.DUPLICATE_ID


def test_invalid_input_is_a_shim_error(shim: Start) -> None:
    worker = shim("echo")
    worker.setup()
    worker.send(p.predict("r", {"count": Value.of_text("many")}))
    error = worker.recv_until("done", "r")[-1].header["error"]
    assert error["code"] == p.ErrorCode.INVALID_INPUT and error["type"] == "InvalidInput"
    assert "input 'count' must be a number" in error["message"]


def test_print_in_model_code_goes_to_the_log_not_the_socket(shim: Start) -> None:
    worker = shim("prints_to_stdout")
    worker.setup()
    worker.send(p.predict("r", {"text": Value.of_text("loud")}))
    output = worker.recv_until("output", "r")[-1]
    assert decode_result(output.header["result"], output.parts).decoded() == {"ok": "loud"}
    worker.send(p.shutdown())
    assert worker.close() == 0
    log = worker.log_text()
    assert "setup: loading weights" in log and "NOISY-MARKER loud" in log
    assert "predict line 1999: loud" in log


def test_shutdown_finishes_the_running_request_and_exits_zero(shim: Start) -> None:
    worker = shim("slow")
    worker.setup()
    worker.send(p.predict("a", {"seconds": Value.of_json(0.5)}))
    worker.send(p.predict("b", {"seconds": Value.of_json(0)}))
    time.sleep(0.2)
    worker.send(p.shutdown())
    frames = [f for f in worker.recv_until("done", "a") if ends(f)]
    by_id = {f.id: f for f in frames}
    assert by_id["b"].header["error"]["code"] == p.ErrorCode.SHUTTING_DOWN
    assert "error" not in by_id["a"].header
    assert worker.proc.wait(timeout=10) == 0


def test_setup_failure_is_reported_and_the_worker_exits(shim: Start) -> None:
    worker = shim("setup_raises")
    worker.recv()
    worker.send(p.setup())
    (failed,) = worker.recv_until("setup_failed")
    error = failed.header["error"]
    assert error["type"] == "ValueError" and "model.bin is missing" in error["message"]
    assert worker.proc.wait(timeout=10) == EXIT_SETUP_FAILED
    assert "Traceback" in worker.log_text()


def test_import_error_in_setup(shim: Start) -> None:
    worker = shim("import_error")
    worker.recv()
    worker.send(p.setup())
    error = worker.recv_until("setup_failed")[-1].header["error"]
    assert error["type"] == "ModuleNotFoundError"
    assert "modelport_test_package_that_is_not_installed" in error["message"]


def test_unknown_message_kinds_are_ignored_with_a_log(shim: Start) -> None:
    worker = shim("echo")
    worker.setup()
    worker.send(({"kind": "from_the_future"}, []))
    log = worker.recv()
    assert log.kind == "log" and "from_the_future" in log.header["message"]
    worker.send(p.predict("r", {"text": Value.of_text("still fine")}))
    assert worker.recv_until("done", "r")[-1].header.get("error") is None


def test_the_worker_exits_when_the_runtime_goes_away(shim: Start) -> None:
    worker = shim("echo")
    worker.setup()
    worker.channel.close()
    assert worker.proc.wait(timeout=10) == 0


def test_file_contract_kind_through_the_shim(shim: Start) -> None:
    worker = shim("file_contract_echo")
    assert worker.setup().header["package_kind"] == "file_contract"
    worker.send(p.predict("r", {"image": Value.of_bytes(b"img"), "2.txt": Value.of_text("t")}))
    output = worker.recv_until("output", "r")[-1]
    assert decode_result(output.header["result"], output.parts).decoded()["image_bytes"] == 3
    assert "inference.py: a line on stderr" in worker.log_text()


# ---------------------------------------------------------------------- reading on two threads
# The main thread reads while no model code runs; the watch thread reads while a call runs
# long (or at once for setup, batches and streams). These drive both paths.


def test_health_is_answered_during_a_call_that_starts_after_the_watcher_parked(
        shim: Start) -> None:
    worker = shim("slow")
    worker.setup()
    time.sleep(PARK_AFTER_S + 0.5)  # idle: the watch thread sleeps until the next call
    worker.send(p.predict("late", {"seconds": Value.of_json(1.0)}))
    time.sleep(0.2)
    worker.send(p.health("h"))
    reply = worker.recv_until("health")[-1]
    assert reply.header["busy"] == "late" and reply.header["queued"] == 0
    assert worker.recv_until("done", "late")[-1].header.get("error") is None


def test_cancel_reaches_a_running_stream(shim: Start) -> None:
    worker = shim("streaming")
    worker.setup()
    worker.send(p.predict("s", {"n": Value.of_json(10000), "delay": Value.of_json(0.01)}))
    assert worker.recv_until("chunk", "s")[-1].kind == "chunk"
    worker.send(p.cancel("s"))
    done = worker.recv_until("done", "s")[-1]
    assert done.header["error"]["code"] == p.ErrorCode.CANCELLED


def test_frames_written_together_are_all_answered_in_order(shim: Start) -> None:
    worker = shim("echo")
    worker.setup()
    ids = [f"r{i}" for i in range(40)]
    data = b"".join(frame_bytes(*p.predict(i, {"text": Value.of_text(i)})) for i in ids)
    worker.channel.sock.sendall(data + frame_bytes(*p.health("h")))
    frames = worker.recv_until("done", ids[-1])
    assert [f.id for f in frames if ends(f)] == ids
    assert all("error" not in f.header for f in frames if ends(f))
    if not any(f.kind == "health" for f in frames):  # answered as soon as it is read
        frames = worker.recv_until("health")
    assert [f.header for f in frames if f.kind == "health"][0]["queued"] <= len(ids)


def test_a_frame_arriving_in_small_pieces(shim: Start) -> None:
    worker = shim("echo")
    worker.setup()
    data = frame_bytes(*p.predict("slowly", {"text": Value.of_text("x" * 300),
                                               "blob": Value.of_bytes(bytes(range(256)))}))
    for i in range(0, len(data), 7):
        worker.channel.sock.sendall(data[i:i + 7])
        time.sleep(0.001)
    output = worker.recv_until("output", "slowly")[-1]
    assert decode_result(output.header["result"], output.parts).decoded()["blob_len"] == 256


def test_the_worker_exits_when_the_runtime_goes_away_during_a_long_call(shim: Start) -> None:
    worker = shim("slow")
    worker.setup()
    worker.send(p.predict("stuck", {"seconds": Value.of_json(60)}))
    time.sleep(0.3)  # the model is inside time.sleep: only the watch thread can see EOF
    worker.channel.close()
    assert worker.proc.wait(timeout=10) == 0
    assert "exiting without waiting for the model" in worker.log_text()
