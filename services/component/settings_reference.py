"""docs/settings.md, rendered from the settings classes themselves so it cannot drift.

`python -m services.component.settings_reference` rewrites the page; tests/test_settings_doc.py
fails when the committed page differs from what this renders, or when the code reads a
`MODELPORT_*` variable the page does not name. Each component's settings come from its
class: pydantic `Field(description=...)` for registry, runtime and gateway, the attribute
docstrings of the builder's dataclass (read from its source, since Python keeps none).
"""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from services.builder import settings as builder_settings
from services.gateway.settings import GatewaySettings
from services.registry.settings import RegistrySettings
from services.runtime.settings import RuntimeSettings
from services.xds.settings import XdsSettings

PAGE = Path(__file__).resolve().parents[2] / "docs" / "settings.md"

#: variables read outside the components' settings classes: (name, who reads it, meaning)
OTHER = [
    ("MODELPORT_HOME", "CLI, SDK, `up`", "the platform home (default `~/.local/share/modelport`)"),
    ("MODELPORT_URL", "CLI, SDK", "the gateway to talk to (before the found platform; "
     "`modelport where`)"),
    ("MODELPORT_TOKEN", "CLI, SDK", "the credential to send (before a login or the home's "
     "admin token)"),
    ("MODELPORT_ACCESS_KEY, MODELPORT_SECRET_KEY", "CLI, SDK", "sign every request with this "
     "AK/SK pair instead (`docs/security.md`)"),
    ("MODELPORT_KEY", "the generated call examples", "the invoke key the curl and Python "
     "examples of an `auth.required` service send (`modelport keys create --scope "
     "invoke:NAME`)"),
    ("MODELPORT_RAY_ADDRESS", "`up`", "a Ray cluster (host:port) whose nodes run the "
     "replicas, a runtime per node, instead of a runtime here (`--ray`, docs/fleet.md)"),
    ("MODELPORT_ENVOY", "`up --envoy-port`", "the Envoy binary to run (default: `envoy` "
     "next to python, which `make venv` links from .venv-envoy, else on PATH; docs/xds.md)"),
    ("MODELPORT_ADMIN_TOKEN", "`up`, first start", "adopt this bootstrap admin token instead "
     "of making one"),
    ("MODELPORT_DEBUG", "CLI", "`1`: failures print their traceback (what `--debug` sets)"),
    ("MODELPORT_LOG_LEVEL, MODELPORT_LOG_FORMAT", "every component", "log level (INFO); "
     "`text` instead of JSON lines"),
    ("MODELPORT_EVENT_LOOP", "every component", "`asyncio` instead of uvloop"),
    ("MODELPORT_SERVICE, MODELPORT_VERSION, MODELPORT_REPLICA_ID", "the model's process",
     "set by the runtime: which replica this is"),
    ("MODELPORT_MEMORY_LIMIT, MODELPORT_MAX_OPEN_FILES, MODELPORT_MAX_PROCESSES, "
     "MODELPORT_NO_NEW_PRIVS, MODELPORT_READY_FD", "the model's process",
     "set by the runtime: the limits the worker applies to itself, its ready pipe"),
]


def _pydantic_rows(cls: type[BaseSettings]) -> list[tuple[str, str, str]]:
    prefix = cls.model_config.get("env_prefix", "")
    rows = []
    for name, info in cls.model_fields.items():
        shown = ("`MODELPORT_HOME`" if name == "home" else "required") if info.is_required() \
            else _shown(info.get_default(call_default_factory=False))
        rows.append((f"{prefix}{name.upper()}", shown, info.description or ""))
    return rows


def _builder_rows() -> list[tuple[str, str, str]]:
    tree = ast.parse(inspect.getsource(builder_settings.BuilderSettings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for stmt, after in zip(body, [*body[1:], None], strict=True):
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)):
            docs[stmt.target.id] = " ".join(str(after.value.value).split())
    defaults = {"home": "`MODELPORT_HOME`", "uv": "the uv beside Python, else on PATH",
                "python": "the builder's own"}
    rows = []
    for field in builder_settings.BuilderSettings.__dataclass_fields__.values():
        default = defaults.get(field.name) or _shown(field.default)
        rows.append((builder_settings.ENV_PREFIX + field.name.upper(), default,
                     docs.get(field.name, "")))
    return rows


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value >= 1024**2 and value % 1024**2 == 0:
        return f"{value // 1024**2} MiB" if value < 1024**3 else f"{value / 1024**3:g} GiB"
    return f"`{value}`" if not isinstance(value, (int, float)) else f"{value:g}"


def _table(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{v}` | {d} | {m.replace('|', '/')} |" for v, d, m in rows]
    return "\n".join(lines)


def render() -> str:
    parts = [
        "# Settings: every `MODELPORT_*` variable",
        "",
        "Generated from the settings classes by `python -m services.component.settings_reference`"
        " (tests/test_settings_doc.py keeps it current). `modelport up` passes its own flags"
        " (`--home`, ports) to each component; everything else is read from the environment"
        " of `modelport up`, which its components inherit.",
    ]
    for title, rows in (("Registry", _pydantic_rows(RegistrySettings)),
                        ("Builder", _builder_rows()),
                        ("Runtime", _pydantic_rows(RuntimeSettings)),
                        ("Gateway", _pydantic_rows(GatewaySettings)),
                        ("xDS server (`up --xds-port`, docs/xds.md)",
                         _pydantic_rows(XdsSettings))):
        parts += ["", f"## {title}", "", _table(rows)]
    parts += ["", "## Clients and every process", "",
              "| variable | read by | meaning |", "|---|---|---|"]
    parts += [f"| `{v}` | {who} | {m} |" for v, who, m in OTHER]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    PAGE.write_text(render())
    print(f"wrote {PAGE}", file=sys.stderr)
