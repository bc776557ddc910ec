"""What every client command prints, and the options they all take.

A command's answer is JSON with ``--json`` (for scripts), else a line or a table for
people. Its failure is one ``{"error": {...}}`` object with ``--json``, else ``error: ...``
on stderr (unwrapped, so paths stay greppable), and exit status 1 either way; a
traceback only with the global ``--debug``. A command without ``--url`` talks to the
platform modelport/discovery.py finds.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Annotated, Any, NoReturn, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table

from modelport.cli.failures import explain
from modelport.client import Client, DeployFailed
from modelport.errors import ModelportError

T = TypeVar("T")

out = Console()
err = Console(stderr=True)

#: None when not given: the client then finds the platform (`modelport where` says which)
UrlOpt = Annotated[str | None, typer.Option(
    "--url", help="gateway URL (default: MODELPORT_URL, else the running platform; see "
    "`modelport where`)", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait",
                                       help="wait until the service answers")]


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    """The answer: ``data`` as JSON, or ``human`` (nothing when it is None)."""
    if as_json:
        print(json.dumps(data, indent=2))
    elif human is not None:
        out.print(human, highlight=False, markup=False)


#: set by the global --debug (inherited by the commands a command runs)
DEBUG_ENV = "MODELPORT_DEBUG"


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV) == "1"


def fail(exc: Exception, as_json: bool) -> NoReturn:
    """The command failed: say why (and how to fix it, which ModelportError carries)."""
    if debugging():
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, DeployFailed):
        data = {"error": {"code": "deploy.failed", "message": str(exc), "reason": exc.reason,
                          "service": exc.name,
                          "version": exc.version, "build_log_tail": exc.build_log_tail,
                          "service_removed": exc.removed}}
        text = f"error: {exc}"
        if exc.build_log_tail:
            text += f"\n--- build log (last lines) ---\n{exc.build_log_tail}"
        if exc.removed:
            text += (f"\nthe service was removed; version {exc.version} and its build log stay"
                     " inspectable (`modelport build-log MODEL VERSION`)")
    elif isinstance(exc, ModelportError):
        data = {"error": exc.to_dict()}
        text = f"error: {exc}"
        if rid := exc.details.get("request_id"):
            text += f"\nrequest id: {rid}"
    else:
        data = {"error": {"code": "client", "message": str(exc)}}
        text = f"error: {exc}"
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print(text, file=sys.stderr)
    raise typer.Exit(1)


def answered(action: Callable[[], T], as_json: bool, client: Client | None = None) -> T:
    """``action()``'s answer; a platform error, a failed deploy or an unreachable gateway
    ends the command through ``fail``, said as cli/failures.py says it for ``client``."""
    try:
        return action()
    except (httpx.TransportError, ModelportError, DeployFailed, OSError) as exc:
        fail(explain(exc, client), as_json)


def act(url: str | None, as_json: bool, call: Callable[[Client], T],
        say: Callable[[T], str]) -> None:
    """One request on a client of ``url``, its answer printed (``say(answer)`` for
    people): the whole of most client commands."""
    with Client(url) as client:
        data = answered(lambda: call(client), as_json, client)
    emit(data, as_json, say(data))


def listing(url: str | None, as_json: bool, call: Callable[[Client], list[dict[str, Any]]],
            columns: Sequence[str], row: Callable[[dict[str, Any]], Sequence[str]]) -> None:
    """A list command: the items as JSON, or a table of ``columns`` with ``row(item)``
    for each."""
    with Client(url) as client:
        items = answered(lambda: call(client), as_json, client)
    if as_json:
        emit(items, True)
        return
    table = Table(*columns)
    for item in items:
        table.add_row(*row(item))
    out.print(table)
