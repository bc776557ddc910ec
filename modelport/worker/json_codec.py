"""JSON as the wire needs it: compact, encoded once, NaN-safe; orjson where the interpreter
has it (the runtime and gateway), the stdlib's C encoder otherwise (a model's env).

Stdlib only, Python >= 3.8: this module is copied into the user's environment.
"""

from __future__ import annotations

import json
import math
from typing import Any

try:  # the runtime and gateway have orjson (3-5x faster headers); a model's env need not
    import orjson as fast_json
except ImportError:  # pragma: no cover - the worker's side, stdlib only
    fast_json = None


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
encode_compact = _compact_encoder(_no_default)
#: decodes one JSON value from the start of a str: (value, end index)
_scan_json = json.JSONDecoder().scan_once


def loads_json(raw: Any) -> Any:
    """UTF-8 JSON bytes to a value, without json.loads' per-call encoding detection."""
    text = str(raw, "utf-8")
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):  # whitespace around it, trailing data or invalid: json.loads says
        return json.loads(text)
    return value


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

