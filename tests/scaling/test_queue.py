"""Per-replica concurrency limits and the bounded per-service queue
(services/runtime/dataplane/admission.py), with real replicas under a real supervisor:
FIFO, 429 when full, 504 when a queued request runs out of time, least-loaded choice,
draining."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from modelport.errors import Kind, ModelportError
from services.runtime.backends.process import ProcessBackend
from services.runtime.dataplane.admission import PIPELINE_MAX, Admission
from services.runtime.supervisor import Supervisor
from tests.runtime.support import make_spec, run, wait_state


async def ready_replicas(tmp_path: Path, shim_root: Path, n: int = 1, concurrency: int = 1,
                         queue_size: int = 0) -> tuple[Supervisor, Admission]:
    sup = Supervisor(tmp_path / "work", ProcessBackend(shim_root), health_interval_s=0)
    admission = Admission(sup, ready_wait_s=30)
    for i in range(n):
        rid = f"slow-r{i}"
        admission.configure(rid, "slow", concurrency, queue_size)
        await sup.start(make_spec("slow", tmp_path, replica_id=rid))
    for i in range(n):
        await wait_state(sup, f"slow-r{i}", "ready")
    return sup, admission


def test_one_request_per_replica_and_the_rest_wait_in_order(shim_root: Path,
                                                             tmp_path: Path) -> None:
    async def main() -> None:
        sup, d = await ready_replicas(tmp_path, shim_root)
        try:
            held = await d.acquire("slow", 1, 10)
            granted: list[str] = []

            async def wait(name: str) -> None:
                rid = await d.acquire("slow", 1, 10)
                granted.append(name)
                await asyncio.sleep(0.01)
                d.release(rid)

            tasks = [asyncio.create_task(wait(n)) for n in ("first", "second", "third")]
            await asyncio.sleep(0.2)
            assert granted == [] and d.queued("slow") == 3
            loads = {ld.service: ld for ld in d.loads()}
            assert loads["slow"].in_flight == 1 and loads["slow"].queued == 3
            assert loads["slow"].last_request_at > 0
            d.release(held)
            await asyncio.gather(*tasks)
            assert granted == ["first", "second", "third"]
            assert d.in_flight[held] == 0
        finally:
            await sup.close()

    run(main())


def test_full_queue_is_429_and_a_queued_request_can_time_out(shim_root: Path,
                                                              tmp_path: Path) -> None:
    async def main() -> None:
        sup, d = await ready_replicas(tmp_path, shim_root, queue_size=1)
        try:
            held = await d.acquire("slow", 1, 10)
            waiting = asyncio.create_task(d.acquire("slow", 1, 10))
            await asyncio.sleep(0.1)
            with pytest.raises(ModelportError) as full:
                await d.acquire("slow", 1, 10)
            assert full.value.kind is Kind.EXHAUSTED and full.value.code == "queue.full"
            assert full.value.http_status == 429
            assert full.value.details["retry_after_s"] >= 1
            assert d.loads()[0].rejected == 1
            d.release(held)
            d.release(await waiting)
            held = await d.acquire("slow", 1, 10)
            with pytest.raises(ModelportError) as late:
                await d.acquire("slow", 1, 0.3)
            assert late.value.kind is Kind.DEADLINE and late.value.code == "queue.timeout"
            assert late.value.http_status == 504 and "queue" in late.value.message
            assert d.queued("slow") == 0  # it left the queue
            d.release(held)
        finally:
            await sup.close()

    run(main())


def test_concurrency_limit_and_least_loaded_choice(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup, d = await ready_replicas(tmp_path, shim_root, n=2, concurrency=2)
        try:
            picks = [await d.acquire("slow", 1, 10) for _ in range(4)]
            assert sorted(picks) == ["slow-r0", "slow-r0", "slow-r1", "slow-r1"]
            assert picks[0] != picks[1]  # the less loaded one first
            fifth = asyncio.create_task(d.acquire("slow", 1, 10))
            await asyncio.sleep(0.1)
            assert not fifth.done()  # both replicas at their limit of 2
            d.release(picks[3])
            assert await fifth == picks[3]
        finally:
            await sup.close()

    run(main())


def test_a_draining_replica_finishes_its_requests_takes_no_more_and_stops(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup, d = await ready_replicas(tmp_path, shim_root)
        try:
            held = await d.acquire("slow", 1, 10)
            waiter = asyncio.create_task(d.acquire("slow", 1, 10))
            await asyncio.sleep(0.1)
            draining = asyncio.create_task(d.drain_and_stop(held, 30))
            with pytest.raises(ModelportError) as moved:
                await waiter  # nothing left here for it: the gateway routes it again
            assert moved.value.code == "replica.none"
            await asyncio.sleep(0.2)
            assert sup.get(held).state == "ready"  # its request is still running
            d.release(held)
            await asyncio.wait_for(draining, 30)
            assert sup.get(held).state == "stopped"
            with pytest.raises(ModelportError) as none:
                await d.acquire("slow", 1, 10)
            assert none.value.code == "replica.none"
        finally:
            await sup.close()

    run(main())


def test_a_fast_replica_takes_more_unary_requests_until_a_stream_or_slow_calls(
        shim_root: Path, tmp_path: Path) -> None:
    """Pipelining: a replica whose calls are short takes unary relayed requests beyond its
    concurrency (they wait in the worker), as many as fit the budget of its calls' time;
    never for other callers, a batching replica, a replica running a stream, or one whose
    calls grew long."""
    async def main() -> None:
        sup, d = await ready_replicas(tmp_path, shim_root, n=2)
        adm = d
        try:
            assert adm.pipelining("slow-r0") == 0  # unknown until calls are seen
            for _ in range(6):
                adm.observe_run("slow-r0", 0.0002)
            # the average came down from "unknown" to ~2.8 ms: one call fits the budget
            assert adm.pipelining("slow-r0") == 1 and adm.pipelining("slow-r1") == 0
            first = adm.try_acquire("slow", 1, pipelined=True)
            second = adm.try_acquire("slow", 1, pipelined=True)
            assert {first, second} == {"slow-r0", "slow-r1"}  # the least loaded first
            assert adm.try_acquire("slow", 1) is None  # not a relayed unary request
            assert adm.try_acquire("slow", 1, pipelined=True) == "slow-r0"
            assert adm.in_flight["slow-r0"] == 2
            assert adm.try_acquire("slow", 1, pipelined=True) is None  # one extra, no more
            for _ in range(30):  # 0.2 ms calls: as many as fit 2 ms, at most PIPELINE_MAX
                adm.observe_run("slow-r0", 0.0002)
            assert adm.pipelining("slow-r0") == PIPELINE_MAX
            taken = [adm.try_acquire("slow", 1, pipelined=True) for _ in range(PIPELINE_MAX)]
            assert taken == ["slow-r0"] * (PIPELINE_MAX - 1) + [None]
            assert adm.in_flight["slow-r0"] == 1 + PIPELINE_MAX
            for _ in range(30):  # 1 ms calls: two fit the budget
                adm.observe_run("slow-r0", 0.001)
            assert adm.pipelining("slow-r0") == 2
            adm.observe_run("slow-r0", 0.007)  # between the bounds: stays on, one
            assert adm.pipelining("slow-r0") == 1
            for _ in range(PIPELINE_MAX):
                d.release("slow-r0")
            adm.hold_exclusive("slow-r0")  # a stream took a slot: nothing queues behind it
            assert adm.pipelining("slow-r0") == 0
            assert adm.try_acquire("slow", 1, pipelined=True) is None
            for _ in range(10):  # short calls again: back on, after a few
                adm.observe_run("slow-r0", 0.0002)
            assert adm.pipelining("slow-r0") == 1
            for _ in range(6):
                adm.observe_run("slow-r0", 0.5)
            assert adm.pipelining("slow-r0") == 0
            # a queued relayed request takes an extra slot when one frees up
            for _ in range(30):
                adm.observe_run("slow-r0", 0.0002)
            taken = [adm.try_acquire("slow", 1, pipelined=True) for _ in range(PIPELINE_MAX)]
            assert taken[0] == "slow-r0" and taken[-1] is None  # its extra slots, then full
            waiting = asyncio.create_task(d.acquire("slow", 1, 10))
            await asyncio.sleep(0.05)
            d.release("slow-r1")
            assert await waiting == "slow-r1"
            # a batching replica's slots form batches: never pipelined
            adm.configure("slow-r1", "slow", 1, pipelining=False)
            for _ in range(6):
                adm.observe_run("slow-r1", 0.0002)
            assert adm.pipelining("slow-r1") == 0
            adm.forget("slow-r0")
            assert adm.pipelining("slow-r0") == 0
        finally:
            await sup.close()

    run(main())
