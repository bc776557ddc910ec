"""The predictor kind: ``"predictor": "module:Class"`` with ``setup()`` and ``predict(**inputs)``.

Inputs are converted by their declared ``input[].type``: text -> str, image/file ->
bytes, json -> the parsed value, number -> int or float, tensor -> numpy array (when
numpy is importable; ``dtype`` in Open Inference Protocol names, ``shape`` with -1 for
any). Without declarations, inputs arrive as sent (str, bytes or the JSON value). A
declared input may be left out of a request only when ``predict`` has a default for it.
``predict`` returning a generator (sync or async) streams its items.

With ``"batching"`` in config.json the runtime also sends batches: the class's
``predict_batch(inputs: list[dict])`` is called once with one dict of converted inputs
per request and returns a list of as many results, in order. An item may be an
Exception instance: that request alone fails with it.

Stdlib only, Python >= 3.8.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

from .. import tensors
from ..protocol import ErrorCode
from ..values import Result, Value, to_tensor_result
from .base import (
    ConfigError,
    RequestContext,
    ShimError,
    decode_base64,
    invalid_input,
    json_default,
    to_result,
)

TYPES = ("text", "image", "file", "json", "number", "tensor")
#: what predict may return that is never a stream (checked by exact type, quickly)
_PLAIN_RESULTS = frozenset((str, int, float, bool, type(None), dict, list, tuple, bytes))

#: Open Inference Protocol datatype -> numpy dtype name
OIP_DTYPES = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32",
    "UINT64": "uint64", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "object",
}

_INT = re.compile(r"^[+-]?\d+$")


def detect(config: dict[str, Any]) -> bool:
    return isinstance(config.get("predictor"), str)


class InputSpec:
    def __init__(self, index: int, raw: Any) -> None:
        where = f"input[{index}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise ConfigError(f"{where} needs a \"name\" (a predictor input is passed by name)")
        self.name = raw["name"]
        self.type = raw.get("type", "json")
        if self.type not in TYPES:
            raise ConfigError(f"{where}.type is {self.type!r}; use one of {', '.join(TYPES)}")
        dtype = raw.get("dtype")
        if dtype is not None and not isinstance(dtype, str):
            raise ConfigError(f"{where}.dtype must be a string such as \"FP32\"")
        self.dtype = OIP_DTYPES.get(dtype.upper(), dtype) if dtype else None
        self.shape = raw.get("shape")
        if self.shape is not None and not (
            isinstance(self.shape, list) and all(isinstance(d, int) for d in self.shape)
        ):
            raise ConfigError(f"{where}.shape must be a list of integers (-1 for any)")


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        return None
    return numpy


class Adapter:
    kind = "predictor"

    def __init__(self, root: str, config: dict[str, Any]) -> None:
        self.root = root
        self.config = config
        self.streaming = False
        self.predict_fn: Any = None
        self.instance: Any = None
        #: the class's predict_batch, when config.json declares "batching" (see predict_batch)
        self.batch_fn: Any = None
        self.batching = False
        #: most requests per predict_batch call (the shim merges queued batches up to it)
        self.max_batch_size = 0
        #: declared inputs predict() has a default for: a request may leave them out
        self.optional: set[str] = set()
        ref = config.get("predictor")
        if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
            raise ConfigError(f"\"predictor\" must look like \"module:Class\", not {ref!r}")
        self.module_name, self.attr = ref.split(":")
        specs = config.get("input") or []
        if not isinstance(specs, list):
            raise ConfigError("\"input\" must be a list of {name, type}")
        self.inputs = [InputSpec(i, raw) for i, raw in enumerate(specs)]
        self._declared = {spec.name: spec for spec in self.inputs}

    # ------------------------------------------------------------------ lifecycle

    def setup(self) -> None:
        if self.root not in sys.path:
            sys.path.insert(0, self.root)
        module = importlib.import_module(self.module_name)
        target: Any = module
        for part in self.attr.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise ConfigError(
                    f"module {self.module_name!r} has no {self.attr!r} (from \"predictor\": "
                    f"\"{self.module_name}:{self.attr}\")"
                ) from None
        if inspect.isclass(target):
            self.instance = target()
            if callable(getattr(self.instance, "setup", None)):
                self.instance.setup()
            self.predict_fn = getattr(self.instance, "predict", None)
            if not callable(self.predict_fn):
                raise ConfigError(f"{self.attr} has no predict(self, **inputs) method")
        elif callable(target):
            self.predict_fn = target
        else:
            raise ConfigError(f"{self.module_name}:{self.attr} is not a class or a function")
        self.streaming = inspect.isgeneratorfunction(self.predict_fn) or (
            inspect.isasyncgenfunction(self.predict_fn))
        try:
            params = inspect.signature(self.predict_fn).parameters.values()
        except (TypeError, ValueError):  # a builtin or C callable: no signature to read
            params = []  # type: ignore[assignment]
        self.optional = {p.name for p in params if p.default is not inspect.Parameter.empty}
        if isinstance(self.config.get("batching"), dict):
            self.batch_fn = getattr(self.instance, "predict_batch", None)
            if not callable(self.batch_fn):
                raise ConfigError(
                    f"\"batching\" is declared but {self.attr} has no predict_batch method; "
                    "add `def predict_batch(self, inputs: list[dict]) -> list` to the class, "
                    "or remove \"batching\"")
            self.batching = True
            size = self.config["batching"].get("max_batch_size")
            self.max_batch_size = size if isinstance(size, int) and size > 0 else 0

    def close(self) -> None:
        closer = getattr(self.instance, "close", None)
        if callable(closer):
            closer()

    # ------------------------------------------------------------------ requests

    def predict(self, inputs: dict[str, Value], ctx: RequestContext) -> Any:
        now = time.monotonic
        start = now()
        try:
            kwargs = self.convert_inputs(inputs)
        finally:
            ctx.add_phase("preprocess", start, now())
        start = now()
        try:
            out = self.predict_fn(**kwargs)
            if inspect.iscoroutine(out):
                import asyncio

                out = asyncio.run(out)
        finally:
            ctx.add_phase("predict", start, now())
        encode = _encode_tensors if ctx.tensor_outputs else to_result
        if type(out) in _PLAIN_RESULTS:  # the common case, without the stream checks
            start = now()
            try:
                return encode(out)
            finally:
                ctx.add_phase("postprocess", start, now())
        if inspect.isasyncgen(out):
            return _results(_sync_iter(out), encode)
        if inspect.isgenerator(out) or (
            isinstance(out, Iterator) and not isinstance(out, (str, bytes, dict, list))
        ):
            return _results(out, encode)
        with ctx.phase("postprocess"):
            return encode(out)

    def predict_batch(self, items: list[tuple[dict[str, Value], RequestContext]]
                      ) -> list[Any]:
        """One call of the model's ``predict_batch`` for several requests.

        Returns one outcome per item, in order: a ``Result``, or the exception that fails
        that item alone (its inputs were invalid, the model returned an Exception for it,
        or its value cannot be encoded). When ``predict_batch`` raises, or does not return
        one result per input, every item that reached it fails with that error.
        """
        outcomes: list[Any] = [None] * len(items)
        index: list[int] = []
        batch: list[dict[str, Any]] = []
        for i, (inputs, ctx) in enumerate(items):
            try:
                with ctx.phase("preprocess"):
                    batch.append(self.convert_inputs(inputs))
                index.append(i)
            except ShimError as exc:
                outcomes[i] = exc
        if not batch:
            return outcomes
        start = time.monotonic()
        try:
            out = self.batch_fn(batch)
            if inspect.iscoroutine(out):
                import asyncio

                out = asyncio.run(out)
            results = _batch_results(out, len(batch))
        except BaseException as exc:  # noqa: BLE001 - the shim reports it for every item
            if isinstance(exc, KeyboardInterrupt):
                raise
            for i in index:
                outcomes[i] = exc
            return outcomes
        finally:
            end = time.monotonic()
            for i in index:
                items[i][1].add_phase("predict", start, end)
        for i, value in zip(index, results):
            ctx = items[i][1]
            if isinstance(value, BaseException):
                outcomes[i] = value
                continue
            encode = _encode_tensors if ctx.tensor_outputs else to_result
            try:
                with ctx.phase("postprocess"):
                    outcomes[i] = encode(value)
            except ShimError as exc:
                outcomes[i] = exc
        return outcomes

    def convert_inputs(self, inputs: dict[str, Value]) -> dict[str, Any]:
        if not self.inputs:
            return {name: _plain(name, value) for name, value in inputs.items()}
        declared = self._declared
        unknown = sorted(name for name in inputs if name not in declared)
        if unknown:
            raise invalid_input(
                f"unexpected input {', '.join(repr(n) for n in unknown)}; this model takes: "
                f"{', '.join(declared)}"
            )
        out = {}
        for spec in self.inputs:
            if spec.name in inputs:
                out[spec.name] = convert(spec, inputs[spec.name])
            elif spec.name not in self.optional:
                raise invalid_input(
                    f"missing input {spec.name!r} ({spec.type}); this model takes: "
                    f"{', '.join(declared)}"
                )
        return out


def _batch_results(out: Any, expected: int) -> list[Any]:
    """predict_batch's return value as a list of ``expected`` items, or a clear error."""
    if isinstance(out, (list, tuple)) or (
        hasattr(out, "tolist") and hasattr(out, "__len__")  # a numpy array: one row each
        and not isinstance(out, (str, bytes, dict))
    ):
        results = list(out)
        if len(results) == expected:
            return results
        raise ShimError(ErrorCode.BATCH_INVALID, "BatchLengthMismatch",
                        f"predict_batch returned {len(results)} results for {expected} inputs; "
                        "it must return one result (or an Exception) per input, in order")
    raise ShimError(ErrorCode.BATCH_INVALID, "BatchNotAList",
                    f"predict_batch returned {type(out).__name__}; it must return a list "
                    f"with one result (or an Exception) per input ({expected}), in order")


def _results(items: Any, encode: Any = to_result) -> Iterator[Result]:
    for item in items:
        yield encode(item)


def _encode_tensors(value: Any) -> Result:
    """For the Open Inference Protocol: numpy arrays as raw tensors, the rest as JSON."""
    return to_tensor_result(value, json_default) or to_result(value)


def _sync_iter(agen: Any) -> Iterator[Any]:
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(agen.aclose())
        loop.close()


# ---------------------------------------------------------------------- conversion


def _plain(name: str, value: Value) -> Any:
    if value.kind == "tensor":  # undeclared input: an array when numpy is there
        return _tensor_value(name, value, lambda t: tensors.to_array(t) if _numpy()
                             else tensors.to_list(t))
    try:
        return value.decoded()
    except ValueError as exc:
        raise invalid_input(f"input {name!r} is not valid JSON: {exc}") from None


def _tensor_value(name: str, value: Value, convert: Any) -> Any:
    try:
        return convert(value.payload)
    except tensors.TensorError as exc:
        raise invalid_input(f"input {name!r}: {exc}") from None


def _tensor_element(spec: InputSpec, value: Value) -> Any:
    """A one-element tensor sent for a text/image/file/number input: its element."""
    return _tensor_value(spec.name, value, tensors.scalar)


def _as_text(spec: InputSpec, value: Value) -> str:
    if value.kind == "text":
        return value.payload
    if value.kind == "tensor":
        value = Value.of_bytes(_as_element_bytes(spec, value))
    if value.kind == "bytes":
        try:
            return bytes(value.payload).decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_input(f"input {spec.name!r} is text but was sent bytes that are "
                                "not UTF-8") from None
    decoded = _plain(spec.name, value)
    if isinstance(decoded, str):
        return decoded
    raise invalid_input(f"input {spec.name!r} is text, not a JSON {type(decoded).__name__}")


def _as_json(spec: InputSpec, value: Value) -> Any:
    if value.kind in ("json", "raw_json"):
        return _plain(spec.name, value)
    if value.kind == "tensor":
        return _tensor_value(spec.name, value, tensors.to_list)
    text = _as_text(spec, value)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise invalid_input(f"input {spec.name!r} must be JSON: {exc}") from None


def _as_number(spec: InputSpec, value: Value) -> Any:
    if value.kind == "tensor" and value.payload.datatype != "BYTES":
        number = _tensor_element(spec, value)
        if isinstance(number, bool):
            raise invalid_input(f"input {spec.name!r} must be a number, not BOOL")
        return number
    if value.kind in ("json", "raw_json"):
        decoded = _plain(spec.name, value)
        if isinstance(decoded, (int, float)) and not isinstance(decoded, bool):
            return decoded
        if not isinstance(decoded, str):
            raise invalid_input(f"input {spec.name!r} must be a number, not "
                                f"{type(decoded).__name__}")
        text = decoded
    else:
        text = _as_text(spec, value)
    text = text.strip()
    try:
        return int(text) if _INT.match(text) else float(text)
    except ValueError:
        raise invalid_input(f"input {spec.name!r} must be a number, not {text[:40]!r}") from None


def _as_element_bytes(spec: InputSpec, value: Value) -> bytes:
    if value.payload.datatype != "BYTES":
        raise invalid_input(f"input {spec.name!r} ({spec.type}) needs a BYTES tensor with one "
                            f"element, not {value.payload.datatype}")
    return _tensor_element(spec, value)


def _as_bytes(spec: InputSpec, value: Value) -> bytes:
    if value.kind == "bytes":
        return bytes(value.payload)
    if value.kind == "tensor":
        return _as_element_bytes(spec, value)
    text = _as_text(spec, value)
    return decode_base64(text, f"input {spec.name!r} ({spec.type})")


def _as_tensor(spec: InputSpec, value: Value) -> Any:
    np = _numpy()
    if value.kind == "tensor":
        if np is None:
            return _tensor_value(spec.name, value, tensors.to_list)
        array = _tensor_value(spec.name, value, tensors.to_array)
        if spec.dtype and spec.dtype != "object" and array.dtype != np.dtype(spec.dtype):
            if not np.can_cast(array.dtype, spec.dtype, "same_kind"):
                raise invalid_input(f"input {spec.name!r} is declared {spec.dtype}; a "
                                    f"{value.payload.datatype} tensor cannot be cast to it")
            array = array.astype(spec.dtype)
        _check_shape(spec, array)
        return array
    if value.kind == "bytes":
        if np is None:
            raise invalid_input(f"input {spec.name!r} is a tensor sent as raw bytes, which "
                                "needs numpy in the model's environment")
        if not spec.dtype or spec.dtype == "object":
            raise invalid_input(f"input {spec.name!r}: raw tensor bytes need a fixed-size "
                                "\"dtype\" (e.g. FP32) declared in config.json")
        try:
            array = np.frombuffer(bytes(value.payload), dtype=spec.dtype)
            if spec.shape:
                array = array.reshape(spec.shape)
        except (TypeError, ValueError, OverflowError) as exc:
            raise invalid_input(f"input {spec.name!r}: raw bytes do not make a "
                                f"{spec.dtype} tensor of shape {spec.shape}: {exc}") from None
        return array
    data = _as_json(spec, value)
    if np is None:
        return data
    try:
        array = np.asarray(data, dtype=spec.dtype) if spec.dtype else np.asarray(data)
    except (TypeError, ValueError, OverflowError) as exc:
        raise invalid_input(f"input {spec.name!r} is not a {spec.dtype or ''} tensor: "
                            f"{exc}") from None
    _check_shape(spec, array)
    return array


def _check_shape(spec: InputSpec, array: Any) -> None:
    if spec.shape is not None:
        shape = list(array.shape)
        if len(shape) != len(spec.shape) or any(
            want != -1 and want != got for want, got in zip(spec.shape, shape)
        ):
            raise invalid_input(f"input {spec.name!r} has shape {shape}, but config.json "
                                f"declares {spec.shape} (-1 matches any size)")


_CONVERTERS = {
    "text": _as_text,
    "image": _as_bytes,
    "file": _as_bytes,
    "json": _as_json,
    "number": _as_number,
    "tensor": _as_tensor,
}


def convert(spec: InputSpec, value: Value) -> Any:
    return _CONVERTERS[spec.type](spec, value)
