"""Tensors in the Open Inference Protocol's binary layout, inside the worker.

A tensor travels as raw bytes: row-major, little-endian; a BYTES tensor's elements are
each a 4-byte little-endian length followed by the bytes. The worker turns such bytes
into a numpy array with ``np.frombuffer`` (no per-element decoding), or, where numpy is
not installed in the model's environment, into nested lists with ``struct``. Returned
numpy arrays go back the same way (a view of the array's memory, not a copy).

Stdlib only (numpy is imported lazily), Python >= 3.8.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

#: OIP datatype -> (struct format character, numpy dtype name)
DATATYPES = {
    "BOOL": ("?", "bool"),
    "UINT8": ("B", "uint8"), "UINT16": ("H", "uint16"), "UINT32": ("I", "uint32"),
    "UINT64": ("Q", "uint64"),
    "INT8": ("b", "int8"), "INT16": ("h", "int16"), "INT32": ("i", "int32"),
    "INT64": ("q", "int64"),
    "FP16": ("e", "float16"), "FP32": ("f", "float32"), "FP64": ("d", "float64"),
    "BYTES": ("", "object"),
}
#: numpy dtype (kind, itemsize) -> OIP datatype
FROM_NUMPY = {
    ("b", 1): "BOOL",
    ("u", 1): "UINT8", ("u", 2): "UINT16", ("u", 4): "UINT32", ("u", 8): "UINT64",
    ("i", 1): "INT8", ("i", 2): "INT16", ("i", 4): "INT32", ("i", 8): "INT64",
    ("f", 2): "FP16", ("f", 4): "FP32", ("f", 8): "FP64",
}


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


class TensorError(ValueError):
    """Bytes that do not make the tensor their datatype and shape say."""


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def element_count(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def split_bytes(data: Any, count: int | None = None) -> list[bytes]:
    """The elements of a BYTES tensor's raw data (each length-prefixed)."""
    view = memoryview(data)
    out, pos = [], 0
    while pos < len(view):
        if pos + 4 > len(view):
            raise TensorError("BYTES tensor data ends inside an element's 4-byte length")
        (n,) = struct.unpack_from("<I", view, pos)
        pos += 4
        if pos + n > len(view):
            raise TensorError(f"a BYTES element says {n} bytes, but only {len(view) - pos} "
                              "are left")
        out.append(bytes(view[pos:pos + n]))
        pos += n
    if count is not None and len(out) != count:
        raise TensorError(f"BYTES tensor holds {len(out)} elements; its shape needs {count}")
    return out


def join_bytes(items: Any) -> bytes:
    """BYTES elements (bytes, or str as UTF-8) in the length-prefixed layout."""
    chunks = []
    for item in items:
        data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
        chunks.append(struct.pack("<I", len(data)))
        chunks.append(data)
    return b"".join(chunks)


def _check(t: Tensor) -> str:
    if t.datatype not in DATATYPES:
        raise TensorError(f"unknown tensor datatype {t.datatype!r}; use one of "
                          f"{', '.join(DATATYPES)}")
    if any((not isinstance(d, int)) or d < 0 for d in t.shape):
        raise TensorError(f"tensor shape {list(t.shape)} must be non-negative integers")
    fmt = DATATYPES[t.datatype][0]
    if fmt:
        want = element_count(t.shape) * struct.calcsize(fmt)
        if memoryview(t.data).nbytes != want:
            raise TensorError(f"a {t.datatype} tensor of shape {list(t.shape)} is {want} "
                              f"bytes, but {memoryview(t.data).nbytes} were sent")
    return fmt


def to_array(t: Tensor) -> Any:
    """A numpy array over the tensor's bytes (no copy; writable when the bytes are)."""
    np = _numpy()
    if np is None:
        raise TensorError("numpy is not installed in the model's environment")
    _check(t)
    shape = tuple(t.shape)
    if t.datatype == "BYTES":
        items = split_bytes(t.data, element_count(shape))
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array.reshape(shape)
    dtype = np.dtype(DATATYPES[t.datatype][1]).newbyteorder("<")
    array = np.frombuffer(t.data, dtype=dtype)
    if dtype.byteorder not in ("=", "|") and not dtype.isnative:  # big-endian host
        array = array.astype(dtype.newbyteorder("="))
    return array.reshape(shape)


def to_list(t: Tensor, text: bool = True) -> Any:
    """The tensor as nested lists (stdlib only). BYTES elements become str when they are
    UTF-8 and ``text`` is set, else bytes."""
    fmt = _check(t)
    if t.datatype == "BYTES":
        flat: list[Any] = split_bytes(t.data, element_count(t.shape))
        if text:
            flat = [_text_or_bytes(b) for b in flat]
    else:
        count = element_count(t.shape)
        flat = list(struct.unpack(f"<{count}{fmt}", memoryview(t.data).cast("B")))
    return _nest(flat, list(t.shape))


def _text_or_bytes(b: bytes) -> Any:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b


def _nest(flat: list[Any], shape: list[int]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = element_count(shape[1:])
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def scalar(t: Tensor) -> Any:
    """The single element of a one-element tensor (numbers, or the bytes of BYTES)."""
    if element_count(t.shape) != 1:
        raise TensorError(f"expected one element, got a tensor of shape {list(t.shape)}")
    if t.datatype == "BYTES":
        return split_bytes(t.data, 1)[0]
    value = to_list(t)
    while isinstance(value, list):
        value = value[0]
    return value


# ---------------------------------------------------------------------------- outputs


def from_array(name: str, array: Any) -> Tensor | None:
    """A numpy array (or numpy scalar) as a Tensor over its memory; None when its dtype has
    no OIP datatype (the caller sends it as JSON instead)."""
    np = _numpy()
    arr = np.asarray(array)
    shape = tuple(int(d) for d in arr.shape)
    if arr.dtype.kind in ("U", "S", "O"):
        items = arr.reshape(-1).tolist()
        if not all(isinstance(i, (str, bytes)) for i in items):
            return None
        return Tensor("BYTES", shape, join_bytes(items), name)
    datatype = FROM_NUMPY.get((arr.dtype.kind, arr.dtype.itemsize))
    if datatype is None:
        return None
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and not _little()):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    arr = np.ascontiguousarray(arr)
    return Tensor(datatype, shape, memoryview(arr).cast("B"), name)


def _little() -> bool:
    import sys

    return sys.byteorder == "little"


def is_numpy(value: Any) -> bool:
    np = _numpy()
    return np is not None and isinstance(value, (np.ndarray, np.generic))
