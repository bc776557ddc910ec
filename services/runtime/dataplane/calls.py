"""Calls onto one replica: the one convention from the runtime's front doors (the gRPC
``Predict``/``PredictStream`` in ``servicer.py``, the data socket) to a worker.

- **Unary**: ``start`` sends the request and returns a handle at once; the answer comes
  back by calling ``on_end`` once, with a ``Reply`` (the worker's result as it came) or a
  ``ModelportError``, unless the handle's ``cancel()`` came first. A batching replica's
  requests go through its ``Batcher`` on the same terms. No future, task or timer per
  request: under load every unary request takes this path. A caller with a task to
  await in wraps it in ``awaited``.
- **Streaming**: ``stream`` is an async iterator of Results (close it to cancel).

The replica's default timeout applies when the caller gives none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from modelport.errors import ModelportError
from modelport.worker.values import Result, Value, decode_inputs
from services.runtime.supervisor import Supervisor
from services.runtime.worker.requests import Reply

#: how a unary call ends: its Reply or the ModelportError that failed it, once
OnEnd = Callable[[Reply | ModelportError], None]


class Call(Protocol):
    """A unary call in flight."""

    def cancel(self) -> None:
        """The caller went away: no ``on_end``; the worker drops or stops the request."""


def start(supervisor: Supervisor, replica_id: str, request_id: str, inputs: Any,
          parts: list[Any], timeout_s: float | None, tensor_outputs: bool,
          on_end: OnEnd) -> Call:
    """Send one unary predict to ``replica_id``. ``inputs`` is the header form
    (``encode_inputs``) and ``parts`` its binary parts, as they came from the gateway.
    Raises ModelportError when it cannot be sent (no such replica, not ready, duplicate
    id, too large)."""
    replica = supervisor.serving(replica_id)
    timeout = replica.timeout_s if timeout_s is None else timeout_s
    if replica.batcher is None:
        return replica.link.call(request_id, inputs, parts, timeout, tensor_outputs, on_end)

    def ended(outcome: Result | ModelportError) -> None:
        on_end(outcome if isinstance(outcome, ModelportError) else Reply.of(outcome))

    # a batch is built from Values: the one path that decodes a relayed request
    return replica.batcher.call(request_id, decode_inputs(inputs, parts), timeout,
                                tensor_outputs, ended)


async def awaited(begin: Callable[[OnEnd], Call]) -> Reply:
    """``begin(on_end)``'s answer, for a caller that awaits it; cancelling the awaiting
    task cancels the call."""
    future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()

    def ended(outcome: Reply | ModelportError) -> None:
        if future.done():
            return
        if isinstance(outcome, ModelportError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    call = begin(ended)
    try:
        return await future
    except asyncio.CancelledError:
        call.cancel()
        raise


async def stream(supervisor: Supervisor, replica_id: str, request_id: str,
                 inputs: dict[str, Value], timeout_s: float | None = None,
                 on_timings: Callable[[Any], None] | None = None) -> AsyncIterator[Result]:
    """Each chunk as the worker yields it (a non-streaming model gives exactly one)."""
    replica = supervisor.serving(replica_id)
    chunks = replica.link.predict_stream(
        request_id, inputs, replica.timeout_s if timeout_s is None else timeout_s,
        on_timings=on_timings)
    async with contextlib.aclosing(chunks):
        async for result in chunks:
            yield result


async def cancel(supervisor: Supervisor, replica_id: str, request_id: str) -> None:
    """Stop a request by id: still waiting for its batch, or running in the worker."""
    replica = supervisor.serving(replica_id, ready=False)
    if replica.batcher is not None and replica.batcher.cancel(request_id):
        return
    if replica.link is not None:
        await replica.link.cancel(request_id)
