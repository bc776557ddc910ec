"""The shared command line of a component process: `--home`, `--listen`, logging, asyncio.run."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from services import telemetry

S = TypeVar("S")


def run_component(name: str, settings_cls: Callable[..., S],
                  serve: Callable[[S], Awaitable[None]], extra: dict[str, Any] | None = None
                  ) -> None:
    parser = argparse.ArgumentParser(prog=f"modelport-{name}")
    parser.add_argument("--home", required=True)
    parser.add_argument("--listen", default="")
    for flag, default in (extra or {}).items():
        parser.add_argument(f"--{flag.replace('_', '-')}", dest=flag, default=default)
    args = parser.parse_args()
    telemetry.setup(name)  # JSON logs; tracing before any gRPC server or channel exists
    values = {k: v for k, v in vars(args).items() if v not in ("", None)}
    try:
        asyncio.run(serve(settings_cls(**values)))
    except KeyboardInterrupt:
        pass
