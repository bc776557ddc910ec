"""What requests and answers carry: inputs (``Value``), tensors, batch items and results,
and their encoding into a frame's header and parts.

Stdlib only, Python >= 3.8: this module is copied into the user's environment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .frames import ProtocolError
from .json_codec import dumps_json, loads_json
from .tensors import Tensor, from_array, is_numpy, to_list


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
            return loads_json(self.payload)
        if self.kind == "bytes":
            return bytes(self.payload)
        if self.kind == "tensor":

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


def to_tensor_result(value: Any, default: Any) -> Result | None:
    """What predict returned, as named tensors, when it holds numpy arrays: a dict's array
    values become raw tensors and its other values JSON (the gateway makes those tensors);
    a lone array becomes one unnamed tensor. None: nothing to gain, send plain JSON."""
    if isinstance(value, dict) and any(is_numpy(v) for v in value.values()):
        tensors = []
        for key, item in value.items():
            t = from_array(str(key), item) if is_numpy(item) else None
            tensors.append(t or Tensor(None, (), dumps_json(item, default=default), str(key)))
        return Result.of_tensors(tensors)
    if is_numpy(value):
        t = from_array("", value)
        return Result.of_tensors([t]) if t is not None else None
    return None
