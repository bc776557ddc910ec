"""Open Inference Protocol tensors: decoded from REST JSON / binary parts and gRPC, turned
into the data plane's InputValues, and model outputs turned back into named tensors.

One ``Tensor`` type for both protocol adapters (``rest/oip_routes.py``,
``grpc/oip_service.py``). The datatype table and the BYTES layout are the worker's
(``modelport/worker/tensors.py``), so both ends of the wire read bytes one way. Binary
data stays binary: a tensor that arrived as raw bytes (the REST binary-data extension or
gRPC ``raw_input_contents``) reaches the worker as the same bytes in ``InputValue.tensor``,
where it becomes a numpy array with ``np.frombuffer``; numpy outputs come back the same
way. Only JSON ``data`` is parsed, once, with numpy.

How inputs map onto a service's declared inputs, by name and declared type:

- ``tensor``: the tensor itself (raw bytes, datatype, shape);
- ``json``: the tensor as nested lists (BYTES elements as strings);
- ``number``: the single element of a one-element numeric tensor;
- ``text`` / ``image`` / ``file``: the single element of a one-element BYTES tensor.

How outputs map back (``output_tensors``): a dict's keys are output names (the ones named
in config.json ``output`` when it declares any), a list of dicts (a batch) gives one
tensor per key with one row per item, anything else is one output. Values become the
natural datatype: numbers -> INT64/FP64/BOOL, strings -> BYTES, other JSON -> BYTES
holding the JSON text.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from modelport.errors import Kind, ModelportError, invalid
from modelport.v1 import inference_pb2
from modelport.worker import tensors as codec

#: OIP datatype -> numpy dtype (little-endian, as the binary layout is), from the one
#: datatype table in the worker's codec
DATATYPES: dict[str, np.dtype] = {name: np.dtype(numpy_name).newbyteorder("<")
                                  for name, (_, numpy_name) in codec.DATATYPES.items()}
#: what metadata advertises for a declared input/output of each modelport type
_TYPE_TENSOR = {"text": ("BYTES", [1]), "image": ("BYTES", [1]), "file": ("BYTES", [1]),
                "number": ("FP64", [1]), "json": ("BYTES", [-1])}
_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


@dataclass
class Tensor:
    """A named tensor, held as raw bytes (OIP binary layout) or as a numpy array, whichever
    it arrived as; the other form is made only when asked for."""

    name: str
    datatype: str
    shape: list[int]
    raw: bytes | memoryview | None = None
    array: np.ndarray | None = None

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    def to_raw(self) -> bytes | memoryview:
        if self.raw is None:
            assert self.array is not None
            self.raw = _array_raw(self.array, self.datatype)
        return self.raw

    def to_array(self) -> np.ndarray:
        if self.array is None:
            assert self.raw is not None
            self.array = _raw_array(self.name, self.datatype, self.shape, self.raw)
        return self.array

    def elements(self) -> list[Any]:
        """The elements in row-major order: numbers, or bytes for BYTES."""
        return self.to_array().reshape(-1).tolist()


# ---------------------------------------------------------------------------- layouts


def split_bytes(name: str, data: bytes | memoryview, count: int) -> list[bytes]:
    """A BYTES tensor's elements (the worker's codec), as an error that names the input."""
    try:
        return codec.split_bytes(memoryview(data).cast("B"), count)
    except codec.TensorError as exc:
        raise _bad(name, str(exc)) from None


def _raw_array(name: str, datatype: str, shape: list[int], raw: bytes | memoryview
               ) -> np.ndarray:
    """The worker's decoding (a view for numbers, split elements for BYTES)."""
    try:
        return codec.to_array(codec.Tensor(datatype, shape, memoryview(raw).cast("B")))
    except codec.TensorError as exc:
        raise _bad(name, str(exc)) from None


def _array_raw(array: np.ndarray, datatype: str) -> bytes | memoryview:
    if datatype == "BYTES":
        return codec.join_bytes(_as_bytes(x) for x in array.reshape(-1).tolist())
    arr = np.ascontiguousarray(array, dtype=DATATYPES[datatype])
    return memoryview(arr).cast("B")


def _as_bytes(x: Any) -> bytes:
    if isinstance(x, bytes):
        return x
    return x.encode() if isinstance(x, str) else orjson.dumps(x, option=_JSON_OPTS)


def _bad(name: str, message: str, fix: str = "") -> ModelportError:
    return invalid("oip.tensor", f"input tensor {name!r}: {message}",
                   fix or "send data whose size matches its shape and datatype",
                   path=f"$.inputs[{name}]")


def check_header(name: Any, datatype: Any, shape: Any) -> tuple[str, str, list[int]]:
    if not isinstance(name, str) or not name:
        raise invalid("oip.tensor", "an input tensor has no \"name\"",
                      "give every input tensor the name of a service input")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise _bad(name, f"unknown datatype {datatype!r}",
                   "use one of " + ", ".join(DATATYPES))
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise _bad(name, f"shape {shape!r} is not a list of sizes >= 0",
                   "send the tensor's actual shape, e.g. [1, 4]")
    return name, datatype, shape


# ---------------------------------------------------------------------------- decoding


def from_data(name: str, datatype: str, shape: list[int], data: Any) -> Tensor:
    """A tensor from JSON ``data`` (flat or nested, row-major)."""
    count = math.prod(shape)
    try:
        if datatype == "BYTES":
            flat = _leaves(data)
            if not all(isinstance(x, (str, bytes)) for x in flat):
                raise _bad(name, "BYTES data must be strings")
            array = np.empty(len(flat), dtype=object)
            array[:] = [x.encode() if isinstance(x, str) else x for x in flat]
        else:
            array = np.asarray(data, dtype=DATATYPES[datatype])
            if array.dtype.kind in "iu" and _has_float(data):
                raise _bad(name, f"{datatype} data holds non-integers")
    except (TypeError, ValueError, OverflowError) as exc:
        raise _bad(name, f"data is not {datatype}: {exc}") from None
    if array.size != count:
        raise _bad(name, f"data holds {array.size} elements; shape {shape} needs {count}")
    return Tensor(name, datatype, shape, array=array.reshape(shape))


def _leaves(data: Any) -> list[Any]:
    """Row-major leaves of nested lists, iteratively (JSON may nest deeper than the
    interpreter's recursion limit)."""
    out: list[Any] = []
    stack = [iter([data])]
    while stack:
        for x in stack[-1]:
            if isinstance(x, list):
                stack.append(iter(x))
                break
            out.append(x)
        else:
            stack.pop()
    return out


def _has_float(data: Any) -> bool:
    return any(isinstance(x, float) and not x.is_integer() for x in _leaves(data))


def from_raw(name: str, datatype: str, shape: list[int], raw: bytes | memoryview) -> Tensor:
    """A tensor from raw bytes; sizes (and BYTES framing) are checked now, by decoding."""
    t = Tensor(name, datatype, shape, raw=raw)
    t.to_array()
    return t


def to_input_value(t: Tensor, declared: dict[str, Any] | None) -> inference_pb2.InputValue:
    """The tensor as the data plane's value for the declared input of the same name."""
    type_ = (declared or {}).get("type", "tensor")
    if type_ == "tensor":
        value = inference_pb2.InputValue(name=t.name)  # in place: `tensor=` would re-encode
        value.tensor.datatype = t.datatype
        value.tensor.shape.extend(t.shape)
        value.tensor.raw = bytes(t.to_raw())
        return value
    if type_ == "json":
        if t.datatype == "BYTES":
            value = _text_array(t).tolist()
            return inference_pb2.InputValue(name=t.name, json=orjson.dumps(value))
        return inference_pb2.InputValue(name=t.name, json=orjson.dumps(
            t.to_array(), option=_JSON_OPTS, default=_tolist))
    fix = {"number": "send a one-element numeric tensor, e.g. FP64 shape [1]"}.get(
        type_, "send a one-element BYTES tensor, shape [1]")
    if t.count != 1:
        raise _bad(t.name, f"the service's input is one {type_} value, but the tensor has "
                   f"shape {t.shape}", fix)
    element = t.elements()[0]
    if type_ == "number":
        if t.datatype in ("BYTES", "BOOL"):
            raise _bad(t.name, f"the service's input is a number, not {t.datatype}", fix)
        return inference_pb2.InputValue(name=t.name, json=orjson.dumps(element))
    if t.datatype != "BYTES":
        raise _bad(t.name, f"the service's input is {type_}, which needs BYTES, not "
                   f"{t.datatype}", fix)
    if type_ == "text":
        try:
            return inference_pb2.InputValue(name=t.name, text=element.decode())
        except UnicodeDecodeError:
            raise _bad(t.name, "the service's input is text, but the bytes are not UTF-8",
                       "send UTF-8 text") from None
    return inference_pb2.InputValue(name=t.name, data=element)


def _text_array(t: Tensor) -> np.ndarray:
    try:
        return np.vectorize(lambda b: b.decode(), otypes=[object])(t.to_array())
    except UnicodeDecodeError:
        raise _bad(t.name, "BYTES elements for a JSON input must be UTF-8 text",
                   "send strings, or declare the input as a tensor") from None


def _tolist(obj: Any) -> Any:
    if isinstance(obj, np.ndarray | np.generic):
        return obj.tolist()
    raise TypeError


# ---------------------------------------------------------------------------- outputs


def from_value(name: str, value: Any) -> Tensor:
    """A JSON value the model returned as a tensor of its natural datatype."""
    if isinstance(value, str | bytes):
        return Tensor(name, "BYTES", [1], array=_objects([_as_bytes(value)]))
    if isinstance(value, list) and value:
        try:
            array = np.asarray(value)
            if array.dtype == object and None in _leaves(value):
                # numbers with nulls: the worker writes NaN as null in JSON
                array = np.asarray(value, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            array = None
        if array is not None and array.dtype.kind in "biuf":
            return from_array(name, array)
        if array is not None and array.dtype.kind == "U":
            flat = [x.encode() for x in array.reshape(-1).tolist()]
            return Tensor(name, "BYTES", list(array.shape), array=_objects(flat).reshape(
                array.shape))
        return Tensor(name, "BYTES", [len(value)], array=_objects([_as_bytes(v)
                                                                    for v in value]))
    if isinstance(value, bool | int | float) and not (
            isinstance(value, int) and not -2**63 <= value < 2**63):
        return from_array(name, np.asarray([value]))
    return Tensor(name, "BYTES", [1], array=_objects([_as_bytes(value)]))


def _objects(items: list[bytes]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def from_array(name: str, array: np.ndarray) -> Tensor:
    datatype = codec.FROM_NUMPY.get((array.dtype.kind, array.dtype.itemsize))
    if datatype is None:
        raise ModelportError(Kind.MODEL, "oip.output_dtype",
                             f"output {name!r} has dtype {array.dtype}, which the Open "
                             "Inference Protocol cannot carry", "return a numeric array")
    return Tensor(name, datatype, list(array.shape) or [1], array=array.reshape(
        list(array.shape) or [1]))


def output_tensors(output: inference_pb2.Output, declared: list[dict[str, Any]]
                   ) -> list[Tensor]:
    """A model's output as named tensors (see the module docstring for the mapping)."""
    default = declared[0]["name"] if declared else "output0"
    which = output.WhichOneof("body")
    named: dict[str, Tensor] = {}
    if which == "tensors":
        for t in output.tensors.tensors:
            name = t.name or default
            if t.WhichOneof("content") == "raw":
                named[name] = Tensor(name, t.datatype, list(t.shape) or [1], raw=t.raw)
            else:
                named[name] = from_value(name, orjson.loads(t.json or b"null"))
    elif which == "json":
        value = orjson.loads(output.json)
        if isinstance(value, dict):
            named = {str(k): from_value(str(k), v) for k, v in value.items()}
        elif _is_records(value):
            keys = list(dict.fromkeys(k for row in value for k in row))
            named = {k: from_value(k, [row.get(k) for row in value]) for k in keys}
        else:
            named = {default: from_value(default, value)}
    else:
        named = {default: from_value(default, output.data)}
    wanted = [d["name"] for d in declared if d["name"] in named]
    return [named[n] for n in wanted] if wanted else list(named.values())


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, dict) for r in value)


def json_data(t: Tensor) -> Any:
    """A tensor's elements for a JSON response: a flat list (BYTES as UTF-8 strings, or
    base64 where the bytes are not text)."""
    if t.datatype == "BYTES":
        return [_text_or_b64(b) for b in t.elements()]
    return t.to_array().reshape(-1)


def _text_or_b64(b: bytes) -> str:
    try:
        return b.decode()
    except UnicodeDecodeError:
        return base64.b64encode(b).decode()


def dumps(doc: Any) -> bytes:
    """JSON for a response that may hold numpy arrays (serialised natively, NaN as null)."""
    return orjson.dumps(doc, option=_JSON_OPTS, default=_tolist)


# ---------------------------------------------------------------------------- metadata


def metadata(entry: dict[str, Any]) -> dict[str, Any]:
    """``{name, datatype, shape}`` for a declared input or output."""
    type_ = entry.get("type", "tensor")
    if type_ == "tensor":
        datatype, shape = entry.get("dtype") or "FP64", entry.get("shape") or [-1]
    else:
        datatype, shape = _TYPE_TENSOR.get(type_, ("BYTES", [-1]))
    return {"name": entry["name"], "datatype": datatype, "shape": list(shape)}


# ---------------------------------------------------------------------------- gRPC form

#: OIP datatype -> the InferTensorContents field that carries it
CONTENTS_FIELD = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}


def from_grpc(tensor: Any, raw: bytes | None) -> Tensor:
    """A ``ModelInferRequest.InferInputTensor`` with its raw bytes (or typed contents)."""
    name, datatype, shape = check_header(tensor.name, tensor.datatype, list(tensor.shape))
    if raw is not None:
        return from_raw(name, datatype, shape, raw)
    field_name = CONTENTS_FIELD.get(datatype)
    if field_name is None:
        raise _bad(name, f"{datatype} data has no typed contents field",
                   "send it in raw_input_contents")
    values = list(getattr(tensor.contents, field_name))
    count = math.prod(shape)
    if len(values) != count:
        raise _bad(name, f"contents.{field_name} holds {len(values)} elements; shape {shape} "
                   f"needs {count}", f"send {datatype} data in contents.{field_name} or "
                   "raw_input_contents")
    if datatype == "BYTES":
        return Tensor(name, datatype, shape, array=_objects(values).reshape(shape))
    try:
        array = np.asarray(values, dtype=DATATYPES[datatype])
    except OverflowError as exc:
        raise _bad(name, f"a value does not fit {datatype}: {exc}") from None
    return Tensor(name, datatype, shape, array=array.reshape(shape))
