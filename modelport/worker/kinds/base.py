"""What every kind adapter shares: the request context, shim-detected errors, I/O helpers.

An adapter is a class built as ``Adapter(root, config)`` (``root`` is the directory that
holds config.json) with:

- ``kind``: its name in the kinds table;
- ``streaming``: whether predict yields several results (known after setup);
- ``setup()``: load once; exceptions become ``setup_failed``;
- ``predict(inputs, ctx)``: a ``Result``, or an iterator of ``Result`` to stream;
- ``close()``: release what setup took.

Stdlib only, Python >= 3.8.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import threading
import time
from typing import Any

from ..json_codec import dumps_json
from ..protocol import ErrorCode
from ..values import Result


class ShimError(Exception):
    """A failure the shim detected itself (bad input, timeout, bad output), not user code.

    ``code`` is a protocol ``ErrorCode``, so the runtime can tell it from a user exception.
    """

    def __init__(self, code: str, type_name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.type_name = type_name
        self.message = message


class ConfigError(Exception):
    """config.json cannot be used by this kind; raised from setup."""


def invalid_input(message: str) -> ShimError:
    return ShimError(ErrorCode.INVALID_INPUT, "InvalidInput", message)


_FLAG_LOCK = threading.Lock()


def ms3(seconds: float) -> float:
    """Seconds (>= 0) as milliseconds to 3 decimals; round() is several times slower,
    and every request times five phases."""
    return int(seconds * 1000000.0 + 0.5) / 1000.0


class Flag:
    """A flag that is set once (a request's cancellation): ``set``/``is_set``/``wait`` as on
    threading.Event, which costs a Condition and a lock per request; a Flag builds its
    Event only if something waits on it."""

    __slots__ = ("_set", "_event")

    def __init__(self) -> None:
        self._set = False
        self._event: threading.Event | None = None

    def set(self) -> None:
        self._set = True
        event = self._event
        if event is not None:
            event.set()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        if self._event is None:
            with _FLAG_LOCK:
                if self._event is None:
                    self._event = threading.Event()
        if self._set:  # set before the Event existed
            self._event.set()
        return self._event.wait(timeout)


class _Phase:
    """``with ctx.phase(name):`` (a class, not a generator: it runs for every request)."""

    __slots__ = ("ctx", "name", "start")

    def __init__(self, ctx: RequestContext, name: str) -> None:
        self.ctx = ctx
        self.name = name

    def __enter__(self) -> None:
        self.start = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        self.ctx.add_phase(self.name, self.start, time.monotonic())


class RequestContext:
    """One request as the adapter sees it: its id, its deadline, a cancel flag, and the
    stream window (chunks it may send ahead of the runtime's credit; None = no limit)."""

    #: the caller (Open Inference Protocol) wants named tensors back where the model
    #: returns numpy arrays (see ``values.to_tensor_result``)
    tensor_outputs = False

    def __init__(self, request_id: str, timeout_s: float | None = None,
                 window: int | None = None) -> None:
        self.id = request_id
        self.timeout_s = timeout_s
        self.started = time.monotonic()
        self.cancelled = Flag()
        self.window = window
        self._sent = 0
        self._credit = 0
        #: only a windowed stream waits for credit
        self._flow = threading.Condition() if window is not None else None
        #: wall clock at arrival and the measured phases: the ``done`` frame's timings
        self.t0 = time.time()
        self.phases: list[list[Any]] = []

    def phase(self, name: str) -> _Phase:
        """``with ctx.phase("predict"):`` times a stage of the request for its trace."""
        return _Phase(self, name)

    def add_phase(self, name: str, start: float, end: float) -> None:
        self.phases.append([name, ms3(start - self.started), ms3(end - start)])

    def timings(self) -> dict[str, Any]:
        return {"t0": self.t0, "phases": self.phases}

    def add_credit(self, n: int) -> None:
        if self._flow is None:
            self._credit += n
            return
        with self._flow:
            self._credit += n
            self._flow.notify_all()

    def may_send(self) -> bool:
        """Wait until one more chunk fits in the window; False once the request is cancelled."""
        if self._flow is None:
            self._sent += 1
            return not self.cancelled.is_set()
        with self._flow:
            while (self.window is not None and self._sent - self._credit >= self.window
                   and not self.cancelled.is_set()):
                self._flow.wait(0.25)
            self._sent += 1
        return not self.cancelled.is_set()

    def remaining(self, default: float) -> float:
        """Seconds left: the request's own timeout if it set one and it is shorter."""
        if self.timeout_s is None:
            return default
        return min(default, max(0.0, self.timeout_s - (time.monotonic() - self.started)))


def json_default(obj: Any) -> Any:
    """json.dumps ``default``: numpy arrays and scalars, tensors, dataclasses, sets.

    Duck-typed, so numpy is never imported here.
    """
    if hasattr(obj, "tolist"):  # numpy ndarray / scalar, torch tensor
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "model_dump"):  # pydantic v2
        return obj.model_dump()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, (bytes, bytearray)):
        raise TypeError("bytes inside a JSON result (return bytes alone, or base64 them)")
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def to_result(value: Any) -> Result:
    """What predict returned, as a Result: bytes stay bytes, anything else is JSON."""
    if isinstance(value, Result):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Result.of_bytes(bytes(value))
    try:
        return Result._checked("json", dumps_json(value, default=json_default))
    except (TypeError, ValueError) as exc:
        raise ShimError(
            ErrorCode.OUTPUT_INVALID, "OutputNotSerializable",
            f"predict returned {type(value).__name__}, which cannot be sent as JSON: {exc}",
        ) from None


def decode_base64(text: str, what: str) -> bytes:
    """Base64 (or a ``data:...;base64,`` URL) to bytes, for binary inputs sent as text."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_input(
            f"{what} is binary: send raw bytes (multipart/form-data or "
            "application/octet-stream) or base64 text"
        ) from None
