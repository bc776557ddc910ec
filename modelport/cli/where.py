"""`modelport where`: which platform the client commands talk to, how it was found
(modelport/discovery.py), which credential they send, and whether it answers.

Exit status 0 when its gateway answers `/health`, 1 (with the reason and the fix) when not,
so a script can wait on it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
import typer

from modelport.cli.failures import unreachable
from modelport.cli.output import JsonOpt, UrlOpt
from modelport.client import Client


def where(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Show which platform client commands use (URL, home) and how it was found."""
    with Client(url, timeout=5.0) as client:
        found = client.platform
        error = None
        try:
            client.http.get("/health").raise_for_status()
        except httpx.TransportError as exc:
            error = unreachable(exc, found)
        except httpx.HTTPStatusError as exc:
            error = f"GET /health answered {exc.response.status_code}"
        data: dict[str, Any] = {**found.to_dict(), "token_source": client.token_source,
                                "answering": error is None}
    if error is not None:
        data["error"] = (error.to_dict() if not isinstance(error, str)
                         else {"code": "gateway.unhealthy", "message": error})
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        # plain print: paths stay on one line, whatever the terminal's width
        print(f"platform: {found.url} ({'answering' if error is None else 'not answering'})\n"
              f"home:     {found.home}\nfound:    {found.detail}"
              + (f" (pid {found.pid})" if found.pid else "")
              + f"\ntoken:    {client.token_source}")
        if error is not None:
            sys.stdout.flush()
            print(f"error: {error}", file=sys.stderr)
    if error is not None:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(where)
