"""The platform's own components in `modelport status`: state, pid, restarts, last crash.

From `GET /api/v1/platform/components` (what the launcher recorded, modelport/supervision.py).
When the gateway itself does not answer and the platform was found on this machine
(modelport/discovery.py: its home's record or the per-user pointer), the same record is read
from the home's run dir instead, so a crash-looping gateway still shows why it crashes.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import httpx
from rich.table import Table

from modelport import supervision
from modelport.cli.output import out
from modelport.client import Client
from modelport.errors import ModelportError
from modelport.home import HomeLayout


def fetch(client: Client) -> tuple[dict[str, Any] | None, str]:
    """The components record and where it came from ("" and None when there is none to
    show: no credential for it, or an older gateway without the route)."""
    try:
        return client._json("GET", "/api/v1/platform/components"), "gateway"
    except httpx.TransportError:
        if client.platform.how not in ("home", "pointer"):
            return None, ""
        doc = supervision.read(HomeLayout(client.platform.home).run)
        if not doc["supervised"]:
            return None, ""
        return doc, f"read from {supervision.path(HomeLayout(client.platform.home).run)}"
    except ModelportError:  # 403 for a non-admin key, 404 from an older gateway
        return None, ""


def _when(ts: float, now: float) -> str:
    if not ts:
        return "-"
    ago = max(0, int(now - ts))
    span = (f"{ago}s" if ago < 120 else f"{ago // 60}m" if ago < 7200
            else f"{ago // 3600}h" if ago < 172800 else f"{ago // 86400}d")
    return f"{datetime.datetime.fromtimestamp(ts).strftime('%H:%M:%S')} ({span} ago)"


def render(doc: dict[str, Any], source: str) -> None:
    """A table of the components, then one line per component that crashed: the last
    crash's reason, the error its log had and the log's path (what to open next)."""
    now = time.time()
    launcher = doc.get("launcher") or {}
    state = "running" if launcher.get("running") else "not running"
    print(f"platform components (launcher pid {launcher.get('pid', '?')}, {state}, up since "
          f"{_when(launcher.get('started_at', 0), now)})"
          + (f" [{source}]" if source != "gateway" else ""))
    table = Table("COMPONENT", "STATE", "PID", "SINCE", "RESTARTS", "LAST CRASH")
    for c in doc["components"]:
        crash = c.get("last_crash")
        table.add_row(c["name"], c["state"], str(c.get("pid") or "-"),
                      _when(c.get("started_at", 0), now) if c["state"] == "running" else "-",
                      str(c.get("restarts", 0)),
                      _when(crash["at"], now) if crash else "-")
    out.print(table)
    for c in doc["components"]:
        crash = c.get("last_crash")
        if c["state"] not in ("running", "stopped") and c.get("detail"):
            print(f"  {c['name']} is {c['state']}: {c['detail']}")
        if crash:
            print(f"  {c['name']} last crash {_when(crash['at'], now)}: {crash['reason']} after "
                  f"{crash['uptime_s']:g}s up"
                  + (f"; error: {crash['error']}" if crash.get("error") else "")
                  + (f" (log: {c['log']})" if c.get("log") else "")
                  + (f"; {c['crash_count']} crashes since `up`" if c.get("crash_count", 0) > 1
                     else ""))
    print()
