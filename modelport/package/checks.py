"""Checks that need the package's files, one function per kind.

They read the raw config defensively (any field may be missing or mistyped, which
the schema reports separately), so file problems are reported in the same pass as
schema problems rather than after the user fixes those.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from pathlib import Path
from typing import Any

from modelport.errors import Problem
from modelport.package.config import parse_predictor_ref
from modelport.package.introspect import ModuleInfo, parse_module
from modelport.package.problems import json_path

_INTERPRETER = re.compile(r"^(python[0-9.]*|bash|sh)$")
_PY_OPTS_WITH_ARG = {"-W", "-X", "-Q"}
MODELARTS_SERVICE_FILE = "customize_service.py"
MODELARTS_BASES = (
    "PTServingBaseService",
    "TfServingBaseService",
    "SingleNodeService",
    "XgSkServingBaseService",
)


def check_file_contract(raw: dict[str, Any], root: Path, label: str) -> list[Problem]:
    problems: list[Problem] = []
    entries = _dicts(raw.get("input"))
    names: dict[str, int] = {}
    paths: dict[str, int] = {}
    for i, entry in entries:
        path = entry.get("path")
        path_dup = False
        if isinstance(path, str) and path:
            where = f"{label}:{json_path(('input', i, 'path'))}"
            problems += _relative_inside(root, path, where)
            norm = posixpath.normpath(path.replace("\\", "/"))
            path_dup = norm in paths
            if path_dup:
                problems.append(
                    Problem(
                        where,
                        f"input {i} writes to '{path}', like input {paths[norm]}",
                        "give each input its own file path",
                        "package.duplicate_input_path",
                    )
                )
            paths.setdefault(norm, i)
        # the request field is the name if given, else the path (reported above if doubled)
        field = "name" if isinstance(entry.get("name"), str) else "path"
        if not (field == "path" and path_dup):
            problems += _duplicate(names, entry.get(field), i, label, ("input", i, field))
    for i, entry in _dicts(raw.get("output")):
        if isinstance(entry.get("path"), str):
            problems += _relative_inside(
                root, entry["path"], f"{label}:{json_path(('output', i, 'path'))}"
            )
    if isinstance(raw.get("entrypoint"), str):
        problems += _check_entrypoint(raw["entrypoint"], root, f"{label}:$.entrypoint")
    return problems


def check_predictor(raw: dict[str, Any], root: Path, label: str) -> list[Problem]:
    problems: list[Problem] = []
    for key in ("input", "output"):
        seen: dict[str, int] = {}
        for i, entry in _dicts(raw.get(key)):
            problems += _duplicate(seen, entry.get("name"), i, label, (key, i, "name"), key)
    parsed = parse_predictor_ref(raw.get("predictor"))
    if parsed is None:
        return problems  # the schema reports the malformed reference
    where = f"{label}:$.predictor"
    module, cls_name = parsed
    rel = module.replace(".", "/")
    candidates = [f"{rel}.py", f"{rel}/__init__.py"]
    source = next((root / c for c in candidates if (root / c).is_file()), None)
    if source is None:
        return problems + [
            Problem(
                where,
                f"predictor module '{module}' not found: no {candidates[0]} or "
                f"{candidates[1]} in the package",
                f'add {candidates[0]} next to config.json, or correct "predictor"',
                "package.predictor_module_missing",
            )
        ]
    info = _parse(source, root, where, problems)
    if info is None:
        return problems
    src = source.relative_to(root).as_posix()
    defined = info.defines(cls_name)
    if defined is False:
        found = ", ".join(info.classes) or "none"
        return problems + [
            Problem(
                where,
                f"class '{cls_name}' is not defined in {src} (classes found: {found})",
                f'define class {cls_name} in {src}, or correct "predictor"',
                "package.predictor_class_missing",
            )
        ]
    if defined is None:
        return problems  # imported or assigned: we cannot see its methods without importing
    methods = [("predict", "def predict(self, **inputs)")]
    if isinstance(raw.get("batching"), dict):
        methods.append(("predict_batch", "def predict_batch(self, inputs: list[dict])"))
    for method, signature in methods:
        if info.has_method(cls_name, method) is False:
            problems.append(
                Problem(
                    where,
                    f"class '{cls_name}' in {src} has no {method} method",
                    f"add `{signature}` to {cls_name}",
                    f"package.{method}_missing",
                )
            )
    return problems


def check_modelarts(root: Path, label_dir: str) -> tuple[list[Problem], str | None]:
    """Check ``customize_service.py`` and return the service class it defines."""
    source = root / MODELARTS_SERVICE_FILE
    where = f"{label_dir}{MODELARTS_SERVICE_FILE}"
    if not source.is_file():
        return [
            Problem(
                where,
                f"{MODELARTS_SERVICE_FILE} is missing next to config.json",
                f"add {MODELARTS_SERVICE_FILE} with a class subclassing one of "
                f"{', '.join(MODELARTS_BASES)}; custom-image (swr_location) models "
                "are not supported",
                "package.modelarts_service_missing",
            )
        ], None
    problems: list[Problem] = []
    info = _parse(source, root, where, problems)
    if info is None:
        return problems, None
    service = info.service_class()
    if service is None:
        problems.append(
            Problem(
                where,
                f"{MODELARTS_SERVICE_FILE} defines no class based on a ModelArts service class",
                f"subclass one of {', '.join(MODELARTS_BASES)} "
                "(from model_service.<engine>_model_service import ...)",
                "package.modelarts_service_class_missing",
            )
        )
    return problems, service


def check_image(raw: dict[str, Any], root: Path, label: str) -> list[Problem]:
    """A Dockerfile to build must be a file of the package (the folder of config.json is
    its build context)."""
    image = raw.get("image")
    if not isinstance(image, dict):
        return []  # an image reference, or a mistake the schema reports
    dockerfile = image.get("dockerfile", "Dockerfile")
    if not isinstance(dockerfile, str) or not dockerfile.strip():
        return []
    where = f"{label}:$.image.dockerfile"
    outside = _relative_inside(root, dockerfile, where)
    if outside:
        return outside
    if not (root / dockerfile).is_file():
        seen = sorted(p.name for p in root.iterdir() if p.is_file())[:10]
        return [
            Problem(
                where,
                f"Dockerfile '{dockerfile}' is not in the package (files next to config.json: "
                f"{', '.join(seen) or 'none'})",
                "add it next to config.json (that folder is the build context), or correct "
                '"dockerfile"',
                "package.dockerfile_missing",
            )
        ]
    return []


def entrypoint_script(entrypoint: str) -> str | None:
    """The package file an entrypoint runs (``python -u infer.py`` -> ``infer.py``), or None
    when it runs a command we cannot locate (``python -c ...``, a program on PATH)."""
    tokens = shlex.split(entrypoint)
    if not tokens:
        return None
    if not _INTERPRETER.match(os.path.basename(tokens[0])):
        first = tokens[0]
        return first if "/" in first or first.endswith((".py", ".sh")) else None
    args = iter(tokens[1:])
    for tok in args:
        if tok == "-m":
            module = next(args, "")
            return module.replace(".", "/") + ".py" if module else None
        if tok == "-c":
            return None
        if tok in _PY_OPTS_WITH_ARG:
            next(args, None)
        elif not tok.startswith("-"):
            return tok
    return None


def _check_entrypoint(entrypoint: str, root: Path, where: str) -> list[Problem]:
    try:
        script = entrypoint_script(entrypoint)
    except ValueError as exc:
        return [
            Problem(
                where,
                f"entrypoint cannot be parsed as a command: {exc}",
                'balance the quotes, e.g. "python inference.py"',
                "package.entrypoint_invalid",
            )
        ]
    if script is None:
        return []
    escape = _relative_inside(root, script, where)
    if escape:
        return escape
    candidates = [script]
    if script.endswith(".py") and " -m " in f" {entrypoint} ":
        candidates.append(script[: -len(".py")] + "/__main__.py")
    if not any((root / c).is_file() for c in candidates):
        return [
            Problem(
                where,
                f"entrypoint script '{script}' is not in the package",
                f'add {script} next to config.json, or correct "entrypoint"',
                "package.entrypoint_missing",
            )
        ]
    return []


def _relative_inside(root: Path, path: str, where: str) -> list[Problem]:
    """A package path must be relative and stay inside the package, links included."""
    norm = path.replace("\\", "/")
    bad = None
    if not norm or "\0" in norm:
        bad = f"{path!r} is not a usable file path"
    elif norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        bad = f"'{path}' is an absolute path"
    elif posixpath.normpath(norm) in (".", "..") or posixpath.normpath(norm).startswith("../"):
        bad = f"'{path}' points outside the package"
    elif not (root / norm).resolve().is_relative_to(root.resolve()):
        bad = f"'{path}' leads outside the package through a symbolic link"
    if bad is None:
        return []
    return [
        Problem(
            where,
            bad,
            'use a path relative to config.json, inside the package, e.g. "input/1.jpeg"',
            "package.path_outside",
        )
    ]


def _duplicate(
    seen: dict[str, int],
    value: Any,
    i: int,
    label: str,
    loc: tuple[int | str, ...],
    what: str = "input",
) -> list[Problem]:
    if not isinstance(value, str):
        return []
    if value in seen:
        return [
            Problem(
                f"{label}:{json_path(loc)}",
                f"duplicate {what} name '{value}' (also {what} {seen[value]})",
                f"give each {what} a distinct name",
                f"package.duplicate_{what}",
            )
        ]
    seen[value] = i
    return []


def _parse(source: Path, root: Path, where: str, problems: list[Problem]) -> ModuleInfo | None:
    src = source.relative_to(root).as_posix()
    try:
        return parse_module(source)
    except SyntaxError as exc:
        problems.append(
            Problem(
                where,
                f"{src} line {exc.lineno}: {exc.msg}",
                f"fix the syntax error in {src}",
                "package.python_syntax",
            )
        )
    except (UnicodeDecodeError, ValueError) as exc:
        problems.append(
            Problem(
                where,
                f"{src} cannot be read as Python source: {exc}",
                f"save {src} as UTF-8 text",
                "package.python_syntax",
            )
        )
    return None


def _dicts(value: Any) -> list[tuple[int, dict[str, Any]]]:
    return (
        [(i, v) for i, v in enumerate(value) if isinstance(v, dict)]
        if isinstance(value, list)
        else []
    )
