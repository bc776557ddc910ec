"""config.json read as plain JSON: what every later step (pydantic, protobuf, SQLite,
orjson in the gateway) can carry, or one problem naming where it is not.

The stdlib's ``json.loads`` takes more than that: ``NaN`` and ``Infinity``, ``1e400``
(an infinite float), integers of any width, lone surrogates (``"\\ud800"``), and nesting
until Python's recursion limit. Each got through validation here and failed later as a
500: a 64-bit-plus tensor shape created the service, then its view could not be written
(orjson takes 64-bit integers only); a lone surrogate could not be encoded for protobuf;
a deep document raised RecursionError. ``loads`` parses with the stdlib, hooks the
literals, and walks the result once, iteratively, to a bounded depth. ``check`` is the
walk alone, for documents parsed otherwise (a ModelService spec from YAML, whose aliases
can make a few hundred bytes a tree of billions of nodes: the walk stops at MAX_NODES).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from modelport.errors import Problem

#: deeper than any config needs (a ModelArts apis schema nests a dozen levels); orjson
#: writes at most 255
MAX_DEPTH = 64
#: more values than any config or spec has; a YAML alias bomb has billions
MAX_NODES = 100_000
INT64 = (-(2**63), 2**63 - 1)
_SURROGATE = re.compile("[\ud800-\udfff]")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Odd:
    """A literal the walk reports: NaN/Infinity, an infinite float, an integer too wide."""

    def __init__(self, literal: str, why: str) -> None:
        self.literal = literal if len(literal) <= 40 else literal[:37] + "..."
        self.why = why


def _constant(name: str) -> _Odd:
    return _Odd(name, "is not a JSON number (JSON has no NaN or Infinity)")


def _float(text: str) -> float | _Odd:
    value = float(text)
    return value if math.isfinite(value) else _Odd(text, "is too large for a number")


def _int(text: str) -> int | _Odd:
    digits = text.lstrip("-")
    if len(digits) > 19:  # before int() parses 400 (or 4,300) digits
        return _Odd(text, "is wider than 64 bits")
    value = int(text)
    return value if INT64[0] <= value <= INT64[1] else _Odd(text, "is wider than 64 bits")


class NotPlain(ValueError):
    """config.json is JSON, but not JSON the platform can carry: ``problem`` says where."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def loads(text: str, label: str) -> Any:
    """``text`` as JSON, or ``NotPlain`` (its problem located as ``label:$.path``);
    ``json.JSONDecodeError`` for text that is not JSON at all."""
    try:
        doc = json.loads(text, parse_constant=_constant, parse_float=_float,
                         parse_int=_int)
    except RecursionError:
        raise NotPlain(_deep(f"{label}:$", "package")) from None
    check(doc, label, max_nodes=None)  # parsed text: as many values as it has characters
    return doc


def check(doc: Any, label: str, prefix: str = "package",
          max_nodes: int | None = MAX_NODES) -> None:
    """``NotPlain`` (its problem's code ``prefix.*``) unless every value of ``doc`` is
    plain: finite numbers, 64-bit integers, text without lone surrogates, at most
    MAX_DEPTH deep and ``max_nodes`` in all (counting what aliases repeat)."""
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(doc, ())]
    seen = 0
    while stack:
        node, loc = stack.pop()
        seen += 1
        if max_nodes is not None and seen > max_nodes:
            raise NotPlain(Problem(f"{label}:$", f"the document holds more than {max_nodes} "
                                   "values (YAML aliases repeat what they point to)",
                                   "write it out plainly, without nested aliases",
                                   f"{prefix}.too_large"))
        if len(loc) > MAX_DEPTH:
            raise NotPlain(_deep(f"{label}:{_path(loc[:MAX_DEPTH])}", prefix))
        where = f"{label}:{_path(loc)}"
        if isinstance(node, _Odd) or (isinstance(node, float) and not math.isfinite(node)) or (
                isinstance(node, int) and not INT64[0] <= node <= INT64[1]):
            odd = node if isinstance(node, _Odd) else _Odd(repr(node), "is not a finite "
                                                           "number within 64 bits")
            raise NotPlain(Problem(where, f"{odd.literal} {odd.why}",
                                   "write a number JSON and 64-bit integers can hold",
                                   f"{prefix}.bad_number"))
        if isinstance(node, str):
            _text(node, where, prefix)
        elif isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str):
                    _text(key, f"{where} (a key {_path((key,))[1:]})", prefix)
                stack.append((value, (*loc, key)))
        elif isinstance(node, list):
            stack.extend((value, (*loc, i)) for i, value in enumerate(node))


def _text(s: str, where: str, prefix: str) -> None:
    if _SURROGATE.search(s):
        raise NotPlain(Problem(where, "the text holds a lone UTF-16 surrogate escape "
                               "(\\ud800-\\udfff), which is no character",
                               "write the character itself, or its surrogate pair",
                               f"{prefix}.bad_text"))


def _deep(where: str, prefix: str) -> Problem:
    return Problem(where, f"the document nests deeper than {MAX_DEPTH} levels",
                   "flatten it: no config or spec needs that depth", f"{prefix}.too_deep")


def _path(loc: tuple[int | str, ...]) -> str:
    out = "$"
    for part in loc:
        if not isinstance(part, str):
            out += f"[{part}]"
        else:
            key = part if len(part) <= 60 else part[:57] + "..."
            key = key.encode("utf-8", "backslashreplace").decode()  # a surrogate as \\ud800
            out += f".{key}" if _KEY.match(key) else "['" + key.replace("'", "\\'") + "']"
    return out
