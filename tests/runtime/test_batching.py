"""Adaptive batching with a real supervisor and worker process: grouping, per-item errors,
the latency bound, and callers that give up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from modelport.errors import Kind, ModelportError
from modelport.worker.values import Value
from services.runtime.backends.process import ProcessBackend
from services.runtime.dataplane import calls
from services.runtime.dataplane.batching import BatchPolicy, admission_slots
from services.runtime.supervisor import Supervisor
from tests.runtime.support import (
    PACKAGES,
    make_spec,
    replica_predict,
    run,
    until,
    wait_state,
)

RID = "batching-r1"


def batching_spec(tmp_path: Path, max_batch_size: int = 8, max_latency_ms: float = 60000):
    """The batching test package; the runtime reads ``batching`` from the spec's config."""
    config = json.loads((PACKAGES / "batching" / "config.json").read_text())
    config["batching"] = {"max_batch_size": max_batch_size, "max_latency_ms": max_latency_ms}
    return make_spec("batching", tmp_path, replica_id=RID, config=config)


async def started(tmp_path: Path, shim_root: Path, stop_grace_s: float = 10.0,
                  **policy: Any) -> Supervisor:
    sup = Supervisor(tmp_path / "work", ProcessBackend(shim_root),  # type: ignore[arg-type]
                     stop_grace_s=stop_grace_s)
    await sup.start(batching_spec(tmp_path, **policy))
    await wait_state(sup, RID, "ready")
    return sup


def inputs(x: Any, **extra: str) -> dict[str, Value]:
    out = {"x": Value.of_json(x)}
    out.update({k: Value.of_text(v) for k, v in extra.items()})
    return out


async def predict(sup: Supervisor, request_id: str, x: Any, timeout_s: float | None = None,
                  **extra: str) -> Any:
    return (await replica_predict(sup, RID, request_id, inputs(x, **extra), timeout_s)).decoded()


def batcher(sup: Supervisor) -> Any:
    return sup._replicas[RID].batcher


def test_policy_and_admission_slots_come_from_config() -> None:
    assert BatchPolicy.from_config({}) is None
    assert BatchPolicy.from_config({"batching": {"max_batch_size": 4}}) == BatchPolicy(4, 0.01)
    assert BatchPolicy.from_config({"batching": {"max_batch_size": 32, "max_latency_ms": 5}}
                                   ) == BatchPolicy(32, 0.005)
    assert admission_slots({}, 3) == 3
    assert admission_slots({"batching": {"max_batch_size": 16}}, 1) == 32
    assert admission_slots({"batching": {"max_batch_size": 2}}, 8) == 8


def test_concurrent_requests_arriving_together_go_as_one_batch(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = await started(tmp_path, shim_root)
        try:
            xs = [3, -1, 0.5, 7, 10, 2]
            got = await asyncio.gather(*(predict(sup, f"r{i}", x) for i, x in enumerate(xs)))
            assert got == [{"y": x * 2, "batch": len(xs)} for x in xs]
            assert batcher(sup).sizes == {len(xs): 1}
        finally:
            await sup.close()

    run(main())


def test_requests_accumulate_while_a_batch_runs_and_each_gets_its_own_answer(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = await started(tmp_path, shim_root, max_batch_size=8)
        gate = tmp_path / "gate"
        try:
            # an idle worker: the first request goes at once, alone, and holds the worker
            first = asyncio.create_task(predict(sup, "gate", 100, gate=str(gate)))
            await until(lambda: batcher(sup).sizes == {1: 1}, "the lone request was sent")
            rest = [asyncio.create_task(predict(sup, f"r{x}", x)) for x in range(8)]
            # a full batch leaves at once, even though the worker is busy
            await until(lambda: batcher(sup).sizes == {1: 1, 8: 1}, "a batch of 8 was sent")
            gate.touch()
            assert await first == {"y": 200, "batch": 1}
            assert await asyncio.gather(*rest) == [{"y": 2 * x, "batch": 8} for x in range(8)]
        finally:
            await sup.close()

    run(main())


def test_a_lone_request_never_waits_for_the_batch_to_fill(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        # a 60 s latency bound and room for 32: only the idle-worker rule can answer this
        sup = await started(tmp_path, shim_root, max_batch_size=32)
        try:
            assert await asyncio.wait_for(predict(sup, "alone", 21), 20) == {"y": 42,
                                                                              "batch": 1}
        finally:
            await sup.close()

    run(main())


def test_an_idle_worker_holds_for_the_last_batchs_callers_coming_back(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = await started(tmp_path, shim_root, max_batch_size=32)
        gate = tmp_path / "gate"
        try:
            # a batch of 4 that runs about half a second (the gate opens after 0.5 s)
            first = [asyncio.create_task(predict(sup, f"a{i}", i, gate=str(gate)))
                     for i in range(4)]
            await until(lambda: batcher(sup).sizes == {4: 1}, "the batch of 4 was sent")
            await asyncio.sleep(0.5)
            gate.touch()
            await asyncio.gather(*first)
            # its callers come back one by one, 20 ms apart: without the hold the first
            # would go alone; with it, all four go together (the hold is at most the last
            # batch's run time, about 0.5 s, far longer than the 60 ms they take)
            again = []
            for i in range(4):
                again.append(asyncio.create_task(predict(sup, f"b{i}", i)))
                await asyncio.sleep(0.02)
            assert await asyncio.gather(*again) == [{"y": 2 * i, "batch": 4} for i in range(4)]
            assert batcher(sup).sizes == {4: 2}
            # after an idle spell longer than the last batch took, a lone request goes at once
            await asyncio.sleep(1.0)
            assert await predict(sup, "alone", 1) == {"y": 2, "batch": 1}
        finally:
            await sup.close()

    run(main())


def test_max_latency_sends_a_partial_batch_to_a_busy_worker(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = await started(tmp_path, shim_root, max_batch_size=32, max_latency_ms=50)
        gate = tmp_path / "gate"
        try:
            first = asyncio.create_task(predict(sup, "gate", 1, gate=str(gate)))
            await until(lambda: batcher(sup).sizes == {1: 1}, "the lone request was sent")
            rest = [asyncio.create_task(predict(sup, f"r{x}", x)) for x in range(3)]
            # neither full nor idle: only the latency bound sends them, the gate still shut
            await until(lambda: batcher(sup).sizes == {1: 1, 3: 1}, "the latency bound fired")
            assert not gate.exists() and not first.done()
            gate.touch()
            assert await asyncio.gather(*rest) == [{"y": 2 * x, "batch": 3} for x in range(3)]
            await first
        finally:
            await sup.close()

    run(main())


def test_a_bad_item_fails_only_its_caller(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = await started(tmp_path, shim_root)
        try:
            got = await asyncio.gather(
                predict(sup, "a", 1), predict(sup, "bad", 2, mode="bad"),
                predict(sup, "c", 3), predict(sup, "invalid", "three"),
                return_exceptions=True)
            assert got[0] == {"y": 2, "batch": 3} and got[2] == {"y": 6, "batch": 3}
            assert isinstance(got[1], ModelportError) and got[1].kind == Kind.MODEL
            assert got[1].code == "model.error"
            assert got[1].message == "ValueError: bad item x=2"
            assert got[1].details["request_id"] == "bad"
            assert isinstance(got[3], ModelportError) and got[3].kind == Kind.INVALID
            assert got[3].code == "request.invalid_input"
        finally:
            await sup.close()

    run(main())


def test_predict_batch_raising_fails_every_item_of_that_batch(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = await started(tmp_path, shim_root)
        try:
            got = await asyncio.gather(predict(sup, "a", 1), predict(sup, "b", 2, mode="raise"),
                                       return_exceptions=True)
            for err in got:
                assert isinstance(err, ModelportError) and err.code == "model.error"
                assert err.message == "RuntimeError: the model failed on a batch of 2"
            # the replica keeps serving
            assert await predict(sup, "after", 5) == {"y": 10, "batch": 1}
        finally:
            await sup.close()

    run(main())


def test_a_wrong_length_result_fails_clearly(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = await started(tmp_path, shim_root)
        try:
            got = await asyncio.gather(predict(sup, "a", 1), predict(sup, "b", 2),
                                       predict(sup, "c", 3, mode="short"),
                                       return_exceptions=True)
            for err in got:
                assert isinstance(err, ModelportError) and err.kind == Kind.MODEL
                assert err.code == "model.batch_invalid"
                assert "predict_batch returned 2 results for 3 inputs" in err.message
                assert "one result (or Exception) per input" in err.fix
        finally:
            await sup.close()

    run(main())


def test_a_caller_giving_up_leaves_the_others_alone(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = await started(tmp_path, shim_root, max_batch_size=3)
        gate = tmp_path / "gate"
        try:
            first = asyncio.create_task(predict(sup, "gate", 1, gate=str(gate)))
            await until(lambda: batcher(sup).sizes == {1: 1}, "the lone request was sent")
            # waiting for its batch to form: one times out, one is cancelled
            with pytest.raises(ModelportError) as err:
                await predict(sup, "short", 1, timeout_s=0.05)
            assert err.value.kind == Kind.DEADLINE and err.value.code == "request.timeout"
            waiting = asyncio.create_task(predict(sup, "waiting", 2))
            cancelled = asyncio.create_task(predict(sup, "cancelled", 3))
            await until(lambda: batcher(sup).waiting == 2, "both requests are waiting")
            await calls.cancel(sup, RID, "cancelled")
            with pytest.raises(ModelportError) as err:
                await cancelled
            assert err.value.code == "request.cancelled"
            # sent with the worker busy: one caller gives up, the others still get answers
            sent = [asyncio.create_task(predict(sup, f"s{x}", x)) for x in range(2)]
            await until(lambda: batcher(sup).sizes.get(3) == 1, "a batch of 3 was sent")
            sent[0].cancel()
            with pytest.raises(asyncio.CancelledError):
                await sent[0]
            link = sup._replicas[RID].handle.link  # type: ignore[union-attr]
            for _ in range(2000):  # the cancel reached the worker: 2 items left in its queue
                if (await link.health())["queued"] == 2:
                    break
                await asyncio.sleep(0.005)
            gate.touch()
            assert await first == {"y": 2, "batch": 1}
            assert await waiting == {"y": 4, "batch": 2}  # s0 left before the batch ran
            assert await sent[1] == {"y": 2, "batch": 2}
        finally:
            await sup.close()

    run(main())


def test_a_stopped_replica_fails_its_waiting_requests(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = await started(tmp_path, shim_root, stop_grace_s=0.2, max_batch_size=4)
        gate = tmp_path / "gate"  # never opened: stop kills the worker after its grace
        try:
            first = asyncio.create_task(predict(sup, "gate", 1, gate=str(gate)))
            await until(lambda: batcher(sup).sizes == {1: 1}, "the lone request was sent")
            waiting = asyncio.create_task(predict(sup, "waiting", 2))
            await until(lambda: batcher(sup).waiting == 1, "the request is waiting")
            await sup.stop(RID)
            with pytest.raises(ModelportError) as err:
                await waiting
            assert err.value.kind == Kind.UNAVAILABLE and err.value.code == "replica.stopped"
            with pytest.raises(ModelportError) as err:
                await first
            assert err.value.kind == Kind.UNAVAILABLE and err.value.code == "worker.crashed"
            with pytest.raises(ModelportError) as err:
                await predict(sup, "late", 3)
            assert err.value.code == "replica.not_ready"
        finally:
            await sup.close()

    run(main())


def test_called_back_requests_join_batches_time_out_and_cancel(
        shim_root: Path, tmp_path: Path) -> None:
    """``calls.start`` (every unary caller's path, no task per request) on a batching
    replica: each caller is called back once with its own answer or error; one that cancels is
    never called back and leaves its batch."""
    async def main() -> None:
        sup = await started(tmp_path, shim_root, max_batch_size=4)
        gate = tmp_path / "gate"
        loop = asyncio.get_running_loop()
        ends: dict[str, list[Any]] = {}

        def send(rid: str, x: int, timeout_s: float | None = None) -> Any:
            ends[rid] = []
            done = loop.create_future()

            def on_end(outcome: Any) -> None:
                ends[rid].append(outcome)
                if not done.done():
                    done.set_result(outcome)

            handle = calls.start(sup, RID, rid, {"x": {"json_part": 0}}, [str(x).encode()],
                                  timeout_s, False, on_end)
            return handle, done

        try:
            first = asyncio.create_task(predict(sup, "gate", 1, gate=str(gate)))
            await until(lambda: batcher(sup).sizes == {1: 1}, "the lone request was sent")
            _, short = send("short", 1, timeout_s=0.05)
            _, kept = send("kept", 2)
            gone, _ = send("gone", 3)
            await until(lambda: batcher(sup).waiting == 3, "three requests wait")
            error = await short
            assert isinstance(error, ModelportError) and error.code == "request.timeout"
            gone.cancel()
            assert batcher(sup).waiting == 1  # both left the forming batch
            gate.touch()
            assert await first == {"y": 2, "batch": 1}
            reply = await kept
            assert reply.decoded().decoded() == {"y": 4, "batch": 1}
            await asyncio.sleep(0.05)
            assert ends == {"short": [error], "kept": [reply], "gone": []}  # once each
        finally:
            await sup.close()

    run(main())
