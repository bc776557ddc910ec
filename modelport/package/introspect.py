"""Read a user's Python module with ``ast`` to find classes and methods, never importing it.

Importing user code at upload time would run it with the platform's privileges and
dependencies; parsing it only tells us what the file says, which is enough to catch
a misspelt class or a missing ``predict`` before a build is spent on it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ModuleInfo:
    """Top-level classes, and other top-level names that may hide a class (imports, assignments)."""

    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    other_names: set[str] = field(default_factory=set)

    def defines(self, name: str) -> bool | None:
        """True if ``name`` is a class here, None if it is bound some other way, else False."""
        if name in self.classes:
            return True
        return None if name in self.other_names else False

    def has_method(self, cls_name: str, method: str) -> bool | None:
        """Whether the class (or a base defined in this file) defines ``method``.

        None means undecidable: some base class comes from another module.
        """
        return self._has_method(cls_name, method, set())

    def _has_method(self, cls_name: str, method: str, seen: set[str]) -> bool | None:
        seen.add(cls_name)
        cls = self.classes[cls_name]
        if method in _members(cls):
            return True
        unknown = False
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id == "object":
                continue
            if isinstance(base, ast.Name) and base.id in self.classes and base.id not in seen:
                found = self._has_method(base.id, method, seen)
                if found:
                    return True
                unknown = unknown or found is None
            else:
                unknown = True
        return None if unknown else False

    def service_class(self, suffix: str = "Service") -> str | None:
        """The most derived class whose ancestry includes a base named ``*Service``
        (ModelArts' ``PTServingBaseService``, ``SingleNodeService``, ...)."""
        services = [n for n in self.classes if self._derives(n, suffix, set())]
        used_as_base = {
            b.id for n in services for b in self.classes[n].bases if isinstance(b, ast.Name)
        }
        leaves = [n for n in services if n not in used_as_base]
        return (leaves or services or [None])[-1]

    def _derives(self, cls_name: str, suffix: str, seen: set[str]) -> bool:
        seen.add(cls_name)
        for base in self.classes[cls_name].bases:
            name = (
                base.id
                if isinstance(base, ast.Name)
                else (base.attr if isinstance(base, ast.Attribute) else "")
            )
            if name in self.classes and name not in seen:
                if self._derives(name, suffix, seen):
                    return True
            elif name.endswith(suffix):
                return True
        return False


def parse_module(path: Path) -> ModuleInfo:
    """Parse ``path``; raises ``SyntaxError`` or ``UnicodeDecodeError`` for unreadable source."""
    tree = ast.parse(path.read_bytes(), filename=path.name)
    info = ModuleInfo()
    for node in _top_level(tree.body):
        if isinstance(node, ast.ClassDef):
            info.classes[node.name] = node
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                info.other_names.add(alias.asname or alias.name.split(".")[0])
        else:
            info.other_names.update(_bound_names(node))
    return info


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, looking inside if/try/with blocks (common for optional imports)."""
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.With | ast.AsyncWith):
            yield from _top_level(node.body)
            yield from _top_level(getattr(node, "orelse", []))
        elif isinstance(node, ast.Try | ast.TryStar):
            yield from _top_level(node.body)
            for handler in node.handlers:
                yield from _top_level(handler.body)
            yield from _top_level(node.orelse)
            yield from _top_level(node.finalbody)


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return {node.name}
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _members(cls: ast.ClassDef) -> set[str]:
    names: set[str] = set()
    for node in cls.body:
        names |= _bound_names(node)
    return names
