"""The shared command line of a component process: `--home`, `--listen`, logging, asyncio.run."""

from __future__ import annotations

import argparse
import asyncio
import os
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
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(settings_cls(**values)))
    except KeyboardInterrupt:
        pass


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop (a loop iteration, a socket read, a call_soon cost about half of
    asyncio's, which the data plane pays several times per request); asyncio's when
    uvloop is missing or ``MODELPORT_EVENT_LOOP=asyncio``."""
    if os.environ.get("MODELPORT_EVENT_LOOP", "uvloop") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
