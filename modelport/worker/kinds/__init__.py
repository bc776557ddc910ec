"""Package kinds: one adapter module per kind, found through one table.

Each module in ``KINDS`` has ``detect(config) -> bool`` and an ``Adapter`` class (see
``base.py`` for its interface). To add a kind, write ``kinds/<kind>.py`` and add one
row here, before the kinds whose detection it would otherwise match.

Stdlib only, Python >= 3.8.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from .base import ConfigError

#: (kind name, module in this package), tried in order by ``detect_kind``
KINDS = (
    ("modelarts", "modelarts"),
    ("predictor", "predictor"),
    ("file_contract", "file_contract"),
)

#: where config.json may live, relative to the package directory, in lookup order
CONFIG_LOCATIONS = ("config.json", os.path.join("model", "config.json"))
#: entries a zip tool adds that are not package content
_NOISE = ("__MACOSX", ".DS_Store")


def _bases(package_dir: str) -> list[str]:
    """The package directory, then its only folder when it holds nothing else (a zip of a
    folder rather than of its contents)."""
    try:
        entries = [e for e in os.listdir(package_dir) if e not in _NOISE]
    except OSError:
        return [package_dir]
    if len(entries) == 1:
        inner = os.path.join(package_dir, entries[0])
        if os.path.isdir(inner) and not os.path.islink(inner):
            return [package_dir, inner]
    return [package_dir]


def _locate(package_dir: str) -> str | None:
    for base in _bases(package_dir):
        for rel in CONFIG_LOCATIONS:
            path = os.path.join(base, rel)
            if os.path.isfile(path):
                return path
    return None


def kind_names() -> list[str]:
    return [name for name, _ in KINDS]


def _module(kind: str) -> Any:
    for name, module in KINDS:
        if name == kind:
            return importlib.import_module("." + module, __name__)
    raise ConfigError(f"unknown package kind {kind!r}; known kinds: {', '.join(kind_names())}")


def find_config(package_dir: str) -> tuple[str, dict[str, Any]]:
    """``(directory holding config.json, parsed config)``; ConfigError when absent or bad."""
    path = _locate(package_dir)
    if path is None:
        raise ConfigError(f"no config.json in {package_dir} (looked for "
                          f"{', '.join(CONFIG_LOCATIONS)})")
    rel = os.path.relpath(path, package_dir)
    try:
        with open(path, encoding="utf-8-sig") as f:
            config = json.load(f)
    except ValueError as exc:
        raise ConfigError(f"{rel} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{rel} must hold a JSON object")
    return os.path.dirname(path), config


def config_root(package_dir: str) -> str:
    """The directory config.json is in (the package directory when there is none)."""
    path = _locate(package_dir)
    return os.path.dirname(path) if path is not None else package_dir


def detect_kind(config: dict[str, Any]) -> str:
    for name, _ in KINDS:
        if _module(name).detect(config):
            return name
    raise ConfigError(
        "config.json matches no package kind: a predictor package sets "
        '"predictor": "module:Class"; a file-contract package sets "entrypoint", '
        '"input" and "output"'
    )


def load_adapter(package_dir: str, config: dict[str, Any] | None = None,
                 kind: str | None = None) -> Any:
    """The adapter for the package (not yet set up). ``config`` overrides config.json."""
    if config is None:
        root, config = find_config(package_dir)
    else:
        root = config_root(package_dir)
    name = kind or detect_kind(config)
    adapter = _module(name).Adapter(root, config)
    adapter.kind = name
    return adapter
