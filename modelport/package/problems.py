"""Turn pydantic validation errors into ``Problem``s a user can act on.

Each problem is located as ``<config file>:<JSON path>`` (``config.json:$.input[1].type``)
and carries a fix: our validators put theirs in the error context, and pydantic's
built-in errors get one from the tables below.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from modelport.errors import Problem

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: example values used in "add ..." fixes for missing fields
EXAMPLES: dict[str, str] = {
    "name": '"my-model"',
    "input": '[{"name": "text", "type": "text"}]',
    "output": '[{"path": "output/output.json", "type": "json"}]',
    "entrypoint": '"python inference.py"',
    "predictor": '"predict:Predictor"',
    "path": '"input/1.jpeg"',
    "type": '"text"',
    "model_type": '"PyTorch"',
    "model_algorithm": '"image_classification"',
    "packages": '[{"package_name": "numpy"}]',
    "package_name": '"numpy"',
    "max_batch_size": "8",
}

_FIXES: dict[str, str] = {
    "string_type": "use a string in double quotes",
    "int_type": "use a whole number",
    "int_parsing": "use a whole number",
    "int_from_float": "use a whole number",
    "float_type": "use a number",
    "float_parsing": "use a number",
    "bool_type": "use true or false",
    "list_type": "use a JSON list: [ ... ]",
    "dict_type": "use a JSON object: { ... }",
    "model_type": "use a JSON object: { ... }",
    "model_attributes_type": "use a JSON object: { ... }",
    "string_too_short": "use a non-empty string",
}


def json_path(loc: tuple[int | str, ...]) -> str:
    """``("input", 1, "type")`` -> ``$.input[1].type``; odd keys are bracket-quoted."""
    out = "$"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _KEY.match(part):
            out += f".{part}"
        else:
            out += "['" + part.replace("'", "\\'") + "']"
    return out


def from_validation(exc: ValidationError, label: str, model: type[BaseModel]) -> list[Problem]:
    """One ``Problem`` per pydantic error, in the order pydantic found them."""
    return [_problem(err, label, model) for err in exc.errors()]


def _problem(err: Any, label: str, model: type[BaseModel]) -> Problem:
    loc: tuple[int | str, ...] = tuple(err["loc"])
    kind: str = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    field = str(loc[-1]) if loc else "config"
    path = f"{label}:{json_path(loc)}"
    if "fix" in ctx:  # one of ours
        return Problem(path, err["msg"], ctx["fix"], f"package.{kind}")
    if kind == "missing":
        example = EXAMPLES.get(field)
        fix = f'add "{field}": {example}' if example else f'add "{field}"'
        return Problem(path, f"missing required field '{field}'", fix, "package.missing_field")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        close = difflib.get_close_matches(field, allowed, n=1)
        if close:
            fix = f"did you mean '{close[0]}'?"
        else:
            fix = "remove it; allowed here: " + ", ".join(allowed)
        return Problem(path, f"unknown field '{field}'", fix, "package.unknown_field")
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        return Problem(
            path,
            f"'{field}' is {err['input']!r}, expected {expected}",
            f"use {expected}",
            "package.bad_value",
        )
    return Problem(path, f"'{field}': {err['msg']}", _fix(kind, ctx), "package.bad_value")


def _fix(kind: str, ctx: dict[str, Any]) -> str:
    if kind in _FIXES:
        return _FIXES[kind]
    bounds = {
        "greater_than": "greater than {gt}",
        "greater_than_equal": "at least {ge}",
        "less_than": "less than {lt}",
        "less_than_equal": "at most {le}",
    }
    if kind in bounds:
        return "use a value " + bounds[kind].format(**ctx)
    if kind == "too_short":
        return f"list at least {ctx.get('min_length', 1)} item(s)"
    if kind == "too_long":
        return f"list at most {ctx.get('max_length')} item(s)"
    return "correct the value"


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the (nested) model found at ``loc``, for "did you mean" fixes."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part)
        current = _model_in(info.annotation) if info is not None else None
    return sorted(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside ``X | None``, ``list[X]`` or ``dict[str, X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, dict, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
