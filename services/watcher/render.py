"""YAML files -> desired services, with the file and line of every problem.

Every `*.yaml`/`*.yml` under the source path may hold several documents. A
`ModelService` is validated by the same model the CLI and REST API use
(`modelport.spec.service.parse_service`); a `GitOpsConfig` document sets repository
options (`spec.prune`); any other `kind` is ignored with a note. Lines come from
PyYAML's node marks, so a failure points at the offending field, not just the file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from modelport.errors import ModelportError
from modelport.spec.service import ModelService, parse_service

CONFIG_KIND = "GitOpsConfig"


@dataclass(frozen=True)
class Desired:
    """One ModelService as declared at a revision."""

    name: str
    file: str
    line: int
    service: ModelService
    package_line: int = 0


@dataclass(frozen=True)
class DocFailure:
    """A document that cannot be applied; `service` is its name when one could be read."""

    file: str
    line: int
    message: str
    service: str = ""

    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class FileResult:
    services: list[Desired] = field(default_factory=list)
    failures: list[DocFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rendered:
    services: dict[str, Desired] = field(default_factory=dict)
    failures: list[DocFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    prune: bool | None = None


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def node_at(root: yaml.Node, path: list[str | int]) -> yaml.Node:
    """The deepest node along `path` (mapping keys / sequence indexes): a missing field
    points at its parent, an unexpected field at its key."""
    node = root
    for i, part in enumerate(path):
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    node = k if i == len(path) - 1 else v
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(
                node.value):
            node = node.value[part]
        else:
            return node
    return node


def _json_path_parts(path: str) -> list[str | int]:
    """`$.spec.env.A[0]` -> ['spec', 'env', 'A', 0] (as parse_service reports paths)."""
    parts: list[str | int] = []
    for tok in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path.split(":", 1)[-1].lstrip("$")):
        parts.append(tok[0] if tok[0] else int(tok[1]))
    return parts


def _raw_name(doc: Any) -> str:
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def parse_file(path: str, text: bytes) -> FileResult:
    """Every document of one YAML file; never raises."""
    out = FileResult()
    try:
        loader = yaml.SafeLoader(text.decode("utf-8"))
    except UnicodeDecodeError as exc:
        out.failures.append(DocFailure(path, 1, f"not UTF-8 text: {exc}"))
        return out
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
                if node is None:
                    continue
                doc = loader.construct_document(node)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
                line = mark.line + 1 if mark is not None else 1
                problem = getattr(exc, "problem", None) or str(exc)
                out.failures.append(DocFailure(path, line, f"invalid YAML: {problem}"))
                break  # the rest of the file cannot be trusted
            if doc is None:
                continue
            _document(path, node, doc, out)
    finally:
        loader.dispose()
    return out


def _document(path: str, node: yaml.Node, doc: Any, out: FileResult) -> None:
    line = _line(node)
    kind = doc.get("kind", "ModelService") if isinstance(doc, dict) else "ModelService"
    if kind == CONFIG_KIND:
        spec = doc.get("spec") or {}
        prune = spec.get("prune", True) if isinstance(spec, dict) else None
        if not isinstance(prune, bool):
            out.failures.append(DocFailure(path, _line(node_at(node, ["spec", "prune"])),
                                           "GitOpsConfig spec.prune must be true or false"))
        else:
            out.config["prune"] = prune
        return
    if kind != "ModelService":
        out.notes.append(f"{path}:{line}: kind {kind!r} is not handled by modelport; "
                         "document ignored")
        return
    name = _raw_name(doc)
    try:
        svc = parse_service(doc)
    except ModelportError as exc:
        problems = exc.problems or []
        if problems:
            first = node_at(node, _json_path_parts(problems[0].path))
            detail = "; ".join(f"{p.path.lstrip('$.')}: {p.message}" for p in problems)
        else:
            first = node_at(node, _json_path_parts(exc.path)) if exc.path else node
            detail = exc.message
        out.failures.append(DocFailure(path, _line(first), detail, name))
        return
    pkg_line = _line(node_at(node, ["spec", "package"])) if svc.spec.package else 0
    out.services.append(Desired(svc.metadata.name, path, line, svc, pkg_line))


class Renderer:
    """Renders a revision's YAML files; parsed files are cached by content, so an idle
    resync of a large repository parses nothing."""

    def __init__(self) -> None:
        self._cache: dict[str, FileResult] = {}

    def parse(self, path: str, text: bytes) -> FileResult:
        key = hashlib.sha256(path.encode() + b"\0" + text).hexdigest()
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = parse_file(path, text)
            if len(self._cache) > 10_000:
                self._cache.pop(next(iter(self._cache)))
        return hit

    def render(self, files: dict[str, bytes]) -> Rendered:
        out = Rendered()
        seen: dict[str, Desired] = {}
        for path in sorted(files):
            res = self.parse(path, files[path])
            out.failures += res.failures
            out.notes += res.notes
            if "prune" in res.config:
                out.prune = res.config["prune"]
            for d in res.services:
                if d.name in seen:
                    first = seen[d.name]
                    out.failures.append(DocFailure(
                        d.file, d.line, f"service {d.name!r} is declared twice (also at "
                        f"{first.file}:{first.line}); service names must be unique", d.name))
                    continue
                seen[d.name] = d
        failed = {f.service for f in out.failures if f.service}
        out.services = {n: d for n, d in seen.items() if n not in failed}
        return out
