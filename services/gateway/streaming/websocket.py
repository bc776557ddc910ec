"""WebSocket streaming: ``/v1/services/{name}/ws``; each client message is one request.

Client -> server: a text message holding a JSON object keyed by input name (the REST
JSON body), or a binary message for single-input services (the raw input).
Server -> client, JSON text messages, each with the request's ``request_id``:

- ``{"type": "chunk", "index", "content_type": "json"|"bytes", "data"}`` per item
  (bytes as base64),
- then ``{"type": "done", "chunks", "version", "duration"}`` or
  ``{"type": "error", "error": {kind, code, message, fix}, "chunks"}``.

Requests on one connection run one after another, in the order sent; the connection
stays open after an error. A disconnect cancels the request in progress, down to the
model. Messages wait in a small bounded queue, so a client that floods requests is
slowed by TCP rather than buffered here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from modelport.errors import Kind, ModelportError, invalid
from modelport.v1 import inference_pb2
from services.gateway.dataplane import DataPlane, InferenceRequest, Route
from services.gateway.rest.infer import _types, _value, json_object
from services.gateway.streaming.stream import ChunkStream

log = logging.getLogger(__name__)

#: requests a client may have sent ahead of the one running
QUEUE = 8
#: largest message accepted (same default as the REST body limit)
DEFAULT_MAX_MESSAGE = 12 * 1024 * 1024


def decode_message(message: dict[str, Any], route: Route) -> list[inference_pb2.InputValue]:
    types = _types(route)
    if message.get("bytes") is not None:
        if len(types) != 1:
            raise invalid("request.single_input_only", "binary messages work only for services "
                          f"with one input; {route.service!r} has {len(types)}",
                          "send a text message with a JSON object keyed by input name")
        (name, type_), = types.items()
        return [_value(name, type_, message["bytes"], "raw")]
    doc = json_object(message.get("text") or "", types, "message", "a message must be a JSON")
    return [_value(k, types.get(k, "json"), v, "json") for k, v in doc.items()]


class WebSocketEndpoint:
    def __init__(self, dataplane: DataPlane, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.dataplane = dataplane
        self.max_message = max_message

    async def handle(self, ws: WebSocket) -> None:
        await ws.accept()
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE)
        reader = asyncio.create_task(self._read(ws, inbox))
        worker = asyncio.create_task(self._serve(ws, inbox))
        done, _ = await asyncio.wait([reader, worker], return_when=asyncio.FIRST_COMPLETED)
        for task in (reader, worker):
            task.cancel()  # the client left: stop the request in progress, down to the model
        for task in (reader, worker):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        with contextlib.suppress(RuntimeError):
            await ws.close()

    async def _read(self, ws: WebSocket, inbox: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            size = len(message.get("bytes") or b"") + len(message.get("text") or "")
            if size > self.max_message:
                await ws.close(code=1009, reason=f"message over {self.max_message} bytes")
                return
            await inbox.put(message)

    async def _serve(self, ws: WebSocket, inbox: asyncio.Queue[dict[str, Any]]) -> None:
        name = ws.path_params["name"]
        while True:
            message = await inbox.get()
            rid = uuid.uuid4().hex
            stream: ChunkStream | None = None
            try:
                route = await self.dataplane.route(name)
                req = InferenceRequest(name, rid, decode_message(message, route))
                stream = await ChunkStream.open(self.dataplane, req, route)
                async for chunk in stream:
                    await ws.send_text(b"".join((
                        b'{"type":"chunk","request_id":"', rid.encode(), b'","index":',
                        str(chunk.index).encode(), b',"content_type":"', chunk.kind.encode(),
                        b'","data":', chunk.json_value(), b"}")).decode())
                await ws.send_text(orjson.dumps({"type": "done", **stream.summary()}).decode())
            except ModelportError as err:
                await self._error(ws, rid, err, stream.count if stream else 0)
            except (WebSocketDisconnect, asyncio.CancelledError):
                raise
            except Exception:  # our bug: say so and keep the connection
                log.exception("websocket request %s failed", rid)
                await self._error(ws, rid, ModelportError(
                    Kind.INTERNAL, "internal", f"internal error; quote request id {rid}"), 0)
            finally:
                if stream is not None:
                    await stream.aclose()

    @staticmethod
    async def _error(ws: WebSocket, rid: str, err: ModelportError, chunks: int) -> None:
        body = err.to_dict() if err.kind is not Kind.INTERNAL else {
            "kind": "internal", "code": "internal",
            "message": f"internal error; quote request id {rid}"}
        await ws.send_text(orjson.dumps({"type": "error", "request_id": rid, "error": body,
                                         "chunks": chunks}).decode())
