"""`python -m services.builder --home DIR --listen ADDRESS`: run the builder."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from services import telemetry
from services.builder.server import serve
from services.builder.settings import BuilderSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.builder",
                                     description="modelport builder: cached virtualenvs")
    parser.add_argument("--home", help="platform home directory (MODELPORT_BUILDER_HOME)")
    parser.add_argument("--listen", help="unix:/path or host:port (default: home/run/builder.sock)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    telemetry.setup("builder")  # JSON logs; tracing before the gRPC server exists
    logging.getLogger().setLevel(args.log_level.upper())
    overrides: dict[str, Any] = {k: v for k, v in
                                 {"home": args.home, "listen": args.listen}.items() if v}
    try:
        settings = BuilderSettings.load(**overrides)
    except ValueError as exc:  # a bad MODELPORT_BUILDER_* value: say which, no traceback
        raise SystemExit(f"modelport-builder: {exc}") from None
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
