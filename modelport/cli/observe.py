"""Monitoring commands: `modelport top` (a live view of all services) and `modelport logs`.

`top` polls `GET /api/v1/stats` and redraws a rich table that fits 80 columns: phase,
replicas, RPS, calls, failures, median and p99 latency, in flight over the last minute.
`logs` streams `GET /api/v1/services/{name}/logs` (replica output, access or error log).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from modelport.cli.output import JsonOpt, UrlOpt, answered, fail, out
from modelport.client import Client
from modelport.errors import Kind, ModelportError


def _ms(value: Any) -> str:
    return "-" if value is None else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def _rate(value: float) -> str:
    """Requests/s in at most 6 characters (what an 80-column table leaves for it)."""
    return f"{value:.2f}" if value < 100 else (f"{value:.0f}" if value < 1e6 else f"{value:.1e}")


def stats_table(data: dict[str, Any], window: str = "1m") -> Table:
    """One row per service: what `top` draws, 80 columns wide (a cell is never cut; a
    name too long for its column wraps). The rest (error rate, P90, totals) is in
    `top --json` and `GET /api/v1/stats`."""
    table = Table(title=f"modelport top {time.strftime('%H:%M:%S')}  last {window}; P50/P99: "
                        "latency in ms at the gateway", title_justify="left", box=None,
                  padding=(0, 1, 0, 0), header_style="bold underline")
    table.add_column("SERVICE", overflow="fold", min_width=7)
    for name in ("PHASE", "VER", "READY", "RPS", "CALLS", "FAIL", "P50", "P99", "INFL"):
        table.add_column(name, no_wrap=True, justify="left" if name == "PHASE" else "right")
    for s in data.get("services", []):
        w = s["windows"][window]
        lat = w["latency_ms"]
        table.add_row(s["service"], s.get("phase", ""), str(s.get("serving_version") or "-"),
                      f"{s.get('ready_replicas', 0)}/{s.get('desired_replicas', 0)}",
                      _rate(w["rps"]), str(w["calls"]), str(w["failed"]),
                      _ms(lat["p50"]), _ms(lat["p99"]), str(s.get("in_flight", 0)))
    if not data.get("services"):
        table.add_row("(no services)", *[""] * 9)
    return table


def top(url: UrlOpt = None,
        interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 1.0,
        window: Annotated[str, typer.Option(help="1m, 5m or 15m")] = "1m",
        iterations: Annotated[int, typer.Option(
            help="stop after this many refreshes (0: until Ctrl-C)")] = 0,
        once: Annotated[bool, typer.Option(help="print one table and exit")] = False,
        as_json: JsonOpt = False) -> None:
    """A live view of every service: traffic, errors, latency, replicas (Ctrl-C quits)."""
    if window not in ("1m", "5m", "15m"):
        fail(ModelportError(Kind.INVALID, "cli.window", f"--window {window!r} is not a window",
                            "use 1m, 5m or 15m"), as_json)
    with Client(url) as client:

        def stats() -> dict[str, Any]:
            return answered(client.stats, as_json, client)

        try:
            if once or as_json:
                data = stats()
                if as_json:
                    print(json.dumps(data, indent=2))
                else:
                    out.print(stats_table(data, window))
                return
            from rich.live import Live

            count = 0
            with Live(stats_table(stats(), window), console=out,
                      refresh_per_second=4, screen=False) as live:
                while True:
                    count += 1
                    if iterations and count >= iterations:
                        break
                    time.sleep(interval)
                    live.update(stats_table(stats(), window))
        except KeyboardInterrupt:
            pass


def logs(name: Annotated[str, typer.Argument(help="service name")],
         replica: Annotated[str | None, typer.Option("--replica", "-r",
                                                     help="one replica's log")] = None,
         follow: Annotated[bool, typer.Option("--follow", "-f",
                                              help="keep printing new lines")] = False,
         since: Annotated[str | None, typer.Option(
             help="only lines newer than this: 10m, 2h, 1d, an ISO time")] = None,
         tail: Annotated[int | None, typer.Option(
             help="at most this many lines before following (default 200)")] = None,
         kind: Annotated[str, typer.Option(
             help="app (the model's output), access or error (the gateway's request log)")
         ] = "app",
         url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Print a service's logs: what the model printed, or its access/error log."""
    with Client(url) as client:

        def show() -> None:
            for line in client.logs(name, replica=replica, since=since, tail=tail,
                                    follow=follow, kind=kind, as_json=as_json):
                print(line, flush=True)

        try:
            answered(show, as_json, client)
        except KeyboardInterrupt:
            pass


def register(app: typer.Typer) -> None:
    app.command()(top)
    app.command()(logs)
