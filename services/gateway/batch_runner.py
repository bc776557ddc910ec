"""Runs batch job items from the registry (`modelport.v1.Batches`) through the DataPlane.

Like the async task runner (task_runner.py) in shape: long-poll for items with the free
slots, each poll renewing the leases of the items in flight and bringing back the ones
whose job was cancelled. The rule after a failure differs: an item that never reached a
model goes back to the queue with a delay, any other failure is the item's own outcome
(its `error_message` in the manifest) and the job goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import grpc

from modelport.errors import ModelportError, invalid
from modelport.v1 import batches_pb2, batches_pb2_grpc, inference_pb2
from services.gateway.dataplane import DataPlane, InferenceRequest, Route
from services.gateway.rest.infer import decode_json
from services.gateway.task_runner import requeue_after
from services.rpc import outcomes

log = logging.getLogger(__name__)


def item_inputs(item: batches_pb2.ClaimedBatchItem, route: Route
                ) -> list[inference_pb2.InputValue]:
    """The item's JSON inputs decoded as a REST JSON body would be, plus its files."""
    values = decode_json(item.inputs_json or b"{}", route)
    for name, data in item.files.items():
        values.append(inference_pb2.InputValue(name=name, data=data,
                                               filename=item.filenames.get(name, "")))
    for name in item.filenames:
        if name not in item.files:
            raise invalid("batch.file_missing", f"the file for input {name!r} is gone from "
                          "the job's stored input", "create the job again")
    return values


class BatchRunner:
    def __init__(self, batches: batches_pb2_grpc.BatchesStub, dataplane: DataPlane,
                 concurrency: int = 4, poll_s: float = 3.0) -> None:
        self.batches = batches
        self.dataplane = dataplane
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.id = f"gateway-{uuid.uuid4().hex[:12]}"
        self.running: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._freed = asyncio.Event()

    async def run(self) -> None:
        if self.concurrency <= 0:
            return
        failures = 0
        while True:
            free = self.concurrency - len(self.running)
            if free <= 0:  # all slots busy: wake when one frees, or to renew the leases
                self._freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._freed.wait(), self.poll_s)
                free = self.concurrency - len(self.running)
            try:
                resp = await self.batches.ClaimBatchItems(batches_pb2.ClaimBatchItemsRequest(
                    runner=self.id, max=max(free, 0), wait_s=self.poll_s if free > 0 else 0.0,
                    running=[batches_pb2.BatchItemRef(batch=b, index=i)
                             for b, i in self.running]), timeout=self.poll_s + 10)
                failures = 0
            except grpc.aio.AioRpcError as err:
                failures += 1
                if failures == 1 or failures % 30 == 0:
                    log.warning("cannot claim batch items from the registry: %s",
                                err.details())
                await asyncio.sleep(min(1.0 * failures, 5.0))
                continue
            for ref in resp.cancel:
                job = self.running.get((ref.batch, ref.index))
                if job is not None:
                    job.cancel()
            for item in resp.items:
                key = (item.batch, item.index)
                job = asyncio.create_task(self._run(item))
                self.running[key] = job
                job.add_done_callback(lambda _, k=key: self._done(k))

    def _done(self, key: tuple[str, int]) -> None:
        self.running.pop(key, None)
        self._freed.set()

    async def close(self) -> None:
        jobs = list(self.running.values())
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job

    async def _run(self, item: batches_pb2.ClaimedBatchItem) -> None:
        finish = batches_pb2.FinishBatchItemRequest(runner=self.id, batch=item.batch,
                                                    index=item.index)
        rid = f"batch-{item.batch}-{item.index}"
        try:
            started = False
            try:
                route = await self.dataplane.route(item.service)
                inputs = item_inputs(item, route)
                started = True  # from here on, a replica may hand it to the model
                result = await self.dataplane.infer(
                    InferenceRequest(item.service, rid, inputs), route)
            except ModelportError as err:
                delay = requeue_after(err, started, item.attempt)
                if delay is None:
                    raise
                finish.state, finish.retry_after_s = "queued", delay
            else:
                finish.state = "succeeded"
                finish.output.CopyFrom(result.output)
        except asyncio.CancelledError:
            return  # its job was cancelled: the registry already says so
        except ModelportError as err:
            finish.state = "failed"
            finish.error = f"{err.code}: {err.message}" + (f" ({err.fix})" if err.fix else "")
        except Exception:  # our bug: the item fails with a reference, the loop lives on
            log.exception("batch item %s failed inside the gateway", rid)
            finish.state = "failed"
            finish.error = f"internal error; quote {rid}"
        await self._finish(finish)

    async def _finish(self, finish: batches_pb2.FinishBatchItemRequest) -> None:
        # not recorded after every try: its lease runs out and it is run again
        await outcomes.record(lambda: self.batches.FinishBatchItem(finish, timeout=10),
                              f"batch item {finish.batch}/{finish.index}")
