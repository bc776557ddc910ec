"""Batch jobs (`modelport.v1.Batches`): the registry keeps them, gateways run their items.

The split is the async tasks' (services/registry/tasks.py): every item takes the one
inference path (services/gateway/batch_runner.py), and the registry persists and hands
out work. What differs is durability's rule: the input archive is stored at creation
(the job never depends on the client), each item's outcome is a row written as it
finishes, and an item whose runner died is run again (store/batches.py), so a platform
killed mid-job finishes it after `up` with every item exactly once in the manifest.
Online traffic keeps priority because a job runs at most `concurrency` items at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import grpc

from modelport.errors import ModelportError, conflict, invalid, not_found, too_large
from modelport.package import plain_json
from modelport.v1 import batches_pb2, batches_pb2_grpc
from services.registry import batch_results
from services.registry.store.batches import (
    JOB_TERMINAL,
    BatchRecord,
    ItemRecord,
    SqliteBatchStore,
)
from services.rpc.errors import abort, translate_errors

log = logging.getLogger(__name__)

ITEMS_FILE = "items.jsonl"
INPUT_KINDS = ("folder", "manifest", "csv", "jsonl")
MAX_CONCURRENCY = 64
RESULT_CHUNK = 1 << 20


class BatchQueue:
    def __init__(self, store: SqliteBatchStore, directory: Path, *,
                 service_exists: Callable[[str], bool], lease_s: float = 10.0,
                 max_bytes: int = 2 * 1024**3, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.directory = directory
        self.service_exists = service_exists
        self.lease_s = lease_s
        self.max_bytes = max_bytes
        self.clock = clock
        self._changed = asyncio.Event()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def log(self, batch_id: str, line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.clock()))
        with open(self.directory / f"{batch_id}.log", "a", encoding="utf-8") as f:
            f.write(f"{stamp} {line}\n")

    # ------------------------------------------------------------------ clients

    def create(self, header: batches_pb2.BatchHeader, archive: Path) -> BatchRecord:
        """A queued job over the archive at ``archive`` (moved under the batches dir)."""
        if not self.service_exists(header.service):
            raise not_found("service.not_found", f"service {header.service!r} not found",
                            "create it first, or list services with `modelport list`")
        if header.input_kind not in INPUT_KINDS:
            raise invalid("batch.input_kind", f"unknown input kind {header.input_kind!r}",
                          "use one of: " + ", ".join(INPUT_KINDS), path="input_kind")
        concurrency = header.concurrency or 1
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise invalid("batch.concurrency", f"concurrency {concurrency} is out of range",
                          f"use 1..{MAX_CONCURRENCY}", path="concurrency")
        items = read_items(archive)
        batch_id = uuid.uuid4().hex[:12]
        kept = self.directory / f"{batch_id}.zip"
        os.replace(archive, kept)
        job = BatchRecord(id=batch_id, service=header.service, state="queued",
                          total=len(items), concurrency=concurrency,
                          input_kind=header.input_kind, archive=str(kept),
                          created_at=self.clock(), owner=header.owner)
        for item in items:
            item.batch = batch_id
        self.store.add(job, items)
        self.log(batch_id, f"created: {len(items)} items ({header.input_kind}) for service "
                           f"{header.service}, concurrency {concurrency}")
        self._poke()
        return job

    def get(self, batch_id: str) -> BatchRecord:
        job = self.store.get(batch_id)
        if job is None:
            raise not_found("batch.not_found", f"no batch job {batch_id!r}",
                            "list jobs with `modelport batch list`")
        return job

    def cancel(self, batch_id: str) -> BatchRecord:
        job = self.get(batch_id)
        if job.state in JOB_TERMINAL:
            raise conflict("batch.finished", f"batch job {batch_id} already {job.state}",
                           "nothing to cancel")
        now = self.clock()
        self.store.set_job(batch_id, ("queued", "running"), state="cancelled", finished_at=now)
        n = self.store.cancel_items(batch_id, now)
        self.log(batch_id, f"cancelled: {n} items not run")
        return self.get(batch_id)

    def log_text(self, batch_id: str) -> str:
        self.get(batch_id)
        try:
            return (self.directory / f"{batch_id}.log").read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def results_zip(self, batch_id: str) -> bytes:
        job = self.get(batch_id)
        if job.state not in JOB_TERMINAL:
            done = self.store.counts(batch_id)
            raise conflict("batch.not_finished",
                           f"batch job {batch_id} is {job.state} ({done.done}/{done.total})",
                           f"wait for it: `modelport batch get {batch_id} --wait`")
        out = BytesIO()
        batch_results.write_zip(batch_id, self.store.items(batch_id), out)
        return out.getvalue()

    # ------------------------------------------------------------------ runners

    async def claim(self, runner: str, limit: int, running: list[tuple[str, int]],
                    wait_s: float) -> tuple[list[tuple[ItemRecord, BatchRecord]],
                                            list[tuple[str, int]]]:
        now = self.clock()
        self.store.renew(runner, running, now + self.lease_s)
        cancels = self.store.not_running(running)
        deadline = now + max(0.0, min(wait_s, self.lease_s / 3))
        while True:
            items = self.store.claim(runner, limit, self.clock(), self.lease_s) if limit else []
            if items or cancels or self.clock() >= deadline:
                break
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(1.0, deadline - self.clock()))
        jobs = {}
        for item in items:
            jobs.setdefault(item.batch, self.store.get(item.batch))
        return [(i, jobs[i.batch]) for i in items if jobs[i.batch] is not None], cancels

    def finish(self, request: batches_pb2.FinishBatchItemRequest) -> None:
        now = self.clock()
        b, idx = request.batch, request.index
        if request.state == "queued":
            self.store.finish(b, idx, request.runner, state="queued",
                              not_before=now + max(0.0, request.retry_after_s))
            self._poke()
            return
        if request.state not in ("succeeded", "failed"):
            raise invalid("batch.item_state", f"an item cannot finish as {request.state!r}",
                          "succeeded, failed or queued")
        kind = request.output.WhichOneof("body") or ""
        output = getattr(request.output, kind) if kind in ("json", "data") else None
        if not self.store.finish(b, idx, request.runner, state=request.state,
                                 finished_at=now, output_kind=kind if output else "",
                                 output=output, error=request.error):
            return  # cancelled meanwhile, or requeued after its lease ran out
        if request.state == "failed":
            self.log(b, f"item {idx} failed: {request.error}")
        self._complete_if_done(b)
        self._poke()  # a slot of its job is free: a waiting claim takes the next item

    def _complete_if_done(self, batch_id: str) -> None:
        if self.store.has_open_items(batch_id):
            return
        if self.store.set_job(batch_id, ("queued", "running"), state="succeeded",
                              finished_at=self.clock()):
            counts = self.store.counts(batch_id)
            self.log(batch_id, f"succeeded: {counts.total} items, {counts.failed} failed, "
                               f"{counts.retried} run again after an interruption")

    def sweep(self) -> None:
        """Items whose runner died go back to the queue (or fail after MAX_ATTEMPTS)."""
        lost = self.store.requeue_lost(self.clock())
        for item in lost:
            self.log(item.batch, f"item {item.idx} ({item.source}): its runner stopped "
                                 f"during attempt {item.attempts}; running it again")
        for batch_id in {i.batch for i in lost}:
            self._complete_if_done(batch_id)
        if lost:
            self._poke()

    async def sweep_forever(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - the next sweep tries again
                log.exception("batch sweep failed")

    # ------------------------------------------------------------------ views

    def view(self, job: BatchRecord) -> batches_pb2.BatchJob:
        counts = self.store.counts(job.id)
        end = job.finished_at or self.clock()
        rate = counts.done / (end - job.started_at) if job.started_at and end > job.started_at \
            else 0.0
        return batches_pb2.BatchJob(
            id=job.id, service=job.service, state=job.state, total=counts.total,
            done=counts.done, failed=counts.failed, running=counts.running,
            concurrency=job.concurrency, input_kind=job.input_kind, created_at=job.created_at,
            started_at=job.started_at, finished_at=job.finished_at, error=job.error,
            owner=job.owner, retried=counts.retried, items_per_s=round(rate, 3))


def read_items(archive: Path) -> list[ItemRecord]:
    """The items an input archive (modelport/batch_input.py's format) declares, checked."""
    try:
        z = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise invalid("batch.archive", f"the batch input is not a zip archive: {exc}",
                      "upload the archive `modelport batch create` makes") from exc
    with z:
        members = set(z.namelist())
        if ITEMS_FILE not in members:
            raise invalid("batch.archive", f"the batch input has no {ITEMS_FILE}",
                          "upload the archive `modelport batch create` makes")
        try:
            raw = z.read(ITEMS_FILE)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise invalid("batch.archive", f"{ITEMS_FILE} in the batch input is damaged: {exc}",
                          "create the archive again (`modelport batch create` makes it)") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            n = raw.count(b"\n", 0, exc.start) + 1
            raise invalid("batch.item", f"{ITEMS_FILE} line {n} is not UTF-8 text (byte "
                          f"{exc.start})", f"save {ITEMS_FILE} as UTF-8",
                          path=f"{ITEMS_FILE} line {n}") from None
        items = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            items.append(_item(n, line, members, len(items)))
    if not items:
        raise invalid("batch.empty", "the batch input has no items",
                      "point --input at a folder, manifest, CSV or JSONL with at least one")
    return items


def _item(n: int, line: str, members: set[str], idx: int) -> ItemRecord:
    where = f"{ITEMS_FILE} line {n}"
    try:  # plain JSON: no lone surrogates, NaN, huge numbers or deep nesting (a 500 before)
        entry = plain_json.loads(line, where)
    except plain_json.NotPlain as exc:
        raise invalid("batch.item", f"{where}: {exc.problem.message}",
                      f"{exc.problem.fix}; one JSON object per line", path=where) from None
    except ValueError as exc:
        raise invalid("batch.item", f"{where} is not JSON: {exc}", "one JSON object per line",
                      path=where) from None
    if not (isinstance(entry, dict) and isinstance(entry.get("source"), str)
            and isinstance(entry.get("inputs", {}), dict)
            and isinstance(entry.get("files", {}), dict)):
        raise invalid("batch.item", f"{where} needs a 'source' string and 'inputs'/'files' "
                      "objects", '{"source": "a.jpg", "inputs": {}, "files": {}}', path=where)
    for name, ref in entry.get("files", {}).items():
        if not (isinstance(ref, dict) and ref.get("member") in members):
            raise invalid("batch.item", f"{where}: file input {name!r} names no member of "
                          "the archive", "each file is stored in the archive", path=where)
    return ItemRecord(batch="", idx=idx, source=entry["source"],
                      inputs_json=json.dumps(entry.get("inputs", {})),
                      files_json=json.dumps(entry.get("files", {})))


def claimed(item: ItemRecord, job: BatchRecord, archive: zipfile.ZipFile | None
            ) -> batches_pb2.ClaimedBatchItem:
    out = batches_pb2.ClaimedBatchItem(batch=item.batch, index=item.idx, service=job.service,
                                       source=item.source,
                                       inputs_json=item.inputs_json.encode(),
                                       attempt=item.attempts)
    for name, ref in json.loads(item.files_json).items():
        if archive is not None:
            out.files[name] = archive.read(ref["member"])
        out.filenames[name] = ref.get("filename", "")
    return out


class BatchesServicer(batches_pb2_grpc.BatchesServicer):
    def __init__(self, queue: BatchQueue) -> None:
        self.queue = queue

    @translate_errors
    async def CreateBatch(self, request_iterator: AsyncIterator[batches_pb2.CreateBatchChunk],
                          context: grpc.aio.ServicerContext) -> batches_pb2.BatchJob:
        header: batches_pb2.BatchHeader | None = None
        self.queue.directory.mkdir(parents=True, exist_ok=True)
        part = self.queue.directory / f"upload-{uuid.uuid4().hex}.part"
        size = 0
        try:
            with open(part, "wb") as f:
                async for chunk in request_iterator:
                    if chunk.HasField("header"):
                        header = chunk.header
                        continue
                    size += len(chunk.data)
                    if size > self.queue.max_bytes:
                        raise too_large("batch.too_large", f"the batch input is over "
                                        f"{self.queue.max_bytes} bytes",
                                        "split it into several jobs")
                    f.write(chunk.data)
            if header is None:
                raise invalid("batch.header", "the upload has no header",
                              "send the BatchHeader first")
            return self.queue.view(self.queue.create(header, part))
        finally:
            part.unlink(missing_ok=True)

    @translate_errors
    async def GetBatch(self, request: batches_pb2.GetBatchRequest,
                       context: grpc.aio.ServicerContext) -> batches_pb2.BatchJob:
        return self.queue.view(self.queue.get(request.id))

    @translate_errors
    async def ListBatches(self, request: batches_pb2.ListBatchesRequest,
                          context: grpc.aio.ServicerContext) -> batches_pb2.ListBatchesResponse:
        jobs = self.queue.store.list(request.service, request.owner, request.limit or 50)
        return batches_pb2.ListBatchesResponse(batches=[self.queue.view(j) for j in jobs])

    @translate_errors
    async def CancelBatch(self, request: batches_pb2.CancelBatchRequest,
                          context: grpc.aio.ServicerContext) -> batches_pb2.BatchJob:
        return self.queue.view(self.queue.cancel(request.id))

    @translate_errors
    async def GetBatchLog(self, request: batches_pb2.BatchLogRequest,
                          context: grpc.aio.ServicerContext) -> batches_pb2.BatchLog:
        return batches_pb2.BatchLog(text=self.queue.log_text(request.id))

    async def GetBatchResults(self, request: batches_pb2.BatchResultsRequest,
                              context: grpc.aio.ServicerContext
                              ) -> AsyncIterator[batches_pb2.BatchResultsChunk]:
        try:
            data = self.queue.results_zip(request.id)
        except ModelportError as err:
            await abort(context, err)
            return
        for start in range(0, len(data), RESULT_CHUNK):
            yield batches_pb2.BatchResultsChunk(data=data[start:start + RESULT_CHUNK])

    @translate_errors
    async def ClaimBatchItems(self, request: batches_pb2.ClaimBatchItemsRequest,
                              context: grpc.aio.ServicerContext
                              ) -> batches_pb2.ClaimBatchItemsResponse:
        running = [(r.batch, r.index) for r in request.running]
        items, cancels = await self.queue.claim(request.runner, request.max, running,
                                                request.wait_s)
        out = batches_pb2.ClaimBatchItemsResponse(
            cancel=[batches_pb2.BatchItemRef(batch=b, index=i) for b, i in cancels])
        archives: dict[str, Any] = {}
        try:
            for item, job in items:
                if job.id not in archives:
                    try:
                        archives[job.id] = zipfile.ZipFile(job.archive)
                    except OSError:
                        archives[job.id] = None
                out.items.append(claimed(item, job, archives[job.id]))
        finally:
            for z in archives.values():
                if z is not None:
                    z.close()
        return out

    @translate_errors
    async def FinishBatchItem(self, request: batches_pb2.FinishBatchItemRequest,
                              context: grpc.aio.ServicerContext
                              ) -> batches_pb2.FinishBatchItemResponse:
        self.queue.finish(request)
        return batches_pb2.FinishBatchItemResponse()
