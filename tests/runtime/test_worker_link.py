"""The runtime's end of the protocol, against real worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelport.errors import Kind, ModelportError
from modelport.worker.values import Result, Value
from services.runtime.backends import ReplicaSpec
from services.runtime.backends.process import ProcessBackend, ProcessReplica
from tests.runtime.support import link_predict, log_text, make_spec, run


@contextlib.asynccontextmanager
async def worker(spec: ReplicaSpec, shim_root: Path, tmp_path: Path,
                 setup: bool = True) -> AsyncIterator[ProcessReplica]:
    handle = await ProcessBackend(shim_root).start(spec, tmp_path / "replicas" / spec.replica_id)
    try:
        if setup:
            await handle.link.setup(timeout_s=30)
        yield handle
    finally:
        await handle.stop(grace_s=2.0)


def test_predict_round_trip_text_bytes_json_number(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("echo", tmp_path), shim_root, tmp_path) as w:
            assert w.link.hello["pid"] == w.pid
            assert w.link.ready_info is not None
            result = await link_predict(w.link, "r1", {
                "text": Value.of_text("héllo"),
                "blob": Value.of_bytes(bytes(range(256)) * 4),
                "payload": Value.of_json({"k": [1, None, "x"]}),
                "count": Value.of_raw_json(b"2.5"),
            }, timeout_s=10)
            assert result.kind == "json" and result.duration_ms is not None
            assert result.decoded() == {
                "text": "héllo", "blob_len": 1024, "blob_type": "bytes",
                "payload": {"k": [1, None, "x"]}, "count": 2.5, "count_type": "float",
                "setups": 1}
            raw = await link_predict(w.link, "r2", {"blob": Value.of_bytes(b"\x00\x01\xff"),
                                              "mode": Value.of_text("bytes")})
            assert raw == Result("bytes", b"\xff\x01\x00")

    run(main())


def test_user_exception_is_a_model_error_with_the_traceback_in_the_log(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("raises_in_predict", tmp_path), shim_root, tmp_path) as w:
            with pytest.raises(ModelportError) as err:
                await link_predict(w.link, "req-42", {"x": Value.of_json(3)})
            assert err.value.kind == Kind.MODEL and err.value.code == "model.error"
            assert err.value.message == "ValueError: bad input: 3"
            assert "Traceback" not in str(err.value)  # tracebacks stay in the log
            assert "req-42" in err.value.fix
            log = await log_text(w.log_path, "request req-42 failed")
            assert "request req-42 failed" in log and "Traceback (most recent call last)" in log
            assert 'raise ValueError(f"bad input: {x}")' in log
            # the worker is still serving
            with pytest.raises(ModelportError, match="bad input: 4"):
                await link_predict(w.link, "req-43", {"x": Value.of_json(4)})

    run(main())


def test_invalid_input_is_kind_invalid(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("echo", tmp_path), shim_root, tmp_path) as w:
            with pytest.raises(ModelportError) as err:
                await link_predict(w.link, "r", {"nope": Value.of_text("x")})
            assert err.value.kind == Kind.INVALID
            assert "unexpected input 'nope'" in err.value.message

    run(main())


def test_a_crash_fails_every_request_in_flight_with_the_exit_code(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("killed_in_predict", tmp_path), shim_root, tmp_path) as w:
            ok = await link_predict(w.link, "ok", {"text": Value.of_text("hi")})
            assert ok.decoded()["ok"] == "hi"
            dying = asyncio.create_task(link_predict(w.link, "die", {"text": Value.of_text("die")}))
            queued = asyncio.create_task(link_predict(w.link, "next", {"text": Value.of_text("x")}))
            errors = await asyncio.gather(dying, queued, return_exceptions=True)
            for error in errors:
                assert isinstance(error, ModelportError)
                assert error.kind == Kind.UNAVAILABLE and error.code == "worker.crashed"
            # the worker runs one at a time in order: only the first one had started
            assert errors[0].message == (
                "the model process exited (code 1) while handling this request")
            assert errors[0].details == {"exit_code": 1, "request_id": "die"}
            assert errors[1].message == ("the model process exited (code 1) before it "
                                         "started this request (it was queued behind "
                                         "another one)")
            assert errors[1].details == {"exit_code": 1, "request_id": "next",
                                         "started": False}
            assert await w.wait() == 1
            with pytest.raises(ModelportError) as later:
                await link_predict(w.link, "after", {"text": Value.of_text("x")})
            assert later.value.kind == Kind.UNAVAILABLE

    run(main())


def test_timeout_is_a_deadline_error_and_cancels_in_the_worker(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("slow", tmp_path), shim_root, tmp_path) as w:
            with pytest.raises(ModelportError) as err:
                await link_predict(w.link, "slow", {"seconds": Value.of_json(30)}, timeout_s=0.5)
            assert err.value.kind == Kind.DEADLINE and err.value.code == "request.timeout"
            assert "within 0.5s" in err.value.message
            assert w.link.in_flight == []
            health = await w.link.health()
            assert health["busy"] == "slow"  # a running sync predict cannot be interrupted

    run(main())


def test_health_reports_state(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("echo", tmp_path), shim_root, tmp_path) as w:
            health = await w.link.health()
            assert health["state"] == "ready" and health["busy"] is None

    run(main())


def test_duplicate_request_ids_are_a_conflict(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("slow", tmp_path), shim_root, tmp_path) as w:
            first = asyncio.create_task(
                link_predict(w.link, "same", {"seconds": Value.of_json(0.3)}))
            await asyncio.sleep(0.05)
            with pytest.raises(ModelportError) as err:
                await link_predict(w.link, "same", {"seconds": Value.of_json(0)})
            assert err.value.kind == Kind.CONFLICT
            assert (await first).decoded() == {"slept": 0.3}

    run(main())


def test_stream_chunks_arrive_before_the_generator_finishes(
        shim_root: Path, tmp_path: Path) -> None:
    """Item 1 waits for a gate file that the test creates only after receiving item 0:
    if chunks were held back until the generator finished, this would never complete."""
    gate = str(tmp_path / "gate")

    async def main() -> None:
        async with worker(make_spec("streaming", tmp_path), shim_root, tmp_path) as w:
            assert w.link.ready_info is not None and w.link.ready_info["streaming"] is True
            seen = []
            stream = w.link.predict_stream("s", {"n": Value.of_json(3),
                                                 "gate": Value.of_text(gate)}, timeout_s=30)
            async for chunk in stream:
                item = chunk.decoded()
                seen.append(item["i"])
                Path(f"{gate}.{item['i'] + 1}").touch()
            assert seen == [0, 1, 2]

    run(main())


def test_stream_chunks_are_spread_over_time(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("streaming", tmp_path), shim_root, tmp_path) as w:
            arrivals = []
            async for _ in w.link.predict_stream("s", {"n": Value.of_json(3),
                                                       "delay": Value.of_json(0.4)}):
                arrivals.append(time.monotonic())
            assert len(arrivals) == 3
            # coarse ordering only: the first chunk came well before the last
            assert arrivals[2] - arrivals[0] > 0.4

    run(main())


def test_unary_predict_on_a_streaming_model_joins_chunks_as_a_json_array(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("streaming", tmp_path), shim_root, tmp_path) as w:
            result = await link_predict(w.link, "s", {"n": Value.of_json(2)})
            assert result.kind == "json"
            assert [item["i"] for item in result.decoded()] == [0, 1]

    run(main())


def test_stopping_a_stream_early_cancels_it(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("streaming", tmp_path), shim_root, tmp_path) as w:
            stream = w.link.predict_stream("s", {"n": Value.of_json(100),
                                                 "delay": Value.of_json(0.05)})
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    assert chunk.decoded()["i"] == 0
                    break
            assert w.link.in_flight == []
            for _ in range(100):  # the worker drops it at its next item
                if (await w.link.health())["busy"] is None:
                    break
                await asyncio.sleep(0.05)
            assert (await w.link.health())["busy"] is None

    run(main())


def test_setup_failure_is_a_model_error_with_the_reason(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("setup_raises", tmp_path), shim_root, tmp_path,
                          setup=False) as w:
            with pytest.raises(ModelportError) as err:
                await w.link.setup()
            assert err.value.code == "worker.setup_failed"
            assert err.value.message == (
                "setup raised ValueError: weights file model.bin is missing")

    run(main())


def test_a_bad_config_is_reported_as_invalid(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        spec = make_spec("echo", tmp_path, config={"predictor": "no-colon-here"})
        async with worker(spec, shim_root, tmp_path, setup=False) as w:
            with pytest.raises(ModelportError) as err:
                await w.link.setup(spec.config)
            assert err.value.kind == Kind.INVALID
            assert err.value.message.startswith('config.json: "predictor" must look like')

    run(main())


def test_file_contract_round_trip(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        spec = make_spec("file_contract_echo", tmp_path)
        original = (spec.package_dir / "2.txt").read_bytes()
        async with worker(spec, shim_root, tmp_path) as w:
            result = await link_predict(w.link, "r", {"image": Value.of_bytes(b"\xff\xd8\xff"),
                                                "2.txt": Value.of_text("a text input")})
            out = result.decoded()
            assert out["image_bytes"] == 3 and out["text"] == "a text input"
            # `python` in the entrypoint is the environment's python
            assert out["python"] == str(Path(sys.executable).parent / "python")
            await log_text(w.log_path, "inference.py: a line on stderr")
        assert (spec.package_dir / "2.txt").read_bytes() == original
        assert (spec.package_dir / "output" / "output.json").read_text() == '{"stale": true}\n'

    run(main())


def test_file_contract_failing_entrypoint(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("file_contract_fails", tmp_path), shim_root, tmp_path) as w:
            with pytest.raises(ModelportError) as err:
                await link_predict(w.link, "r", {"text": Value.of_text("x")})
            assert err.value.kind == Kind.MODEL and err.value.code == "model.entrypoint_failed"
            assert "exited with code 3" in err.value.message
            assert "CUDA out of memory (pretend)" in err.value.message

    run(main())


def test_file_contract_missing_output(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("file_contract_no_output", tmp_path), shim_root,
                          tmp_path) as w:
            with pytest.raises(ModelportError) as err:
                await link_predict(w.link, "r", {"text": Value.of_text("x")})
            assert err.value.code == "model.output_invalid"
            assert "did not write output/output.json" in err.value.message

    run(main())


def test_stdout_noise_does_not_disturb_the_protocol(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with worker(make_spec("prints_to_stdout", tmp_path), shim_root, tmp_path) as w:
            result = await link_predict(w.link, "r", {"text": Value.of_text("x")})
            assert result.decoded() == {"ok": "x"}
            await log_text(w.log_path, "NOISY-MARKER x")

    run(main())


def test_tensors_in_and_numpy_out(shim_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("numpy")

    async def main() -> None:
        async with worker(make_spec("tensor_echo", tmp_path), shim_root, tmp_path) as w:
            result = await link_predict(w.link, "r", {"x": Value.of_json([[1, 2, 3], [4, 5, 6]])})
            assert result.decoded() == {
                "type": "ndarray", "dtype": "float32", "shape": [2, 3], "sum": 21.0,
                "doubled": [[2.0, 4.0, 6.0], [8.0, 10.0, 12.0]], "nan": None}
            with pytest.raises(ModelportError) as err:
                await link_predict(w.link, "r2", {"x": Value.of_json([1, 2])})
            assert err.value.kind == Kind.INVALID and "shape [2]" in err.value.message

    run(main())
