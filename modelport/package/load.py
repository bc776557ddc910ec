"""Find a package's config.json, tell which kind it is, and validate it completely.

Validation never stops at the first mistake: schema errors and file checks are
collected into one ``package.invalid`` error so a user fixes everything in one round.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelport.errors import ModelportError, Problem, invalid
from modelport.package import checks, plain_json, problems
from modelport.package.config import (
    KIND_MODELS,
    CommonConfig,
    FileContractConfig,
    ImageBuild,
    ImageConfig,
    ModelArtsApi,
    ModelArtsConfig,
    PredictorConfig,
)
from modelport.package.digest import content_digest
from modelport.package.model import InputSpec, OutputSpec, Package, PackageKind

CONFIG = "config.json"
REQUIREMENTS = "requirements.txt"
#: folders zip tools add that are not part of anyone's package
_NOISE = {"__MACOSX", ".DS_Store"}
_TOP_KEY = re.compile(r"^(?:\.([^.\[]+)|\['((?:[^'\\]|\\.)*)'\])")
_RUNTIME_PYTHON = re.compile(r"py(?:thon)?_?(\d\.\d+)")
_KIND_HINT = (
    'predictor: "predictor": "module:Class" with "input"; '
    'file contract: "name", "input", "output", "base_image", "entrypoint"; '
    'ModelArts: "model_type" and "model_algorithm" in model/config.json with customize_service.py; '
    'custom image: "model_type": "Image" with "image": {"dockerfile": "Dockerfile"} or '
    '"image": "name:tag"'
)


def load_package(root: Path) -> Package:
    """Load and validate the package in directory ``root`` (an extracted zip or a folder).

    config.json is looked for at ``root``, then ``root/model/`` (ModelArts), then inside
    a single top-level folder (a zip made of the folder rather than its contents).
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"not a package directory: {root}")
    config_path = find_config(root)
    label = config_path.relative_to(root).as_posix()
    pkg_root = config_path.parent
    raw = _read_json(config_path, label)
    if not isinstance(raw, dict):
        raise _invalid(
            [
                Problem(
                    f"{label}:$",
                    f"{label} holds a JSON {type(raw).__name__}, not an object",
                    "make the whole file one { ... } object",
                    "package.bad_value",
                )
            ]
        )
    kind = detect_kind(raw)
    if kind is None:
        raise _invalid(
            [
                Problem(
                    f"{label}:$",
                    f"{label} matches no package kind",
                    "add the keys of one kind; " + _KIND_HINT,
                    "package.unknown_kind",
                )
            ]
        )
    found: list[Problem] = []
    model_cls = KIND_MODELS[kind]
    cfg: CommonConfig | None = None
    try:
        cfg = model_cls.model_validate(raw)
    except ValidationError as exc:
        found += problems.from_validation(exc, label, model_cls)
    service: str | None = None
    if kind == "file_contract":
        found += checks.check_file_contract(raw, pkg_root, label)
    elif kind == "predictor":
        found += checks.check_predictor(raw, pkg_root, label)
    elif kind == "image":
        found += checks.check_image(raw, pkg_root, label)
    else:
        more, service = checks.check_modelarts(pkg_root, label[: -len(CONFIG)])
        found += more
    requirements = _read_requirements(pkg_root, label[: -len(CONFIG)], found)
    if found or cfg is None:
        raise _invalid(_in_file_order(found, raw, label))
    return _build(pkg_root, kind, raw, cfg, requirements, service)


def find_config(root: Path) -> Path:
    """Where config.json is, or ``package.config_missing`` naming what was found instead."""
    for base in _candidate_roots(root):
        for rel in (CONFIG, f"model/{CONFIG}"):
            if (base / rel).is_file():
                return base / rel
    seen = sorted(
        p.name + ("/" if p.is_dir() else "") for p in root.iterdir() if p.name not in _NOISE
    )
    listing = ", ".join(seen[:10]) + (", ..." if len(seen) > 10 else "") if seen else "nothing"
    raise invalid(
        "package.config_missing",
        f"no {CONFIG} at the package root, in model/, or in a single top-level folder "
        f"(found: {listing})",
        fix=f"put {CONFIG} at the top of the package (zip the folder's contents), or "
        f"model/{CONFIG} for a ModelArts package",
    )


def detect_kind(raw: dict[str, Any]) -> PackageKind | None:
    """The kind a config.json is written for, by the keys only that kind uses."""
    if "predictor" in raw:
        return "predictor"
    model_type = raw.get("model_type")
    if (isinstance(model_type, str) and model_type.lower() == "image") or (
            "image" in raw and "entrypoint" not in raw):
        return "image"
    if "model_type" in raw or "model_algorithm" in raw:
        return "modelarts"
    if "entrypoint" in raw or "base_image" in raw:
        return "file_contract"
    inputs = raw.get("input")
    if isinstance(inputs, list) and any(isinstance(i, dict) and "path" in i for i in inputs):
        return "file_contract"  # the seed format minus its entrypoint: say that precisely
    return None


def _candidate_roots(root: Path) -> list[Path]:
    entries = [p for p in root.iterdir() if p.name not in _NOISE]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return [root, entries[0]]
    return [root]


def _read_json(path: Path, label: str) -> Any:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise invalid(
            "package.config_invalid_json",
            f"{label} is not UTF-8 text (byte {exc.start})",
            fix=f"save {label} with UTF-8 encoding",
            path=label,
        ) from None
    try:
        return plain_json.loads(text, label)
    except plain_json.NotPlain as exc:
        raise _invalid([exc.problem]) from None
    except json.JSONDecodeError as exc:
        raise invalid(
            "package.config_invalid_json",
            f"{label} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            fix="fix the JSON at that spot (often a trailing comma, a missing comma or "
            "single quotes)",
            path=f"{label}:{exc.lineno}:{exc.colno}",
            details={"line": exc.lineno, "column": exc.colno},
        ) from None


def _read_requirements(root: Path, label_dir: str, found: list[Problem]) -> str:
    path = root / REQUIREMENTS
    if not path.is_file():
        return ""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        found.append(
            Problem(
                f"{label_dir}{REQUIREMENTS}",
                f"{REQUIREMENTS} is not UTF-8 text",
                f"save {REQUIREMENTS} with UTF-8 encoding",
                "package.requirements_encoding",
            )
        )
        return ""


def _in_file_order(found: list[Problem], raw: dict[str, Any], label: str) -> list[Problem]:
    """Order problems as their top-level keys appear in config.json; other files last."""
    order = {key: i for i, key in enumerate(raw)}
    prefix = f"{label}:$"

    def position(p: Problem) -> int:
        if not p.path.startswith(prefix):
            return len(order) + 1
        m = _TOP_KEY.match(p.path[len(prefix) :])
        return order.get(m.group(1) or m.group(2), len(order)) if m else -1

    return sorted(found, key=position)


#: the problems one error carries, in bytes of JSON: the registry sends the error in a
#: gRPC trailer (8 KiB in all), and a longer list would arrive as a bare RESOURCE_EXHAUSTED
PROBLEMS_BYTES = 4096
#: a problem's path, message and fix are cut to this many characters (a key or entry name
#: can be 60,000 characters long)
PROBLEM_TEXT = 240


def _invalid(found: list[Problem]) -> ModelportError:
    n = len(found)
    kept: list[Problem] = []
    size = 0
    for p in found:
        short = Problem(_cut(p.path), _cut(p.message), _cut(p.fix), p.code)
        size += len(json.dumps(short.to_dict()))
        if size > PROBLEMS_BYTES and kept:
            break
        kept.append(short)
    rest = n - len(kept)
    more = f"; {rest} more not listed" if rest else ""
    return invalid(
        "package.invalid",
        f"package has {n} problem{'s' if n != 1 else ''}{more}",
        fix="fix each problem listed and upload the package again"
        + (" (then the next ones are listed)" if rest else ""),
        problems=kept,
        details={"problems_not_listed": rest} if rest else {},
    )


def _cut(text: str) -> str:
    return text if len(text) <= PROBLEM_TEXT else text[: PROBLEM_TEXT - 3] + "..."


def _build(
    root: Path,
    kind: PackageKind,
    raw: dict[str, Any],
    cfg: CommonConfig,
    requirements: str,
    service: str | None,
) -> Package:
    common: dict[str, Any] = {
        "root": root,
        "kind": kind,
        "config": raw,
        "digest": content_digest(root),
        "timeout_s": cfg.timeout_s,
        "resources": cfg.resources,
        "env": dict(cfg.env or {}),
        "health": cfg.health,
        "python": cfg.python,
        "base_image": cfg.base_image,
    }
    if isinstance(cfg, FileContractConfig):
        return Package(
            **common,
            name=cfg.name,
            requirements=requirements,
            inputs=[InputSpec(i.name or i.path, i.type, path=i.path) for i in cfg.input],
            outputs=[OutputSpec(o.path, o.type, path=o.path) for o in cfg.output],
            entrypoint=cfg.entrypoint,
        )
    if isinstance(cfg, ImageConfig):
        return _build_image(root, raw, cfg, common)
    if isinstance(cfg, PredictorConfig):
        return Package(
            **common,
            name=cfg.name,
            requirements=requirements,
            inputs=[
                InputSpec(i.name, i.type, dtype=i.dtype, shape=i.shape, description=i.description,
                          example=i.example)
                for i in cfg.input
            ],
            outputs=[
                OutputSpec(o.name, o.type, dtype=o.dtype, shape=o.shape, description=o.description)
                for o in cfg.output or []
            ],
            predictor=cfg.predictor,
            batching=cfg.batching,
        )
    assert isinstance(cfg, ModelArtsConfig)
    api = _main_api(cfg.apis or [])
    request = api.request if api else None
    response = api.response if api else None
    if common["python"] is None and cfg.runtime:
        m = _RUNTIME_PYTHON.search(cfg.runtime)
        common["python"] = m.group(1) if m else None
    name = raw.get("name") if isinstance(raw.get("name"), str) and raw["name"] else None
    return Package(
        **common,
        name=name or cfg.model_algorithm,
        requirements=_join_requirements(requirements, cfg.requirements(), root),
        inputs=[InputSpec(n, t) for n, t in _schema_fields(request.data if request else None)],
        outputs=[OutputSpec(n, t) for n, t in _schema_fields(response.data if response else None)],
        predictor=f"{checks.MODELARTS_SERVICE_FILE[:-3]}:{service}",
        content_type=request.content_type if request else None,
        request_schema=_schema(request.data if request else None),
        response_schema=_schema(response.data if response else None),
    )


def _build_image(root: Path, raw: dict[str, Any], cfg: ImageConfig,
                 common: dict[str, Any]) -> Package:
    """A custom image: nothing is installed for it (requirements.txt, if any, is a file of
    its build context), and it has no declared inputs: requests reach it as HTTP."""
    ref = cfg.image if isinstance(cfg.image, str) else None
    dockerfile = cfg.image.dockerfile if isinstance(cfg.image, ImageBuild) else None
    named = ref.split("@")[0].rsplit("/", 1)[-1].split(":")[0] if ref and not ref.startswith(
        "sha256:") else None
    name = cfg.name or cfg.model_algorithm or named or "custom-image"
    paths = [a.url for a in cfg.apis or [] if a.url and a.url.startswith("/")]
    return Package(**common, name=name, requirements="", inputs=[], outputs=[], image=ref,
                   dockerfile=dockerfile, port=cfg.port, paths=paths)


def _schema(data: dict[str, Any] | str | None) -> dict[str, Any] | None:
    """A ModelArts api body schema as a dict (some configs carry it as a JSON string)."""
    if isinstance(data, str):
        try:
            data = plain_json.loads(data, "")  # NotPlain is a ValueError
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


def _main_api(apis: list[ModelArtsApi]) -> ModelArtsApi | None:
    return next((a for a in apis if a.url == "/"), apis[0] if apis else None)


def _schema_fields(data: dict[str, Any] | str | None) -> list[tuple[str, str]]:
    """Top-level properties of a ModelArts JSON-schema body as (name, modelport type)."""
    if isinstance(data, str):
        try:
            data = plain_json.loads(data, "")  # NotPlain is a ValueError
        except ValueError:
            return []
    props = data.get("properties") if isinstance(data, dict) else None
    if not isinstance(props, dict):
        return []
    kinds = {"file": "file", "string": "text", "number": "number", "integer": "number"}
    return [
        (name, kinds.get(schema.get("type"), "json") if isinstance(schema, dict) else "json")
        for name, schema in props.items()
    ]


def _join_requirements(text: str, extra: list[str], root: Path) -> str:
    """requirements.txt first, then ModelArts dependencies in their declared order;
    a dependency naming a wheel shipped in the package becomes a ``./file.whl`` line."""
    lines = [f"./{r}" if r.endswith(".whl") and (root / r).is_file() else r for r in extra]
    if not lines:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return text + "\n".join(lines) + "\n"
