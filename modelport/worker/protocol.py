"""The wire between the runtime and a worker: framed JSON headers plus raw binary parts.

A frame is::

    uint32 big-endian  header length
    header             UTF-8 JSON object: {"kind": ..., ..., "parts": [len0, len1, ...]}
    part 0 .. part N   raw bytes, lengths as listed in header["parts"]

Binary never travels as base64, and a JSON result travels as the raw bytes the worker
encoded once, so the runtime can hand them on without decoding.

Message kinds, by direction (every header has "kind"; requests carry "id"):

runtime -> worker
    setup      {config?}               load the package, then answer ready | setup_failed
    predict    {id, inputs, timeout_s?, window?, tensor_outputs?}
    predict_batch {items: [{id, inputs, timeout_s?, tensor_outputs?}, ...], timeout_s?,
               tensor_outputs?}   several requests, one call of the model (see Batches)
    credit     {id, n}                 the runtime took n more chunks of a windowed stream
    cancel     {id}
    health     {id}                    answered at once, even while a predict runs
    shutdown   {}                      finish the running request, then exit 0

worker -> runtime
    hello        {protocol, pid, python, implementation}   first frame after connect
    ready        {package_kind, streaming}
    setup_failed {error}
    log          {level, message, id?}
    output       {id, result, duration_ms, final?, timings?}  the one result of a request
    chunk        {id, result}                              one item of a streamed result
    done         {id, error?, duration_ms, timings?}       always the last frame of a request
                 (an ``output`` with ``final: true`` is also the request's ``done``: one frame,
                 one parse, for the common unary answer)
    health       {id, state, busy, queued}

Inputs: ``{name: {"text": str} | {"json": value} | {"part": i} | {"json_part": i}}``
(``part``: bytes; ``json_part``: raw UTF-8 JSON bytes the runtime did not decode); a
``part`` may also carry ``"filename"`` (a multipart upload's file name).

Flow control: a predict with ``window: W`` may have at most W chunks sent and not yet
credited; the worker (and so the model's generator) waits for ``credit`` beyond that,
so a slow client holds the model back instead of filling the runtime's memory.
Tensors (Open Inference Protocol): an input ``{"tensor": {"datatype", "shape", "part": i}}``
(part i: the raw little-endian bytes); a predict with ``tensor_outputs: true`` may be
answered with ``{"tensors": [{"name", "datatype", "shape", "part": i} | {"name",
"json_part": i}]}`` (a dict of numpy arrays; non-array values travel as JSON).
Timings (``done``, always last): ``{"t0": unix seconds the predict arrived, "phases":
[[name, offset ms, duration ms], ...]}`` with ``queue`` (waiting in the worker), then
what the kind adapter measured (``preprocess``, ``predict``, ``postprocess``; ``stream``
for a streamed result); the runtime turns them into trace spans and metrics.
Results: ``{"json": i}`` (part i holds raw UTF-8 JSON) or ``{"bytes": i}``.
Batches (adaptive batching, ``services/runtime/batching.py``): a ``predict_batch`` frame
carries several requests whose inputs index into the frame's one list of parts; an item's
``timeout_s``/``tensor_outputs`` override the frame's. The worker runs them as one call
of the model's ``predict_batch`` and answers every item on its own, exactly like a
``predict`` with that id (``output`` then ``done``, or ``done`` with an error), so one
item may fail while the others succeed; ``cancel`` names one item. Each item's timings
carry ``"batch": n``, the number of requests the model was called with. A worker that
predates this kind logs it as unknown and answers nothing: the runtime only batches
models whose config.json declares ``batching``, with the shim it installed itself.
Errors: ``{"type", "message", "traceback", "code"?}``; ``code`` is set only for
failures the shim itself detects (see ``ErrorCode``), never for user exceptions.

Stdlib only, Python >= 3.8: this module is copied into the user's environment.
"""

from __future__ import annotations

import json
import math
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

try:  # the runtime and gateway have orjson (3-5x faster headers); a model's env need not
    import orjson as _orjson
except ImportError:  # pragma: no cover - the worker's side, stdlib only
    _orjson = None


def _no_default(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _compact_encoder(default: Any) -> Any:
    """A reusable ``obj -> str`` compact JSON encoder (json.dumps builds a new one per call).

    Uses the C encoder where the interpreter has it. It skips the circular-reference check
    (a dict per call), so it keeps no state and one instance serves every thread; a
    circular value ends in RecursionError instead.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is not None:
        encode = make(None, default, json.encoder.encode_basestring, None, ":", ",",
                      False, False, False)
        return lambda obj: "".join(encode(obj, 0))
    return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                            check_circular=False, default=default).encode


#: the stdlib path of _dump_header (frame headers are built by the protocol)
_encode_header = _compact_encoder(_no_default)
#: decodes one JSON value from the start of a str: (value, end index)
_scan_json = json.JSONDecoder().scan_once


def _loads(raw: Any) -> Any:
    """UTF-8 JSON bytes to a value, without json.loads' per-call encoding detection."""
    text = str(raw, "utf-8")
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):  # whitespace around it, trailing data or invalid: json.loads says
        return json.loads(text)
    return value

PROTOCOL_VERSION = 1

#: largest header accepted (JSON inputs travel inline in it)
MAX_HEADER_BYTES = 64 * 1024 * 1024
#: largest single binary part (an image, a file, a raw JSON result)
MAX_PART_BYTES = 1024 * 1024 * 1024
#: most parts one frame may carry
MAX_PARTS = 4096

_LEN = struct.Struct(">I")
#: frames sent together are joined into one buffer up to this size (one send, one copy)
_COALESCE_BYTES = 256 * 1024

# runtime -> worker
SETUP = "setup"
PREDICT = "predict"
PREDICT_BATCH = "predict_batch"
CREDIT = "credit"
CANCEL = "cancel"
HEALTH = "health"
SHUTDOWN = "shutdown"
# worker -> runtime
HELLO = "hello"
READY = "ready"
SETUP_FAILED = "setup_failed"
LOG = "log"
OUTPUT = "output"
CHUNK = "chunk"
DONE = "done"
# HEALTH is also the reply's kind

TO_WORKER = (SETUP, PREDICT, PREDICT_BATCH, CREDIT, CANCEL, HEALTH, SHUTDOWN)
TO_RUNTIME = (HELLO, READY, SETUP_FAILED, LOG, OUTPUT, CHUNK, DONE, HEALTH)


class ErrorCode:
    """Codes the shim puts on errors it detects itself (user exceptions carry none)."""

    INVALID_INPUT = "input.invalid"
    TIMEOUT = "request.timeout"
    CANCELLED = "request.cancelled"
    SHUTTING_DOWN = "worker.shutting_down"
    OUTPUT_INVALID = "output.invalid"
    OUTPUT_TOO_LARGE = "output.too_large"
    ENTRYPOINT_FAILED = "entrypoint.failed"
    DUPLICATE_ID = "request.duplicate_id"
    NOT_READY = "worker.not_ready"
    #: predict_batch did not return one result per input (a list of the right length)
    BATCH_INVALID = "output.batch_invalid"


class ProtocolError(Exception):
    """A frame that breaks the protocol: malformed, truncated or over a size limit."""


class FrameTooLarge(ProtocolError):
    """A header or part over its limit; the message names the limit and the size."""


# ---------------------------------------------------------------------------- shared types


@dataclass(frozen=True)
class Tensor:
    """A tensor as raw bytes (OIP layout: row-major, little-endian; BYTES elements each a
    4-byte little-endian length, then the bytes). ``data`` may be any bytes-like object,
    so an array's memory is sent without a copy. ``datatype`` None marks an output value
    the model returned as JSON (``data`` is raw UTF-8 JSON, ``shape`` empty)."""

    datatype: Any  # str | None
    shape: Any  # sequence of int
    data: Any  # bytes-like
    name: str = ""


@dataclass(frozen=True)
class Value:
    """One request input.

    ``kind`` is ``text`` (payload: str), ``bytes`` (payload: bytes), ``json`` (payload:
    an already-decoded JSON value) or ``raw_json`` (payload: UTF-8 JSON bytes that no
    hop has decoded; the worker decodes them once) or ``tensor`` (payload: a Tensor).
    """

    kind: str
    payload: Any
    #: bytes from a multipart upload: the uploaded file's name (ModelArts hands it on)
    filename: str | None = None

    KINDS = ("text", "bytes", "json", "raw_json", "tensor")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"Value.kind must be one of {self.KINDS}, not {self.kind!r}")
        if self.kind == "text" and not isinstance(self.payload, str):
            raise TypeError("a text Value needs a str payload")
        if self.kind in ("bytes", "raw_json") and not isinstance(
            self.payload, (bytes, bytearray, memoryview)
        ):
            raise TypeError(f"a {self.kind} Value needs a bytes payload")
        if self.kind == "tensor" and not isinstance(self.payload, Tensor):
            raise TypeError("a tensor Value needs a Tensor payload")

    @classmethod
    def _checked(cls, kind: str, payload: Any, filename: str | None = None) -> Value:
        """A Value whose kind and payload type the caller has already checked (decoding a
        frame), built without the dataclass's frozen __init__ and checks: a request
        makes one per input."""
        value = object.__new__(cls)
        value.__dict__.update(kind=kind, payload=payload, filename=filename)
        return value

    @classmethod
    def of_tensor(cls, datatype: str, shape: Any, data: Any) -> Value:
        return cls("tensor", Tensor(datatype, tuple(shape), data))

    @classmethod
    def of_text(cls, text: str) -> Value:
        return cls("text", text)

    @classmethod
    def of_bytes(cls, data: bytes) -> Value:
        return cls("bytes", data)

    @classmethod
    def of_json(cls, value: Any) -> Value:
        return cls("json", value)

    @classmethod
    def of_raw_json(cls, data: bytes) -> Value:
        return cls("raw_json", data)

    def decoded(self) -> Any:
        """The payload as Python: str, bytes, or the JSON value (raw JSON is parsed)."""
        if self.kind == "raw_json":
            return _loads(self.payload)
        if self.kind == "bytes":
            return bytes(self.payload)
        if self.kind == "tensor":
            from .tensors import to_list

            return to_list(self.payload)
        return self.payload


@dataclass(frozen=True)
class BatchItem:
    """One request of a ``predict_batch`` frame: its id, its inputs, and its own options."""

    id: str
    inputs: Any  # dict[str, Value]
    timeout_s: Any = None  # float | None
    tensor_outputs: bool = False


@dataclass(frozen=True)
class Result:
    """One output (or one streamed chunk): raw UTF-8 JSON, raw bytes, or named tensors.

    ``data`` for ``kind == "json"`` is JSON text exactly as the worker encoded it: pass it
    on as is, or call ``decoded()``. ``duration_ms`` is the time spent inside the worker,
    set on the final output of a request when known.
    """

    kind: str  # "json" | "bytes" | "tensors"
    data: bytes
    duration_ms: float | None = field(default=None, compare=False)
    tensors: tuple = ()  # kind "tensors": the Tensors, each named
    #: the worker's phase timings from the ``done`` frame (see ``done``), when known
    timings: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("json", "bytes", "tensors"):
            raise ValueError(f"Result.kind must be 'json', 'bytes' or 'tensors', not "
                             f"{self.kind!r}")

    @classmethod
    def of_tensors(cls, tensors: Any) -> Result:
        return cls("tensors", b"", tensors=tuple(tensors))

    @classmethod
    def _checked(cls, kind: str, data: bytes) -> Result:
        """A json or bytes Result built without the frozen dataclass's __init__ and
        checks (the shim makes one per request; ``kind`` is known to be valid)."""
        result = object.__new__(cls)
        result.__dict__.update(kind=kind, data=data, duration_ms=None, tensors=(),
                               timings=None)
        return result

    def sizes(self) -> list[int]:
        """Bytes of each binary part this result sends (to check against the part limit)."""
        if self.kind == "tensors":
            return [memoryview(t.data).nbytes for t in self.tensors]
        return [len(self.data)]

    @classmethod
    def of_json(cls, value: Any) -> Result:
        return cls("json", dumps_json(value))

    @classmethod
    def of_bytes(cls, data: bytes) -> Result:
        return cls("bytes", bytes(data))

    def decoded(self) -> Any:
        if self.kind == "json":
            return json.loads(self.data.decode("utf-8"))
        return self.data


def dumps_json(value: Any, default: Any = None) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON, once.

    NaN and infinities (which JSON cannot carry) become ``null`` rather than the invalid
    tokens ``json.dumps`` would write; ``default`` converts other objects as in json.dumps.
    """
    encode = _value_encoders.get(default)
    if encode is None:
        encode = _value_encoders[default] = _compact_encoder(default or _no_default)
    try:
        text = encode(value)
    except RecursionError:  # the encoder skips the circular check: this says it instead
        raise ValueError("Circular reference detected (or a value nested too deeply)") from None
    except ValueError as exc:
        if "out of range float" not in str(exc).lower():
            raise
        text = encode(_finite(value, default))
    return text.encode("utf-8")


#: dumps_json's encoders, one per ``default`` function (the shim uses one or two)
_value_encoders: dict[Any, Any] = {}


def _finite(value: Any, default: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v, default) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, default) for v in value]
    if default is not None and not isinstance(value, (str, int, bool, type(None))):
        return _finite(default(value), default)
    return value


# ---------------------------------------------------------------------------- frames


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
    return [_LEN.pack(len(raw)) + raw, *parts]


def _dump_header(header: dict[str, Any]) -> bytes:
    if _orjson is not None:
        try:
            return _orjson.dumps(header)
        except TypeError:  # what orjson refuses (huge ints, non-str keys): the stdlib says
            pass
    return _encode_header(header).encode("utf-8")


def frame_bytes(header: dict[str, Any], parts: list[bytes] | None = None) -> bytes:
    """The whole frame as one bytes object (tests, golden files)."""
    return b"".join(bytes(b) for b in encode_frame(header, parts))


def parse_header(raw: bytes, *, max_part: int = MAX_PART_BYTES) -> tuple[dict[str, Any], list[int]]:
    """Decode and check a header; returns it (without "parts") and the part sizes."""
    try:
        header = _orjson.loads(raw) if _orjson is not None else _loads(raw)
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


def _check_header_len(n: int, max_header: int) -> None:
    if n > max_header:
        raise FrameTooLarge(f"frame header is {n} bytes, over the {max_header}-byte limit")


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one frame from bytes (tests, golden files)."""
    if len(data) < 4:
        raise ProtocolError(f"truncated frame: {len(data)} bytes, no length prefix")
    (n,) = _LEN.unpack_from(data)
    _check_header_len(n, MAX_HEADER_BYTES)
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


# ---------------------------------------------------------------------------- sync (worker)


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
        ) <= _COALESCE_BYTES:
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
            (n,) = _LEN.unpack_from(self._buf, self._pos)
            _check_header_len(n, self.max_header)
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


# ---------------------------------------------------------------------------- asyncio (runtime)


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
    (n,) = _LEN.unpack(prefix)
    _check_header_len(n, max_header)
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


# ---------------------------------------------------------------------------- payloads


def encode_inputs(inputs: dict[str, Value], parts: list[bytes]) -> dict[str, Any]:
    """Inputs as the header's "inputs" object; binary payloads are appended to ``parts``."""
    out: dict[str, Any] = {}
    for name, value in inputs.items():
        if value.kind == "text":
            out[name] = {"text": value.payload}
        elif value.kind == "json":
            out[name] = {"json": value.payload}
        elif value.kind == "bytes":
            out[name] = {"part": len(parts)}
            if value.filename is not None:
                out[name]["filename"] = value.filename
            parts.append(value.payload)
        elif value.kind == "tensor":
            t = value.payload
            out[name] = {"tensor": {"datatype": t.datatype, "shape": list(t.shape),
                                    "part": len(parts)}}
            parts.append(t.data)
        else:
            out[name] = {"json_part": len(parts)}
            parts.append(value.payload)
    return out


def decode_inputs(raw: Any, parts: list[bytes]) -> dict[str, Value]:
    """The header's "inputs" object back into Values (raw JSON stays undecoded)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ProtocolError("'inputs' must be an object")
    out = {}
    checked = Value._checked
    for name, spec in raw.items():
        if type(spec) is dict and len(spec) == 1:  # the common shapes, checked inline
            (tag, val), = spec.items()
            if tag == "json_part" or tag == "part":
                if type(val) is int and 0 <= val < len(parts):
                    out[name] = checked("raw_json" if tag == "json_part" else "bytes", parts[val])
                    continue
            elif tag == "json":
                out[name] = checked("json", val)
                continue
            elif tag == "text" and type(val) is str:
                out[name] = checked("text", val)
                continue
        filename = spec.get("filename") if isinstance(spec, dict) and "part" in spec else None
        if filename is not None:
            spec = {k: v for k, v in spec.items() if k != "filename"}
        if not isinstance(spec, dict) or len(spec) != 1 or not isinstance(filename,
                                                                          (str, type(None))):
            raise ProtocolError(f"input {name!r} must be one of {{text}}, {{json}}, {{part}}, "
                                "{json_part}")
        (tag, val), = spec.items()
        if tag == "text" and isinstance(val, str):
            out[name] = Value.of_text(val)
        elif tag == "json":
            out[name] = Value.of_json(val)
        elif tag in ("part", "json_part"):
            data = _part(parts, val, f"input {name!r}")
            out[name] = (Value("bytes", data, filename) if tag == "part"
                         else Value.of_raw_json(data))
        elif tag == "tensor":
            out[name] = Value("tensor", _tensor(val, parts, f"input {name!r}"))
        else:
            raise ProtocolError(f"input {name!r} has an unknown encoding {tag!r}")
    return out


def encode_result(result: Result, parts: list[bytes]) -> dict[str, Any]:
    if result.kind == "tensors":
        items = []
        for t in result.tensors:
            if t.datatype is None:
                items.append({"name": t.name, "json_part": len(parts)})
            else:
                items.append({"name": t.name, "datatype": t.datatype, "shape": list(t.shape),
                              "part": len(parts)})
            parts.append(t.data)
        return {"tensors": items}
    parts.append(result.data)
    return {result.kind: len(parts) - 1}


def decode_result(raw: Any, parts: list[bytes]) -> Result:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ProtocolError("'result' must be {json: part}, {bytes: part} or {tensors: [...]}")
    (tag, index), = raw.items()
    if tag == "tensors" and isinstance(index, list):
        out = []
        for item in index:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise ProtocolError("each result tensor must be an object with a 'name'")
            if "json_part" in item:
                out.append(Tensor(None, (), _part(parts, item["json_part"], "result"),
                                  item["name"]))
            else:
                t = _tensor(item, parts, f"result tensor {item['name']!r}")
                out.append(Tensor(t.datatype, t.shape, t.data, item["name"]))
        return Result.of_tensors(out)
    if tag not in ("json", "bytes"):
        raise ProtocolError(f"'result' has an unknown encoding {tag!r}")
    return Result(tag, _part(parts, index, "result"))


def _tensor(spec: Any, parts: list[bytes], what: str) -> Tensor:
    if not isinstance(spec, dict) or not isinstance(spec.get("datatype"), str) or not (
        isinstance(spec.get("shape"), list)
        and all(isinstance(d, int) and not isinstance(d, bool) for d in spec["shape"])
    ):
        raise ProtocolError(f"{what} must be {{datatype: str, shape: [int], part: i}}")
    return Tensor(spec["datatype"], tuple(spec["shape"]), _part(parts, spec.get("part"), what))


def _part(parts: list[bytes], index: Any, what: str) -> bytes:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(parts):
        raise ProtocolError(f"{what} refers to part {index!r}, but the frame has "
                            f"{len(parts)} parts")
    return parts[index]


# ---------------------------------------------------------------------------- message builders
# Each returns (header, parts), ready for SocketChannel.send / write_frame.


def hello(pid: int, python: str, implementation: str) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": HELLO, "protocol": PROTOCOL_VERSION, "pid": pid, "python": python,
            "implementation": implementation}, []


def setup(config: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[bytes]]:
    header: dict[str, Any] = {"kind": SETUP}
    if config is not None:
        header["config"] = config
    return header, []


def ready(package_kind: str, streaming: bool = False) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": READY, "package_kind": package_kind, "streaming": streaming}, []


def setup_failed(error: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": SETUP_FAILED, "error": error}, []


def predict(request_id: str, inputs: dict[str, Value], timeout_s: float | None = None,
            window: int | None = None,
            tensor_outputs: bool = False) -> tuple[dict[str, Any], list[bytes]]:
    parts: list[bytes] = []
    header: dict[str, Any] = {"kind": PREDICT, "id": request_id,
                              "inputs": encode_inputs(inputs, parts)}
    if timeout_s is not None:
        header["timeout_s"] = timeout_s
    if tensor_outputs:
        header["tensor_outputs"] = True
    if window is not None:
        header["window"] = window
    return header, parts


def predict_batch(items: Any, timeout_s: float | None = None,
                  tensor_outputs: bool = False) -> tuple[dict[str, Any], list[bytes]]:
    """Several requests in one frame (``items``: BatchItems); their binary inputs share
    the frame's parts. Frame-level ``timeout_s``/``tensor_outputs`` are defaults that an
    item's own values override (only differing values are written per item)."""
    parts: list[bytes] = []
    encoded = []
    for item in items:
        entry: dict[str, Any] = {"id": item.id, "inputs": encode_inputs(item.inputs, parts)}
        if item.timeout_s is not None and item.timeout_s != timeout_s:
            entry["timeout_s"] = item.timeout_s
        if bool(item.tensor_outputs) != bool(tensor_outputs):
            entry["tensor_outputs"] = bool(item.tensor_outputs)
        encoded.append(entry)
    header: dict[str, Any] = {"kind": PREDICT_BATCH, "items": encoded}
    if timeout_s is not None:
        header["timeout_s"] = timeout_s
    if tensor_outputs:
        header["tensor_outputs"] = True
    return header, parts


def credit(request_id: str, n: int) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": CREDIT, "id": request_id, "n": n}, []


def cancel(request_id: str) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": CANCEL, "id": request_id}, []


def health(probe_id: str) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": HEALTH, "id": probe_id}, []


def health_reply(probe_id: str, state: str, busy: str | None,
                 queued: int) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": HEALTH, "id": probe_id, "state": state, "busy": busy, "queued": queued}, []


def shutdown() -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": SHUTDOWN}, []


def log(level: str, message: str,
        request_id: str | None = None) -> tuple[dict[str, Any], list[bytes]]:
    header: dict[str, Any] = {"kind": LOG, "level": level, "message": message}
    if request_id is not None:
        header["id"] = request_id
    return header, []


def output(request_id: str, result: Result, duration_ms: float | None = None,
           final: bool = False, timings: dict[str, Any] | None = None
           ) -> tuple[dict[str, Any], list[bytes]]:
    """The result; ``final``: also the request's ``done`` (with ``timings``), so no
    ``done`` frame follows."""
    parts: list[bytes] = []
    header: dict[str, Any] = {"kind": OUTPUT, "id": request_id,
                              "result": encode_result(result, parts)}
    if duration_ms is not None:
        header["duration_ms"] = duration_ms
    if final:
        header["final"] = True
        if timings is not None:
            header["timings"] = timings
    return header, parts


def chunk(request_id: str, result: Result) -> tuple[dict[str, Any], list[bytes]]:
    parts: list[bytes] = []
    return {"kind": CHUNK, "id": request_id, "result": encode_result(result, parts)}, parts


def done(request_id: str, error: dict[str, Any] | None = None,
         duration_ms: float | None = None,
         timings: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[bytes]]:
    header: dict[str, Any] = {"kind": DONE, "id": request_id}
    if error is not None:
        header["error"] = error
    if duration_ms is not None:
        header["duration_ms"] = duration_ms
    if timings is not None:
        header["timings"] = timings
    return header, []


def error_dict(type_name: str, message: str, traceback: str = "",
               code: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"type": type_name, "message": message, "traceback": traceback}
    if code is not None:
        err["code"] = code
    return err
