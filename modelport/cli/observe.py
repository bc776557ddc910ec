"""Monitoring commands: `modelport top` (a live view of all services) and `modelport logs`.

`top` polls `GET /api/v1/stats` and redraws a rich table: phase, replicas, RPS, errors
and latency percentiles over the last minute. `logs` streams
`GET /api/v1/services/{name}/logs` (replica output, access or error log).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from modelport.cli.output import JsonOpt, UrlOpt, fail, out
from modelport.client import DEFAULT_URL, Client
from modelport.errors import ModelportError


def _ms(value: Any) -> str:
    return "-" if value is None else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def stats_table(data: dict[str, Any], window: str = "1m") -> Table:
    """One row per service: what `top` draws."""
    table = Table("SERVICE", "PHASE", "VERSION", "READY", f"RPS {window}", f"CALLS {window}",
                  "FAILED", "ERR %", "P50 ms", "P90 ms", "P99 ms", "IN-FLIGHT", "TOTAL",
                  title=f"modelport top  {time.strftime('%H:%M:%S')}  (latency at the "
                        f"gateway, last {window})", title_justify="left")
    for s in data.get("services", []):
        w = s["windows"][window]
        lat = w["latency_ms"]
        table.add_row(s["service"], s.get("phase", ""), str(s.get("serving_version") or "-"),
                      f"{s.get('ready_replicas', 0)}/{s.get('desired_replicas', 0)}",
                      f"{w['rps']:.2f}", str(w["calls"]), str(w["failed"]),
                      f"{100 * w['error_rate']:.1f}", _ms(lat["p50"]), _ms(lat["p90"]),
                      _ms(lat["p99"]), str(s.get("in_flight", 0)), str(s["total"]["calls"]))
    if not data.get("services"):
        table.add_row("(no services)", *[""] * 12)
    return table


def top(url: UrlOpt = DEFAULT_URL,
        interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 1.0,
        window: Annotated[str, typer.Option(help="1m, 5m or 15m")] = "1m",
        iterations: Annotated[int, typer.Option(
            help="stop after this many refreshes (0: until Ctrl-C)")] = 0,
        once: Annotated[bool, typer.Option(help="print one table and exit")] = False,
        as_json: JsonOpt = False) -> None:
    """A live view of every service: traffic, errors, latency, replicas (Ctrl-C quits)."""
    if window not in ("1m", "5m", "15m"):
        fail(ValueError(f"--window {window!r}: use 1m, 5m or 15m"), as_json)
    with Client(url) as client:
        try:
            if once or as_json:
                data = client.stats()
                if as_json:
                    print(json.dumps(data, indent=2))
                else:
                    out.print(stats_table(data, window))
                return
            from rich.live import Live

            count = 0
            with Live(stats_table(client.stats(), window), console=out,
                      refresh_per_second=4, screen=False) as live:
                while True:
                    count += 1
                    if iterations and count >= iterations:
                        break
                    time.sleep(interval)
                    live.update(stats_table(client.stats(), window))
        except KeyboardInterrupt:
            pass
        except (ModelportError, OSError) as exc:
            fail(exc, as_json)
        except Exception as exc:  # httpx transport errors: the gateway went away
            fail(exc, as_json)


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
         url: UrlOpt = DEFAULT_URL, as_json: JsonOpt = False) -> None:
    """Print a service's logs: what the model printed, or its access/error log."""
    with Client(url) as client:
        try:
            for line in client.logs(name, replica=replica, since=since, tail=tail,
                                    follow=follow, kind=kind, as_json=as_json):
                print(line, flush=True)
        except KeyboardInterrupt:
            pass
        except ModelportError as exc:
            fail(exc, as_json)


def register(app: typer.Typer) -> None:
    app.command()(top)
    app.command()(logs)
