"""One model stream as the streaming adapters see it: opened, iterated, closed.

``ChunkStream.open`` waits for the first chunk, so a request that fails before the
model produced anything (bad input, no replica, the model raised at once) is still an
ordinary error with its own HTTP status. After the first chunk, a failure can only be
reported inside the stream, and each adapter does so explicitly.

Back-pressure: nothing here buffers. The next chunk is pulled from the runtime only
when the adapter has written the previous one to its client, so a slow reader leaves
chunks in gRPC's flow-control window and the worker's socket, not in gateway memory.
Closing the stream (client gone) cancels the runtime call, which cancels the request
in the worker.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from modelport.v1 import inference_pb2
from services.gateway.dataplane import DataPlane, InferenceRequest, Route


@dataclass
class Chunk:
    index: int
    kind: str  # "json" | "bytes"
    data: bytes  # raw UTF-8 JSON, or the raw bytes

    @classmethod
    def of(cls, index: int, output: inference_pb2.Output) -> Chunk:
        if output.HasField("data"):
            return cls(index, "bytes", output.data)
        return cls(index, "json", output.json or b"null")

    def json_value(self) -> bytes:
        """The chunk as one JSON value: itself, or a base64 string for bytes."""
        if self.kind == "json":
            return self.data
        return b'"' + base64.b64encode(self.data) + b'"'


class ChunkStream:
    def __init__(self, request: InferenceRequest, chunks: AsyncIterator[inference_pb2.PredictChunk],
                 first: inference_pb2.PredictChunk | None, started: float) -> None:
        self.request = request
        self._chunks = chunks
        self._first = first
        self.started = started
        self.version = first.version if first is not None else 0
        self.count = 0

    @classmethod
    async def open(cls, dataplane: DataPlane, request: InferenceRequest,
                   route: Route | None = None) -> ChunkStream:
        """Start the model and wait for its first chunk; raises ModelportError before it."""
        started = time.perf_counter()
        chunks = dataplane.infer_stream(request, route)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = None
        except BaseException:
            await chunks.aclose()
            raise
        return cls(request, chunks, first, started)

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Chunk]:
        pending = self._first
        self._first = None
        while pending is not None:
            if pending.version:
                self.version = pending.version
            if pending.final:
                return
            if pending.HasField("output"):
                yield Chunk.of(self.count, pending.output)
                self.count += 1
            try:
                pending = await anext(self._chunks)
            except StopAsyncIteration:
                return

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)

    def summary(self) -> dict[str, object]:
        """What the final event carries."""
        return {"request_id": self.request.request_id, "version": self.version,
                "chunks": self.count, "duration": self.elapsed_ms()}

    async def aclose(self) -> None:
        await self._chunks.aclose()
