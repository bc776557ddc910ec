"""Server-Sent Events on the infer URL (``Accept: text/event-stream``).

One ``chunk`` event per item the model yields (``bytes`` events carry base64 for
binary items), then exactly one of:

- ``done``: ``{"request_id", "version", "chunks", "duration"}``, the stream is complete;
- ``error``: ``{"error": {kind, code, message, fix}, "metadata": {"request_id", "chunks"}}``,
  the model or the platform failed after the first chunk.

A failure before the first chunk is an ordinary JSON error response with its HTTP
status, so a 200 always means the model started. A client that disconnects cancels
the model's work (Starlette cancels the body iterator; ``ChunkStream`` closes the
runtime call).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from modelport.errors import Kind, ModelportError
from services.gateway.dataplane import DataPlane, InferenceRequest, Route
from services.gateway.rest.errors import error_response
from services.gateway.streaming.stream import ChunkStream

log = logging.getLogger(__name__)

MEDIA_TYPE = "text/event-stream"


def wants_sse(request: Request) -> bool:
    return MEDIA_TYPE in request.headers.get("accept", "")


def event(name: str, data: bytes, event_id: str = "") -> bytes:
    """One SSE event; multi-line data becomes several ``data:`` lines, as the format asks."""
    out = b"event: " + name.encode() + b"\n"
    if event_id:
        out += b"id: " + event_id.encode() + b"\n"
    for line in data.splitlines() or [b""]:
        out += b"data: " + line + b"\n"
    return out + b"\n"


def error_payload(err: ModelportError, request_id: str, chunks: int) -> bytes:
    body = err.to_dict()
    if err.kind is Kind.INTERNAL:
        body = {"kind": "internal", "code": "internal",
                "message": f"internal error; quote request id {request_id}"}
    return orjson.dumps({"error": body, "metadata": {"request_id": request_id,
                                                     "chunks": chunks}})


async def respond(dataplane: DataPlane, req: InferenceRequest, route: Route) -> Response:
    try:
        stream = await ChunkStream.open(dataplane, req, route)
    except ModelportError as err:
        return error_response(err, req.request_id)
    headers = {"X-Request-ID": req.request_id, "X-Model-Version": str(stream.version),
               "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(stream), headers=headers, media_type=MEDIA_TYPE)


async def _events(stream: ChunkStream) -> AsyncIterator[bytes]:
    rid = stream.request.request_id
    try:
        async for chunk in stream:
            if chunk.kind == "bytes":
                yield event("bytes", chunk.json_value()[1:-1], str(chunk.index))
            else:
                yield event("chunk", chunk.data, str(chunk.index))
        yield event("done", orjson.dumps(stream.summary()))
    except ModelportError as err:
        yield event("error", error_payload(err, rid, stream.count))
    except Exception:  # our bug: still end the stream with an explicit error
        log.exception("stream %s failed", rid)
        yield event("error", error_payload(
            ModelportError(Kind.INTERNAL, "internal", "internal error"), rid, stream.count))
    finally:
        await stream.aclose()
