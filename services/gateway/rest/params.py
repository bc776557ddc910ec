"""What the management routes read from a request, checked before it reaches protobuf: a
JSON body, numbers in the query, the path or a body field.

The stdlib's ``json.loads`` takes a lone surrogate (``"\\ud800"``), ``NaN`` and
``Infinity``; protobuf then refuses the string or the registry stores the NaN, and the
client gets a 500 for its own mistake. orjson refuses all three (and bodies that are not
UTF-8), so a body read here is one protobuf takes. A number for an ``int32`` field beyond
its range is a ``ValueError`` inside protobuf (a 500 too), and ``"²".isdigit()`` is true
though ``int("²")`` fails: whole numbers here are ASCII digits within the field's range.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson
from starlette.requests import Request

from modelport.errors import invalid

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
_WHOLE = re.compile(r"-?[0-9]{1,20}")


def parse_json(raw: bytes, code: str, what: str, fix: str) -> Any:
    """``raw`` as JSON (UTF-8, no lone surrogates, no NaN/Infinity) or a 422 ``code``."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(code, f"{what} is not valid JSON: {exc}", fix) from None


async def json_object(request: Request, code: str = "request.body",
                      fix: str = "send a JSON object (Content-Type: application/json)",
                      empty: Any = None) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``empty`` (``{}`` where that is how the
    route reads "nothing sent")."""
    raw = await request.body()
    doc = empty if not raw.strip() and empty is not None else parse_json(
        raw, code, "the body", fix)
    if not isinstance(doc, dict):
        raise invalid(code, "the body is not a JSON object", fix)
    return doc


def whole_number(raw: Any, name: str, *, low: int = 0, high: int = INT32_MAX,
                 code: str = "request.query_invalid", fix: str = "") -> int:
    """``raw`` (a query or path string, or a JSON number) as an int in [low, high]."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        value = None
    elif isinstance(raw, int):
        value = raw
    else:
        value = int(raw) if _WHOLE.fullmatch(raw.strip()) else None
    if value is None or not low <= value <= high:
        raise invalid(code, f"{name} must be a whole number from {low} to {high}, not "
                      f"{_shown(raw)}", fix or f"send {name} as a number in that range",
                      path=f"$.{name}")
    return value


def query_int(request: Request, name: str, default: int, *, low: int = 0,
              high: int = INT32_MAX, code: str = "request.query_invalid", fix: str = "") -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    return whole_number(raw, name, low=low, high=high, code=code, fix=fix)


def finite_number(raw: Any, name: str, *, low: float = 0.0, high: float = math.inf,
                  code: str = "request.query_invalid", fix: str = "") -> float:
    """``raw`` (a JSON number or a numeric string) as a finite float in [low, high]."""
    error = invalid(code, f"{name} must be a finite number from {low:g} to {high:g}, not "
                    f"{_shown(raw)}", fix or f"send {name} as a number in that range",
                    path=f"$.{name}")
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise error
    try:
        value = float(raw)
    except (ValueError, OverflowError):
        raise error from None
    if not math.isfinite(value) or not low <= value <= high:
        raise error
    return value


def _shown(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = ["finite_number", "json_object", "parse_json", "query_int", "whole_number"]
