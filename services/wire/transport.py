"""Worker-protocol frames over an asyncio transport, cut from the byte stream in one callback.

``protocol.read_frame`` on a StreamReader costs three awaits (and their futures) per frame;
on the data plane's hot path, where every request crosses two sockets twice, this
``asyncio.Protocol`` parses whatever arrived in ``data_received`` and hands each complete
frame to a callback, with no coroutine per read. A large frame is gathered as its pieces
arrive and joined once; its parts are memoryviews into that one buffer (no further copy).
Writes go straight to the transport; ``drain`` waits only while the transport's buffer
is over its high-water mark.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

from modelport.worker.frames import (
    MAX_HEADER_BYTES,
    MAX_PART_BYTES,
    Frame,
    FrameTooLarge,
    ProtocolError,
    parse_header,
)

_LEN = struct.Struct(">I")


class FrameProtocol(asyncio.Protocol):
    """Calls ``on_frame(frame)`` per complete frame and ``on_lost(error or None)`` once."""

    def __init__(self, on_frame: Callable[[Frame], None],
                 on_lost: Callable[[Exception | None], None], *,
                 max_header: int = MAX_HEADER_BYTES, max_part: int = MAX_PART_BYTES
                 ) -> None:
        self.on_frame = on_frame
        self.on_lost = on_lost
        self.max_header = max_header
        self.max_part = max_part
        self.transport: asyncio.Transport | None = None
        #: bytes received and not yet cut into frames, joined once a frame is complete
        self._chunks: list[bytes] = []
        self._size = 0
        #: bytes needed before cutting is worth trying (a large frame arrives in pieces)
        self._need = 4
        self._writable: asyncio.Future[None] | None = None
        self._lost = False

    # ------------------------------------------------------------------ reading

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size < self._need:
            return
        buf = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        view = memoryview(buf)
        end, pos = len(buf), 0
        self._need = 4
        try:
            while end - pos >= 4:
                (n,) = _LEN.unpack_from(buf, pos)
                if n > self.max_header:
                    raise FrameTooLarge(f"frame header is {n} bytes, over the "
                                          f"{self.max_header}-byte limit")
                if end - pos < 4 + n:
                    self._need = 4 + n
                    break
                header, sizes = parse_header(bytes(view[pos + 4:pos + 4 + n]),
                                               max_part=self.max_part)
                total = 4 + n + sum(sizes)
                if end - pos < total:
                    self._need = total
                    break
                offset = pos + 4 + n
                parts: list = []
                for size in sizes:  # views into the received bytes: no copy of a payload
                    parts.append(view[offset:offset + size])
                    offset += size
                pos += total
                self.on_frame(Frame(header, parts))
        except ProtocolError as exc:
            self._chunks, self._size = [], 0
            self._lose(exc)
            if self.transport is not None:
                self.transport.close()
            return
        rest = buf[pos:] if pos else buf
        self._chunks = [rest] if rest else []
        self._size = len(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._lose(exc)

    def _lose(self, exc: Exception | None) -> None:
        if not self._lost:
            self._lost = True
            self.on_lost(exc)

    # ------------------------------------------------------------------ writing

    @property
    def closed(self) -> bool:
        return self._lost or self.transport is None or self.transport.is_closing()

    def write(self, buffers: list[bytes]) -> None:
        if not self.closed:
            assert self.transport is not None
            self.transport.writelines(buffers)

    @property
    def paused(self) -> bool:
        """Whether writes are over the transport's high-water mark (``drain`` would wait)."""
        return self._writable is not None and not self._writable.done()

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    async def drain(self) -> None:
        """Wait while the peer is slower than our writes (the buffer over its mark)."""
        if self._writable is not None and not self._writable.done():
            await self._writable

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
