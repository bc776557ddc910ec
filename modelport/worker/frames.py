"""Framing: a 4-byte length, a JSON header, raw binary parts (the layout is in
``protocol.py``'s docstring), with the size limits every reader enforces.

Stdlib only, Python >= 3.8: this module is copied into the user's environment.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from .json_codec import encode_compact, fast_json, loads_json

#: largest header accepted (JSON inputs travel inline in it)
MAX_HEADER_BYTES = 64 * 1024 * 1024
#: largest single binary part (an image, a file, a raw JSON result)
MAX_PART_BYTES = 1024 * 1024 * 1024
#: most parts one frame may carry
MAX_PARTS = 4096

LENGTH_PREFIX = struct.Struct(">I")
#: frames sent together are joined into one buffer up to this size (one send, one copy)
COALESCE_BYTES = 256 * 1024


class ProtocolError(Exception):
    """A frame that breaks the protocol: malformed, truncated or over a size limit."""


class FrameTooLarge(ProtocolError):
    """A header or part over its limit; the message names the limit and the size."""



@dataclass
class Frame:
    """A decoded frame: its header (without "parts") and its binary parts."""

    header: dict[str, Any]
    parts: list[bytes] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.header["kind"]

    @property
    def id(self) -> str | None:
        return self.header.get("id")


def encode_frame(
    header: dict[str, Any],
    parts: list[bytes] | None = None,
    *,
    max_header: int = MAX_HEADER_BYTES,
    max_part: int = MAX_PART_BYTES,
) -> list[bytes]:
    """The frame as a list of buffers (length prefix + header, then each part, uncopied).

    Raises FrameTooLarge before anything is written when a limit would be broken.
    """
    parts = parts or []
    if len(parts) > MAX_PARTS:
        raise FrameTooLarge(f"a frame may carry at most {MAX_PARTS} binary parts, not {len(parts)}")
    sizes = []
    for i, part in enumerate(parts):
        n = len(part) if not isinstance(part, memoryview) else part.nbytes
        if n > max_part:
            raise FrameTooLarge(f"binary part {i} is {n} bytes, over the {max_part}-byte limit")
        sizes.append(n)
    if sizes:
        full = dict(header)
        full["parts"] = sizes
    elif "parts" in header:
        full = dict(header)
        del full["parts"]
    else:
        full = header
    raw = _dump_header(full)
    if len(raw) > max_header:
        raise FrameTooLarge(f"frame header is {len(raw)} bytes, over the {max_header}-byte "
                            "limit (large inputs belong in binary parts)")
    return [LENGTH_PREFIX.pack(len(raw)) + raw, *parts]


def _dump_header(header: dict[str, Any]) -> bytes:
    if fast_json is not None:
        try:
            return fast_json.dumps(header)
        except TypeError:  # what orjson refuses (huge ints, non-str keys): the stdlib says
            pass
    return encode_compact(header).encode("utf-8")


def frame_bytes(header: dict[str, Any], parts: list[bytes] | None = None) -> bytes:
    """The whole frame as one bytes object (tests, golden files)."""
    return b"".join(bytes(b) for b in encode_frame(header, parts))


def parse_header(raw: bytes, *, max_part: int = MAX_PART_BYTES) -> tuple[dict[str, Any], list[int]]:
    """Decode and check a header; returns it (without "parts") and the part sizes."""
    try:
        header = fast_json.loads(raw) if fast_json is not None else loads_json(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"frame header is not UTF-8 JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"frame header must be a JSON object, not {type(header).__name__}")
    if not isinstance(header.get("kind"), str):
        raise ProtocolError("frame header has no string 'kind'")
    sizes = header.pop("parts", None) or []
    if not isinstance(sizes, list) or len(sizes) > MAX_PARTS:
        raise ProtocolError(f"frame header 'parts' must be a list of at most {MAX_PARTS} sizes")
    for i, n in enumerate(sizes):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ProtocolError(f"frame header 'parts'[{i}] is not a size: {n!r}")
        if n > max_part:
            raise FrameTooLarge(f"binary part {i} is {n} bytes, over the {max_part}-byte limit")
    return header, sizes


def check_header_len(n: int, max_header: int) -> None:
    if n > max_header:
        raise FrameTooLarge(f"frame header is {n} bytes, over the {max_header}-byte limit")


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one frame from bytes (tests, golden files)."""
    if len(data) < 4:
        raise ProtocolError(f"truncated frame: {len(data)} bytes, no length prefix")
    (n,) = LENGTH_PREFIX.unpack_from(data)
    check_header_len(n, MAX_HEADER_BYTES)
    if len(data) < 4 + n:
        raise ProtocolError("truncated frame header")
    header, sizes = parse_header(data[4:4 + n])
    pos = 4 + n
    parts = []
    for size in sizes:
        if pos + size > len(data):
            raise ProtocolError("truncated frame part")
        parts.append(data[pos:pos + size])
        pos += size
    if pos != len(data):
        raise ProtocolError(f"{len(data) - pos} trailing bytes after the frame")
    return Frame(header, parts)

