"""uvicorn's httptools protocol, sending a response's head and body in one write.

uvicorn writes the status line and headers as soon as the app sends
``http.response.start``, then the body on ``http.response.body``: two ``send`` system
calls (and two TCP segments) for every small answer, about a tenth of the gateway's CPU
on a no-op inference. Here the head is held until the body follows in the same step
of the event loop, and written with it; a head whose body does not follow at once (a
stream, SSE) goes out on the loop's next turn, alone, as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: a body at most this large is copied behind the head (one buffer); a larger one is
#: handed to the transport alongside it (no copy)
_JOIN_BYTES = 64 * 1024


class HeadWithBody:
    """A request cycle's view of the connection's transport: the cycle's first write (its
    response head) waits for the next one, or for the end of the loop's turn."""

    __slots__ = ("_transport", "_loop", "_held", "_first")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._first = True

    def write(self, data: bytes) -> None:
        if self._first:
            self._first = False
            self._held = data
            self._loop.call_soon(self.flush)
            return
        held = self._held
        if held is None:
            self._transport.write(data)
        elif len(data) <= _JOIN_BYTES:
            self._held = None
            self._transport.write(held + data)
        else:
            self._held = None
            self._transport.writelines([held, data])

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():  # the client left: nothing to send to
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """``uvicorn.Config(http=HttpProtocol)``: httptools, each cycle's head sent with its body."""

    def on_headers_complete(self) -> None:
        # uvicorn's cycle/transport attributes are internals: should a later uvicorn
        # rename them, this degrades to uvicorn's own two writes instead of failing
        before = getattr(self, "cycle", None)
        super().on_headers_complete()
        cycle = getattr(self, "cycle", None)
        if (cycle is not before and cycle is not None  # a new request (not an upgrade)
                and getattr(cycle, "transport", None) is self.transport):
            cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]
