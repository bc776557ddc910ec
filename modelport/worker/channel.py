"""Frame I/O: the worker's blocking socket channel, and the asyncio reader/writer pair.

Stdlib only, Python >= 3.8: this module is copied into the user's environment.
"""

from __future__ import annotations

import socket
from typing import Any

from .frames import (
    COALESCE_BYTES,
    LENGTH_PREFIX,
    MAX_HEADER_BYTES,
    MAX_PART_BYTES,
    Frame,
    ProtocolError,
    check_header_len,
    encode_frame,
    parse_header,
)

#: the receive buffer: one system call takes every frame that has arrived, up to this size
_RECV_BYTES = 128 * 1024
#: a binary part at least this large is read straight into its own buffer (no second copy)
_DIRECT_PART = 32 * 1024


class SocketChannel:
    """Blocking frame I/O over a connected socket (the worker end).

    Receiving is buffered: ``fill`` takes whatever has arrived in one system call (often
    several frames) and ``next_frame`` cuts complete frames out of the buffer without
    reading. ``recv``, ``fill`` and ``next_frame`` are for one reader at a time (the
    caller serialises them); ``send`` may be called from any thread.
    """

    def __init__(self, sock: socket.socket, *, max_header: int = MAX_HEADER_BYTES,
                 max_part: int = MAX_PART_BYTES) -> None:
        import threading

        self.sock = sock
        self.max_header = max_header
        self.max_part = max_part
        self._send_lock = threading.Lock()
        self._buf = bytearray(_RECV_BYTES)
        self._view = memoryview(self._buf)
        self._pos = 0  # first byte not yet cut into a frame
        self._end = 0  # end of the bytes received
        #: the frame being cut: its header and part sizes once parsed, the parts so far
        self._header: dict[str, Any] | None = None
        self._sizes: list[int] = []
        self._parts: list[Any] = []
        #: a large part being received straight into place, and how much of it has come
        self._big: bytearray | None = None
        self._big_got = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, header: dict[str, Any], parts: list[bytes] | None = None) -> None:
        self.send_many([(header, parts or [])])

    def send_many(self, messages: list[tuple[dict[str, Any], list[bytes]]]) -> None:
        """Several frames in one write (a result and its done, a batch's answers): one
        lock, one system call for small frames instead of one per buffer."""
        buffers: list[Any] = []
        for header, parts in messages:
            buffers.extend(encode_frame(header, parts, max_header=self.max_header,
                                        max_part=self.max_part))
        if len(buffers) == 1 or sum(
                len(b) if type(b) is bytes else memoryview(b).nbytes for b in buffers
        ) <= COALESCE_BYTES:
            data = buffers[0] if len(buffers) == 1 else b"".join(buffers)
            with self._send_lock:
                self.sock.sendall(data)
        else:
            with self._send_lock:
                for buf in buffers:
                    self.sock.sendall(buf)

    def recv(self) -> Frame | None:
        """The next frame, or None when the peer closed the connection between frames."""
        while True:
            frame = self.next_frame()
            if frame is not None:
                return frame
            if not self.fill():
                if self.partial():
                    raise ProtocolError("connection closed in the middle of a frame")
                return None

    def partial(self) -> bool:
        """Whether part of a frame has been received but not all of it."""
        return self._header is not None or self._end > self._pos

    def fill(self) -> bool:
        """Receive what has arrived (blocking until something has); False at end of stream."""
        if self._big is not None:  # the rest of a large part goes straight into it
            n = self.sock.recv_into(memoryview(self._big)[self._big_got:])
            self._big_got += n
            return n > 0
        if self._pos == self._end:
            self._pos = self._end = 0
            if len(self._buf) > _RECV_BYTES:  # a huge header grew it: give the memory back
                self._buf = bytearray(_RECV_BYTES)
                self._view = memoryview(self._buf)
        elif len(self._buf) - self._end < _RECV_BYTES // 4:  # little room left at the end
            self._move(len(self._buf) * (1 if self._pos else 2))
        n = self.sock.recv_into(self._view[self._end:])
        self._end += n
        return n > 0

    def next_frame(self) -> Frame | None:
        """The next complete frame already received, or None (then ``fill``)."""
        if self._header is None:
            avail = self._end - self._pos
            if avail < 4:
                self._room(4)
                return None
            (n,) = LENGTH_PREFIX.unpack_from(self._buf, self._pos)
            check_header_len(n, self.max_header)
            if avail < 4 + n:
                self._room(4 + n)
                return None
            start = self._pos + 4
            self._header, self._sizes = parse_header(self._view[start:start + n],
                                                     max_part=self.max_part)
            self._pos = start + n
        parts = self._parts
        while len(parts) < len(self._sizes):
            if self._big is not None:
                if self._big_got < len(self._big):
                    return None
                parts.append(self._big)
                self._big = None
                continue
            size = self._sizes[len(parts)]
            avail = self._end - self._pos
            if avail >= size:  # a writable copy: a tensor input becomes an array over it
                parts.append(self._buf[self._pos:self._pos + size])
                self._pos += size
            elif size >= _DIRECT_PART:
                self._big = bytearray(size)
                self._big[:avail] = self._view[self._pos:self._end]
                self._big_got = avail
                self._pos = self._end
                return None
            else:
                self._room(size)
                return None
        frame = Frame(self._header, parts)
        self._header, self._parts = None, []
        return frame

    def _room(self, need: int) -> None:
        """Make the buffer hold ``need`` bytes from the first unread one: move what is
        buffered to the front, or into a bigger buffer."""
        if len(self._buf) - self._pos < need:
            self._move(len(self._buf) if len(self._buf) >= need else max(need, 2 * len(self._buf)))

    def _move(self, size: int) -> None:
        """Move the buffered bytes to the front of a ``size``-byte buffer (this one if the
        size is the same)."""
        kept = bytes(self._view[self._pos:self._end])
        if size != len(self._buf):
            self._buf = bytearray(size)
            self._view = memoryview(self._buf)
        self._buf[:len(kept)] = kept
        self._pos, self._end = 0, len(kept)

    def close(self) -> None:
        try:  # shutdown() first: it wakes a thread blocked in a receive on this socket
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()



async def read_frame(reader: Any, *, max_header: int = MAX_HEADER_BYTES,
                     max_part: int = MAX_PART_BYTES) -> Frame | None:
    """Read one frame from an asyncio.StreamReader; None on a clean EOF between frames."""
    import asyncio

    try:
        prefix = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProtocolError("connection closed in the middle of a frame") from None
    (n,) = LENGTH_PREFIX.unpack(prefix)
    check_header_len(n, max_header)
    try:
        header, sizes = parse_header(await reader.readexactly(n), max_part=max_part)
        parts = [await reader.readexactly(size) for size in sizes]
    except asyncio.IncompleteReadError:
        raise ProtocolError("connection closed in the middle of a frame") from None
    return Frame(header, parts)


async def write_frame(writer: Any, header: dict[str, Any], parts: list[bytes] | None = None,
                      *, max_header: int = MAX_HEADER_BYTES,
                      max_part: int = MAX_PART_BYTES) -> None:
    """Write one frame to an asyncio.StreamWriter and wait for the buffer to drain.

    Callers sharing a writer between tasks should hold one lock around this call.
    """
    writer.writelines(encode_frame(header, parts, max_header=max_header, max_part=max_part))
    await writer.drain()

