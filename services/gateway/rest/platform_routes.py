"""The platform's own processes under /api/v1/platform (admin only, rest/../auth/asgi.py).

- `GET /api/v1/platform/components`   each component `modelport up` supervises: its state,
  pid, restarts and last crashes (when, exit code or signal, the first error its log had)

The launcher writes what it did to `<run dir>/components.json` (modelport/supervision.py);
this route reads it, so it answers while the registry is away or crash-looping.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport import supervision


class PlatformApi:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    async def components(self, request: Request) -> Response:
        doc = await asyncio.to_thread(supervision.read, self.run_dir)
        return Response(orjson.dumps(doc), media_type="application/json")

    def routes(self) -> list[Route]:
        return [Route("/api/v1/platform/components", self.components, methods=["GET"])]
