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
import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..protocol import ErrorCode, Result, dumps_json


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


class RequestContext:
    """One request as the adapter sees it: its id, its deadline, a cancel flag, and the
    stream window (chunks it may send ahead of the runtime's credit; None = no limit)."""

    #: the caller (Open Inference Protocol) wants named tensors back where the model
    #: returns numpy arrays (see ``tensors.to_tensor_result``)
    tensor_outputs = False

    def __init__(self, request_id: str, timeout_s: float | None = None,
                 window: int | None = None) -> None:
        self.id = request_id
        self.timeout_s = timeout_s
        self.started = time.monotonic()
        self.cancelled = threading.Event()
        self.window = window
        self._sent = 0
        self._credit = 0
        self._flow = threading.Condition()
        #: wall clock at arrival and the measured phases: the ``done`` frame's timings
        self.t0 = time.time()
        self.phases: list[list[Any]] = []

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """``with ctx.phase("predict"):`` times a stage of the request for its trace."""
        start = time.monotonic()
        try:
            yield
        finally:
            self.add_phase(name, start, time.monotonic())

    def add_phase(self, name: str, start: float, end: float) -> None:
        self.phases.append([name, round((start - self.started) * 1000.0, 3),
                            round((end - start) * 1000.0, 3)])

    def timings(self) -> dict[str, Any]:
        return {"t0": self.t0, "phases": self.phases}

    def add_credit(self, n: int) -> None:
        with self._flow:
            self._credit += n
            self._flow.notify_all()

    def may_send(self) -> bool:
        """Wait until one more chunk fits in the window; False once the request is cancelled."""
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
        return Result("json", dumps_json(value, default=json_default))
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
