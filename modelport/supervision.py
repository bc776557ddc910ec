"""What the launcher's supervision did: ``<run dir>/components.json``.

`modelport up` restarts a registry, builder, runtime, gateway or watcher that dies, usually
within seconds, so a crash the launcher healed would leave no trace a user sees. The
launcher therefore records, per component, its state, pid, when it started, how many
times it was restarted and its last crashes (when, the exit code or the signal, how long
it had run, the first error line its log had since it started, and the log's path).
``modelport status`` and ``GET /api/v1/platform/components`` (the gateway) read it.

Written by the launcher on every start, exit and failed restart, each time as a whole new
file renamed over the old one, so a reader never sees half of one; a write that fails (the
home's disk is full) is skipped: supervising matters more than the record. Standard
library only: the launcher imports it and stays slim (modelport/launcher.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

FILE = "components.json"
#: crashes kept per component (newest last)
KEEP_CRASHES = 10
#: bytes of a component's log read to find why it died (its own start's part, from the end)
_LOG_WINDOW = 256 * 1024


def path(run: Path) -> Path:
    """The record of the platform whose run dir is ``run`` (HomeLayout.run)."""
    return run / FILE


def exit_reason(code: int | None) -> str:
    """``exited with code 1`` / ``killed by SIGKILL`` (a negative code is a signal)."""
    if code is None:
        return "running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def first_error(log: Path, offset: int = 0) -> str:
    """Why a component died, in one line, from its log since ``offset`` (where this start's
    output began): the first error-level JSON entry (what follows is usually fallout), else
    the last line that is not JSON (an uncaught exception's ``Type: message``), else ""
    (a SIGKILL leaves nothing)."""
    try:
        with log.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(offset, size - _LOG_WINDOW))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    plain = ""
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            if line.strip() and not line.startswith((" ", "\t")):
                plain = line.strip()
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
            return (str(entry.get("message", "")).splitlines() or ["an error"])[0][:500]
    return plain[:500]


def _load(run: Path) -> dict[str, Any]:
    """This launcher's record so far; a fresh one when the file is another launcher's."""
    try:
        doc = json.loads(path(run).read_text())
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("launcher"), dict) or \
            not isinstance(doc.get("components"), dict) or \
            doc["launcher"].get("pid") != os.getpid():
        doc = {"launcher": {"pid": os.getpid(), "started_at": time.time()}, "components": {}}
    return doc


def _write(run: Path, doc: dict[str, Any]) -> None:
    target = path(run)
    tmp = target.with_name(f".{FILE}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, target)
    except OSError:  # disk full, run dir gone: the next write tries again
        with contextlib.suppress(OSError):
            tmp.unlink()


def record(run: Path, name: str, event: str, *, pid: int = 0, restarts: int = 0,
           code: int | None = None, uptime_s: float = 0.0, log: Path | None = None,
           log_offset: int = 0, retry_in_s: float = 0.0, detail: str = "") -> None:
    """Note what happened to component ``name``; never raises.

    ``event``: ``running`` (it started and is ready, pid ``pid``), ``exited`` (it died
    with ``code``; the launcher restarts it in ``retry_in_s``) or ``failed`` (a restart
    did not come up: ``detail`` says why; the launcher keeps trying)."""
    try:
        doc = _load(run)
        now = time.time()
        comp = doc["components"].setdefault(name, {"name": name, "crashes": []})
        comp["restarts"] = restarts
        comp["log"] = str(log) if log is not None else comp.get("log", "")
        if event == "running":
            comp.update(state="running", pid=pid, started_at=now, detail="")
        elif event == "exited":
            crash = {"at": now, "exit_code": code, "reason": exit_reason(code),
                     "uptime_s": round(uptime_s, 1),
                     "error": first_error(log, log_offset) if log is not None else ""}
            comp["crashes"] = [*comp.get("crashes", []), crash][-KEEP_CRASHES:]
            comp["crash_count"] = comp.get("crash_count", 0) + 1
            comp.update(state="restarting", pid=0, restart_at=now + retry_in_s,
                        detail=f"{crash['reason']}; restarting in {retry_in_s:g}s")
        else:
            comp.update(state="failed", detail=detail[:500])
        _write(run, doc)
    except Exception:  # noqa: BLE001 - the record must never stop the supervision
        pass


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie the launcher has not reaped yet does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read(run: Path) -> dict[str, Any]:
    """The record as a reader shows it: ``supervised`` (a launcher wrote it), the launcher,
    and each component with ``state`` (running | restarting | failed | exited | stopped),
    ``pid``, ``alive``, ``started_at``, ``restarts``, ``crash_count``, ``last_crash``
    (or None) and ``crashes`` (newest last). States are checked against the processes: a
    component whose pid is gone is ``exited``, and all are ``stopped`` when the launcher
    is."""
    try:
        doc = json.loads(path(run).read_text())
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict):
        return {"supervised": False, "launcher": None, "components": [],
                "message": f"no record in {path(run)}: this platform was not started by "
                           "`modelport up`, or has not finished starting"}
    launcher = dict(doc.get("launcher") or {})
    launcher["running"] = _alive(int(launcher.get("pid") or 0))
    out = []
    for comp in (doc.get("components") or {}).values():
        comp = dict(comp)
        comp.setdefault("crashes", [])
        comp.setdefault("crash_count", len(comp["crashes"]))
        comp["last_crash"] = comp["crashes"][-1] if comp["crashes"] else None
        comp["alive"] = _alive(int(comp.get("pid") or 0))
        if not launcher["running"]:
            comp["state"] = "stopped"
            comp["alive"] = False
        elif comp.get("state") == "running" and not comp["alive"]:
            comp["state"] = "exited"
        comp.setdefault("detail", "")
        out.append(comp)
    return {"supervised": True, "launcher": launcher, "components": out}
