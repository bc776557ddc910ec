"""Modules a long-lived component needs only on some request paths, loaded on first use.

An idle platform should not keep what no idle path touches resident: the gateway's OIP
tensor codec, for one, brings numpy (about 10 MB) into a process that may never see an
OIP request. ``lazy_module`` returns the module object at once and executes it on first
attribute access (importlib's LazyLoader); a module already imported is returned as is.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """``name``, executed when an attribute of it is first read."""
    if (loaded := sys.modules.get(name)) is not None:
        return loaded
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:  # as an import would: `import a.b` then `a.b.x` works
        setattr(sys.modules[parent], child, module)
    loader.exec_module(module)
    return module
