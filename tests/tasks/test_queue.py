"""The registry's task rules on a real SQLite file, with a hand-moved clock."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from modelport.errors import ModelportError
from modelport.v1 import inference_pb2, registry_pb2
from services.registry.store import SqliteStore
from services.registry.store.tasks import SqliteTaskStore
from services.registry.tasks import TaskQueue


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "registry.db"


def queue_on(db: Path, clock: Clock, **kw: float) -> TaskQueue:
    return TaskQueue(SqliteTaskStore(SqliteStore(db).db), clock=clock, **kw)


def request(text: str = "hi", service: str = "svc") -> inference_pb2.PredictRequest:
    return inference_pb2.PredictRequest(service=service, request_id="r",
                                        inputs=[inference_pb2.InputValue(name="t", text=text)])


def claim(q: TaskQueue, runner: str = "g1", limit: int = 10, running: list[str] | None = None
          ) -> tuple[list[tuple[str, object]], list[str]]:
    return asyncio.run(q.claim(runner, limit, running or [], 0))


def finish(q: TaskQueue, task_id: str, runner: str = "g1", state: str = "succeeded",
           **kw: object) -> object:
    return q.finish(registry_pb2.FinishTaskRequest(id=task_id, runner=runner, state=state, **kw))


def test_queue_claim_finish_and_reopen(db: Path, clock: Clock) -> None:
    q = queue_on(db, clock)
    first, _ = q.submit(request("a"))
    second, _ = q.submit(request("b"))
    jobs, _ = claim(q, limit=1)
    assert [(job, t.id) for job, t in jobs] == [("run", first.id)]  # oldest first
    assert q.get(first.id).state == "running" and q.get(second.id).state == "queued"
    clock.t += 2
    done = finish(q, first.id, output=inference_pb2.Output(json=b'{"x":1}'), version=3)
    assert done.state == "succeeded" and done.finished_at == clock.t and done.version == 3
    # a second registry on the same file sees the queue and the result
    q2 = queue_on(db, clock)
    assert q2.get(first.id, with_result=True).output == b'{"x":1}'
    assert [t.id for _, t in claim(q2, "g2")[0]] == [second.id]


def test_only_the_claiming_runner_finishes(db: Path, clock: Clock) -> None:
    q = queue_on(db, clock)
    t, _ = q.submit(request())
    claim(q, "g1")
    assert finish(q, t.id, runner="g2").state == "running"


def test_never_started_task_goes_back_with_a_delay(db: Path, clock: Clock) -> None:
    q = queue_on(db, clock)
    t, _ = q.submit(request())
    claim(q)
    finish(q, t.id, state="queued", retry_after_s=5)
    assert q.get(t.id).state == "queued"
    assert claim(q)[0] == []
    clock.t += 6
    jobs, _ = claim(q)
    assert [x.id for _, x in jobs] == [t.id] and jobs[0][1].attempts == 2


def test_lost_lease_fails_instead_of_running_twice(db: Path, clock: Clock) -> None:
    q = queue_on(db, clock, lease_s=30)
    t, _ = q.submit(request())
    claim(q)
    clock.t += 20
    claim(q, running=[t.id], limit=0)  # a poll renews the lease
    clock.t += 20
    q.sweep()
    assert q.get(t.id).state == "running"
    clock.t += 31
    q.sweep()
    lost = q.get(t.id)
    assert lost.state == "failed" and json.loads(lost.error_json)["code"] == "task.interrupted"
    assert claim(q)[0] == []


def test_idempotency_key(db: Path, clock: Clock) -> None:
    q = queue_on(db, clock)
    a, replayed = q.submit(request("x"), idempotency_key="k1")
    b, replayed_b = q.submit(request("x"), idempotency_key="k1")
    assert (replayed, replayed_b, a.id) == (False, True, b.id)
    with pytest.raises(ModelportError) as info:
        q.submit(request("other"), idempotency_key="k1")
    assert info.value.code == "task.idempotency_key_reused"
    c, _ = q.submit(request("x", service="svc2"), idempotency_key="k1")  # per service
    assert c.id != a.id


def test_cancel_queued_and_running(db: Path, clock: Clock) -> None:
    q = queue_on(db, clock)
    queued, _ = q.submit(request())
    assert q.cancel(queued.id).state == "cancelled"
    running, _ = q.submit(request())
    claim(q)
    assert q.cancel(running.id).state == "cancelled"
    assert claim(q, running=[running.id], limit=0)[1] == [running.id]
    assert finish(q, running.id).state == "cancelled"  # a late finish changes nothing
    with pytest.raises(ModelportError) as info:
        q.cancel(running.id)
    assert info.value.code == "task.finished"


def test_results_expire_after_ttl(db: Path, clock: Clock) -> None:
    q = queue_on(db, clock, ttl_s=60)
    t, _ = q.submit(request(), idempotency_key="k")
    claim(q)
    finish(q, t.id, output=inference_pb2.Output(json=b"1"))
    clock.t += 59
    assert q.get(t.id).state == "succeeded"
    clock.t += 2
    with pytest.raises(ModelportError) as info:
        q.get(t.id)
    assert info.value.code == "task.not_found"
    again, replayed = q.submit(request(), idempotency_key="k")  # the key is free again
    assert not replayed and again.id != t.id
    q.sweep()
    assert q.store.get_task(t.id) is None


def test_list_pages_newest_first(db: Path, clock: Clock) -> None:
    q = queue_on(db, clock)
    ids = [q.submit(request(str(i)))[0].id for i in range(7)]
    q.submit(request(service="other"))
    seen, token = [], ""
    while True:
        page, token = q.list("svc", limit=3, page_token=token)
        seen += [t.id for t in page]
        if not token:
            break
    assert seen == ids[::-1]
    claim(q, limit=2)
    assert [t.id for t in q.list("svc", state="running")[0]] == ids[1::-1]
    with pytest.raises(ModelportError):
        q.list("svc", page_token="nope")


def test_claim_long_poll_wakes_on_submit(db: Path, clock: Clock) -> None:
    q = queue_on(db, clock)

    async def scenario() -> list[str]:
        q.clock = __import__("time").time  # real time for the wait itself
        poll = asyncio.create_task(q.claim("g1", 1, [], 30))
        await asyncio.sleep(0.1)
        assert not poll.done()
        t, _ = q.submit(request())
        jobs, _ = await asyncio.wait_for(poll, 5)
        return [x.id for _, x in jobs] + [t.id]

    got = asyncio.run(scenario())
    assert got[0] == got[1]
