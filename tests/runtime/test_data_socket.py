"""The runtime's data socket end to end: a client speaking ``predict_frames`` as the gateway
does, the real servicer, supervisor, admission queue and worker processes. Requests are
relayed by callbacks (``data_socket._Relay``): inputs and results cross as frames,
never decoded into Values, and every ending (answer, error, timeout, cancel, crash)
must still answer, release the slot and count in the metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelport.errors import ModelportError
from modelport.worker.frames import Frame, encode_frame
from modelport.worker.values import Value, decode_result, encode_inputs
from services.runtime.backends.process import ProcessBackend
from services.runtime.dataplane import calls
from services.runtime.dataplane.admission import PIPELINE_MAX, PIPELINE_MAX_BYTES, Admission
from services.runtime.dataplane.data_socket import DataSocket
from services.runtime.metrics import RuntimeMetrics
from services.runtime.servicer import RuntimeServicer
from services.runtime.supervisor import Supervisor
from services.wire import predict_frames as pf
from services.wire.transport import FrameProtocol
from tests.runtime.support import make_spec, run, until, wait_state


class Client:
    """The gateway's end of a data socket: frames out, answers kept by id, in order."""

    def __init__(self) -> None:
        self.inbox: dict[str, asyncio.Queue[Frame]] = {}
        self.frames = FrameProtocol(self._frame, lambda _exc: None)

    @classmethod
    async def connect(cls, path: Path) -> Client:
        self = cls()
        await asyncio.get_running_loop().create_unix_connection(lambda: self.frames, str(path))
        return self

    def box(self, request_id: str) -> asyncio.Queue[Frame]:
        return self.inbox.setdefault(request_id, asyncio.Queue())

    def _frame(self, frame: Frame) -> None:
        self.box(frame.id or "").put_nowait(frame)

    def send(self, request_id: str, service: str, inputs: dict[str, Value],
             timeout_s: float | None = 30.0) -> Any:
        """Send one predict; await the result for its (next) answer."""
        self.frames.write(pf.predict(request_id, service, 1, inputs, timeout_s))
        return self.box(request_id).get()

    def send_raw(self, header: dict[str, Any], parts: list[bytes]) -> Any:
        self.frames.write(encode_frame(header, parts))
        return self.box(header["id"]).get()

    def cancel(self, request_id: str) -> None:
        self.frames.write(pf.cancel(request_id))


@dataclass
class Harness:
    sup: Supervisor
    servicer: RuntimeServicer
    metrics: RuntimeMetrics
    client: Client
    service: str
    replica_id: str

    def samples(self, name: str, **labels: str) -> float:
        """The value of one sample in the runtime's metrics (0 when absent)."""
        for family in self.metrics.registry.collect():
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return 0.0


@contextlib.asynccontextmanager
async def runtime(tmp_path: Path, shim_root: Path, package: str, concurrency: int = 1,
                  queue_size: int = 0) -> AsyncIterator[Harness]:
    sup = Supervisor(tmp_path / "work", ProcessBackend(shim_root))  # type: ignore[arg-type]
    admission = Admission(sup)
    metrics = RuntimeMetrics(sup, admission)
    sup.metrics = metrics
    servicer = RuntimeServicer(sup, admission)
    servicer.metrics = metrics
    spec = make_spec(package, tmp_path)
    admission.configure(spec.replica_id, spec.service, concurrency, queue_size)
    data = DataSocket(servicer, tmp_path / "rt.data")
    try:
        await sup.start(spec)
        await wait_state(sup, spec.replica_id, "ready")
        await data.start()
        client = await Client.connect(tmp_path / "rt.data")
        yield Harness(sup, servicer, metrics, client, spec.service, spec.replica_id)
        client.frames.close()
    finally:
        await data.close()
        await sup.close()


def result_of(frame: Frame) -> Any:
    assert frame.kind == pf.ANSWER, frame.header
    return decode_result(frame.header["result"], [bytes(x) for x in frame.parts])


def error_of(frame: Frame) -> dict[str, Any]:
    assert frame.kind == pf.FAILED, frame.header
    return frame.header["error"]


def test_text_json_and_binary_parts_cross_both_hops_as_frames(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with runtime(tmp_path, shim_root, "echo") as h:
            blob = bytes(range(256)) * 4
            frame = await h.client.send("r1", h.service, {
                "text": Value.of_text("héllo"), "blob": Value.of_bytes(blob),
                "payload": Value.of_json({"k": [1, None]}),
                "count": Value.of_raw_json(b"2.5")})
            assert result_of(frame).decoded() == {
                "text": "héllo", "blob_len": 1024, "blob_type": "bytes",
                "payload": {"k": [1, None]}, "count": 2.5, "count_type": "float",
                "setups": 1}
            assert frame.header["replica_id"] == h.replica_id
            assert frame.header["version"] == 1 and frame.header["duration_ms"] > 0
            # a bytes result comes back as a binary part, byte for byte
            frame = await h.client.send("r2", h.service, {
                "blob": Value.of_bytes(b"\x00\x01\xff" * 1000), "mode": Value.of_text("bytes")})
            assert frame.header["result"] == {"bytes": 0}
            assert bytes(frame.parts[0]) == (b"\x00\x01\xff" * 1000)[::-1]
            assert h.samples("modelport_runtime_requests_total", service=h.service,
                             code_class="2xx") == 2
            assert h.samples("modelport_queue_wait_seconds_count", service=h.service) == 2

    run(main())


def test_malformed_inputs_and_duplicate_ids_are_refused(shim_root: Path,
                                                        tmp_path: Path) -> None:
    async def main() -> None:
        async with runtime(tmp_path, shim_root, "slow") as h:
            bad = await h.client.send_raw({"kind": pf.PREDICT, "id": "bad", "service": h.service,
                                           "version": 1, "inputs": {"seconds": {"part": 3}}},
                                          [])
            err = error_of(bad)
            assert err["code"] == "request.invalid_input"
            assert "malformed request frame" in err["message"] and "part 3" in err["message"]
            first = h.client.send("same", h.service, {"seconds": Value.of_json(0.3)})
            await until(lambda: "same" in h.sup._replicas[h.replica_id].handle.link.in_flight,
                        "the first request reached the worker")
            duplicate = h.client.send("same", h.service, {"seconds": Value.of_json(0)})
            assert error_of(await duplicate)["code"] == "request.duplicate_id"
            assert result_of(await first).decoded() == {"slept": 0.3}
            again = await h.client.send("fresh", h.service, {"seconds": Value.of_json(0)})
            assert result_of(again).decoded() == {"slept": 0}

    run(main())


def test_a_worker_killed_mid_request_answers_worker_crashed(shim_root: Path,
                                                            tmp_path: Path) -> None:
    async def main() -> None:
        async with runtime(tmp_path, shim_root, "slow") as h:
            pending = h.client.send("r1", h.service, {"seconds": Value.of_json(30)})
            link = h.sup._replicas[h.replica_id].handle.link
            await until(lambda: "r1" in link.in_flight, "the request reached the worker")
            pid = h.sup.get(h.replica_id).pid
            os.kill(pid, signal.SIGKILL)
            err = error_of(await pending)
            assert err["code"] == "worker.crashed"
            assert "killed by SIGKILL" in err["message"]
            assert err["details"]["exit_code"] == -signal.SIGKILL
            assert h.servicer.admission.in_flight[h.replica_id] == 0
            assert h.samples("modelport_runtime_requests_total", service=h.service,
                             code_class="5xx") == 1

    run(main())


def test_a_request_pipelined_behind_one_that_kills_the_worker_is_sent_again(
        shim_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A fast replica takes a second request queued in its worker (pipelining). When the
    running one kills the worker, the queued one never started: it is sent again to the
    restarted replica and answered; only the one that ran fails."""

    async def main() -> None:
        async with runtime(tmp_path, shim_root, "killed_in_predict") as h:
            admission = h.servicer.admission
            first_pid = 0
            for n in range(8):  # short calls: the replica starts pipelining
                first_pid = result_of(await h.client.send(
                    f"warm{n}", h.service, {"text": Value.of_text("hi")})).decoded()["pid"]
            assert admission.pipelining(h.replica_id)
            # both frames in one write, so both are relayed before the crash is seen
            h.client.frames.write(
                pf.predict("die", h.service, 1, {"text": Value.of_text("die")}, 30.0)
                + pf.predict("next", h.service, 1, {"text": Value.of_text("x")}, 30.0))
            dying, queued = h.client.box("die").get(), h.client.box("next").get()
            err = error_of(await dying)
            assert err["code"] == "worker.crashed"
            assert "while handling this request" in err["message"]
            answer = result_of(await queued).decoded()
            assert answer["ok"] == "x" and answer["pid"] != first_pid  # the restarted one
            # it had gone to the worker (not waited here) and came back unstarted
            assert any("died before starting request next" in r.getMessage()
                       for r in caplog.records)
            assert admission.in_flight[h.replica_id] == 0
            assert h.samples("modelport_runtime_requests_total", service=h.service,
                             code_class="2xx") == 9
            assert h.samples("modelport_runtime_requests_total", service=h.service,
                             code_class="5xx") == 1

    run(main())


def test_a_fast_replica_pipelines_small_requests_but_not_large_ones(
        shim_root: Path, tmp_path: Path) -> None:
    """Requests queue in a fast replica's worker (pipelining), except one whose inputs
    are ``PIPELINE_MAX_BYTES`` or more: it waits here for a slot within the concurrency."""

    async def main() -> None:
        async with runtime(tmp_path, shim_root, "slow") as h:
            admission = h.servicer.admission
            for _ in range(30):  # as if its calls had been short
                admission.observe_run(h.replica_id, 0.0002)
            assert admission.pipelining(h.replica_id) == PIPELINE_MAX
            holder = h.client.send("hold", h.service, {"seconds": Value.of_json(0.5)})
            await until(lambda: admission.in_flight[h.replica_id] == 1, "the slot is taken")
            small = h.client.send("small", h.service, {"seconds": Value.of_json(0)})
            await until(lambda: admission.in_flight[h.replica_id] == 2,
                        "the small one went to the worker")
            big = h.client.send("big", h.service, {
                "seconds": Value.of_raw_json(b"0" + b" " * PIPELINE_MAX_BYTES)})
            await until(lambda: admission.queued(h.service) == 1, "the large one waits here")
            assert admission.in_flight[h.replica_id] == 2
            assert result_of(await holder).decoded() == {"slept": 0.5}
            assert result_of(await small).decoded() == {"slept": 0}
            assert result_of(await big).decoded() == {"slept": 0}
            assert admission.in_flight[h.replica_id] == 0

    run(main())


def test_queue_timeout_cancel_and_worker_timeout_release_their_slots(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with runtime(tmp_path, shim_root, "slow") as h:
            admission = h.servicer.admission
            holder = h.client.send("hold", h.service, {"seconds": Value.of_json(1.0)})
            await until(lambda: admission.in_flight[h.replica_id] == 1, "the slot is taken")
            # queued behind it: times out in the queue
            late = h.client.send("late", h.service, {"seconds": Value.of_json(0)},
                                 timeout_s=0.2)
            # queued behind it: the caller goes away
            gone = h.client.send("gone", h.service, {"seconds": Value.of_json(0)})
            await until(lambda: admission.queued(h.service) == 2, "two requests queue")
            assert h.metrics.waiting[(h.service, 1)] == 2
            h.client.cancel("gone")
            await until(lambda: admission.queued(h.service) == 1, "the cancelled one left")
            err = error_of(await late)
            assert err["code"] == "queue.timeout"
            assert result_of(await holder).decoded() == {"slept": 1.0}
            assert h.client.box("gone").empty()  # a cancelled request is not answered
            gone.close()
            assert admission.in_flight[h.replica_id] == 0 and admission.queued(h.service) == 0
            assert (h.service, 1) not in h.metrics.waiting
            # the worker's own deadline: request.timeout, and the slot comes back
            slow = await h.client.send("slow", h.service, {"seconds": Value.of_json(2)},
                                       timeout_s=0.3)
            assert error_of(slow)["code"] == "request.timeout"
            assert admission.in_flight[h.replica_id] == 0
            after = await h.client.send("after", h.service, {"seconds": Value.of_json(0)})
            assert result_of(after).decoded() == {"slept": 0}
            assert h.samples("modelport_runtime_requests_total", service=h.service,
                             code_class="2xx") == 2
            # queue.timeout and request.timeout (504) and the cancel (recorded as 500)
            assert h.samples("modelport_runtime_requests_total", service=h.service,
                             code_class="5xx") == 3

    run(main())


def test_a_full_queue_is_refused_at_once(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with runtime(tmp_path, shim_root, "slow", queue_size=1) as h:
            admission = h.servicer.admission
            holder = h.client.send("hold", h.service, {"seconds": Value.of_json(0.5)})
            await until(lambda: admission.in_flight[h.replica_id] == 1, "the slot is taken")
            queued = h.client.send("queued", h.service, {"seconds": Value.of_json(0)})
            await until(lambda: admission.queued(h.service) == 1, "one request queues")
            full = error_of(await h.client.send("full", h.service,
                                                {"seconds": Value.of_json(0)}))
            assert full["code"] == "queue.full" and full["details"]["queue_size"] == 1
            assert result_of(await holder).decoded() == {"slept": 0.5}
            assert result_of(await queued).decoded() == {"slept": 0}

    run(main())


def test_relay_on_the_link_reports_a_crash_with_the_exit_code(shim_root: Path,
                                                              tmp_path: Path) -> None:
    """``WorkerLink.call`` (frames cut in data_received, no reader task): a worker that
    exits mid-request fails the request with ``worker.crashed`` and its exit code."""

    async def main() -> None:
        backend = ProcessBackend(shim_root)
        spec = make_spec("killed_in_predict", tmp_path)
        handle = await backend.start(spec, tmp_path / "replicas" / spec.replica_id)
        try:
            await handle.link.setup(timeout_s=30)
            parts: list[Any] = []
            inputs = encode_inputs({"text": Value.of_text("hi")}, parts)
            reply = await calls.awaited(lambda done: handle.link.call("ok", inputs, parts, 10.0,
                                                                     False, done))
            assert reply.decoded().decoded()["ok"] == "hi"
            parts = []
            inputs = encode_inputs({"text": Value.of_text("die")}, parts)
            with pytest.raises(ModelportError) as err:
                await calls.awaited(lambda done: handle.link.call("die", inputs, parts, 10.0,
                                                                 False, done))
            assert err.value.code == "worker.crashed"
            assert err.value.details["exit_code"] == 1
            assert handle.link.closed
        finally:
            await handle.stop(grace_s=2.0)

    run(main())
