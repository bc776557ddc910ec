"""``ForwardHttp``: an HTTP request to a custom image's replica, as the runtime serves it.

The same stages as a ``Predict`` (``servicer.py``): the request id bound in the logs, a
slot on a ready replica of the version through admission (its concurrency limit, the
service's queue, drains, the load the autoscaler reads), the ``queue.wait`` and
``replica.call`` spans and the request metrics, then the slot back. Only the call differs:
the request goes to the container's port (``http_link.py``) and its response comes back
as it is, in parts (the head with the first piece of the body, then the rest), so a
streamed answer (server-sent events) streams.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from modelport.errors import Kind, ModelportError
from modelport.v1 import runtime_pb2
from services.runtime.dataplane.admission import Admission
from services.runtime.dataplane.observation import Observation
from services.runtime.http_link import Head
from services.runtime.supervisor import Supervisor

#: body bytes gathered into one response part (a larger piece goes alone)
PART_BYTES = 256 * 1024


async def forward(supervisor: Supervisor, admission: Admission, metrics: Any,
                  request: runtime_pb2.HttpRequest) -> AsyncIterator[runtime_pb2.HttpResponsePart]:
    """The container's response in parts; raises ModelportError (nothing was sent when it
    is ``replica.none``/``replica.not_ready``: the gateway routes it again)."""
    obs = Observation(metrics, request.service, request.version, request.request_id)
    with obs:
        try:
            queued_at = time.monotonic()
            rid = obs.take(admission)
            if rid is None:
                rid = await obs.pick(admission, request.timeout_s)
            took = time.monotonic()
            try:
                with obs.call(rid):
                    async for part in _exchange(supervisor, rid, request,
                                                took - queued_at, obs):
                        yield part
            finally:
                admission.observe_hold(request.service, time.monotonic() - took)
                admission.release(rid, request.service)
        except ModelportError as err:
            obs.failed(err)
            raise


async def _exchange(supervisor: Supervisor, rid: str, request: runtime_pb2.HttpRequest,
                    waited_s: float, obs: Observation
                    ) -> AsyncIterator[runtime_pb2.HttpResponsePart]:
    link = supervisor.serving(rid).link
    send = getattr(link, "forward", None)
    if send is None:
        raise ModelportError(Kind.INVALID, "request.not_an_image",
                             f"service {request.service!r} version {request.version} is not a "
                             "custom image; HTTP is forwarded only to those",
                             fix="call it at /v1/services/NAME/infer")
    timeout = max(0.001, (request.timeout_s or 60.0) - waited_s)
    deadline = asyncio.get_running_loop().time() + timeout
    headers = [(h.name, h.value) for h in request.headers]
    head: runtime_pb2.HttpResponsePart | None = None
    pending: list[bytes] = []
    size = 0
    streaming = False
    parts = send(request.method, request.target, headers, request.body, deadline)
    try:
        async for piece in parts:
            if isinstance(piece, Head):
                head = runtime_pb2.HttpResponsePart(
                    status=piece.status, reason=piece.reason, replica_id=rid,
                    version=request.version,
                    headers=[runtime_pb2.HttpHeader(name=k, value=v) for k, v in piece.headers])
                _observe_status(obs, piece.status, request)
                streaming = _streaming(head)
                if streaming:  # the head at once; each piece as it comes
                    yield head
                    head = None
                continue
            pending.append(piece)
            size += len(piece)
            if streaming or size >= PART_BYTES:
                yield _part(head, pending)
                head, pending, size = None, [], 0
        out = _part(head, pending)
        out.end = True
        yield out
    finally:
        await parts.aclose()


def _streaming(head: runtime_pb2.HttpResponsePart) -> bool:
    """An answer that streams (server-sent events, no length): each piece goes at once."""
    kinds = {h.name: h.value for h in head.headers}
    return kinds.get("content-type", b"").startswith(b"text/event-stream") or (
        "content-length" not in kinds)


def _part(head: runtime_pb2.HttpResponsePart | None, pending: list[bytes]
          ) -> runtime_pb2.HttpResponsePart:
    part = head if head is not None else runtime_pb2.HttpResponsePart()
    part.body = pending[0] if len(pending) == 1 else b"".join(pending)
    return part


def _observe_status(obs: Observation, status: int, request: runtime_pb2.HttpRequest) -> None:
    """The container's status is the request's, in the metrics and the logs."""
    obs.status = status
    if status >= 500:
        obs.error = ModelportError(Kind.MODEL, "replica.http_status",
                                   f"the container answered {status} to {request.method} "
                                   f"{request.target.split('?', 1)[0]}")
