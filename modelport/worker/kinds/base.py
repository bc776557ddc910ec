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
    """One request as the adapter sees it: its id, its deadline, and a cancel flag."""

    def __init__(self, request_id: str, timeout_s: float | None = None) -> None:
        self.id = request_id
        self.timeout_s = timeout_s
        self.started = time.monotonic()
        self.cancelled = threading.Event()

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
