"""Assemble a watcher from command-line choices: `modelport watch`, `modelport diff` and
the component `modelport up --config PATH` supervises (`python -m services.watcher`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path

import httpx

from modelport.errors import ModelportError, invalid
from services import telemetry
from services.telemetry import tracing
from services.watcher.loop import Watcher
from services.watcher.platform import Platform
from services.watcher.source import GitSource
from services.watcher.sync import Syncer, SyncResult

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}


def parse_interval(text: str) -> float:
    """`30s`, `2m`, `500ms`, `1h` or plain seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|)\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise invalid("gitops.interval_invalid", f"interval {text!r} is not a duration",
                      "write it like 30s, 2m or 500ms")
    return float(m.group(1)) * _UNITS[m.group(2)]


def default_cache() -> Path:
    base = os.environ.get("MODELPORT_HOME") or os.environ.get("XDG_CACHE_HOME") or str(
        Path.home() / ".cache")
    return Path(base) / "gitops"


def make_source(path: str | None, repo: str = "", branch: str = "", subpath: str = "",
                worktree: bool = False, cache: str = "") -> GitSource:
    if repo:
        if worktree:
            raise invalid("gitops.worktree_remote", "--worktree needs a local work tree",
                          "drop --worktree, or watch a local PATH")
        return GitSource.remote(repo, branch, Path(cache) if cache else default_cache(),
                                subpath or (path or ""))
    if not path:
        raise invalid("gitops.path_missing", "no PATH or --repo given",
                      "pass the directory with service YAML, or --repo URL --branch B")
    return GitSource.local(Path(path), branch, worktree)


def describe(result: SyncResult) -> str:
    text = result.summary()
    if result.uncommitted and not result.commit.endswith("+worktree"):
        text += (f"\n  uncommitted changes (not applied; commit them, or use --worktree): "
                 f"{', '.join(result.uncommitted)}")
    for note in result.notes:
        text += f"\n  note: {note}"
    return text


def failed(exc: Exception, url: str) -> str:
    """A sync that got no answer it could use, said in one line (no traceback)."""
    if isinstance(exc, httpx.TransportError):
        return (f"sync failed: cannot reach the platform at {url}: {exc or type(exc).__name__}"
                " (is `modelport up` running?); nothing of the commit was applied")
    if isinstance(exc, ModelportError):
        return f"sync failed: {' '.join(str(exc).split())}; nothing of the commit was applied"
    return f"sync failed: {exc}"


def run(source: GitSource, url: str, interval: float, prune: bool | None, once: bool,
        as_json: bool = False, stop: threading.Event | None = None,
        kill_after_writes: int = 0) -> int:
    """Sync until stopped (SIGINT/SIGTERM); `once` syncs one time and exits 1 on failure.
    ``kill_after_writes`` is fault injection for tests (platform.py)."""
    tracing.configure("watcher")  # OTEL_* set: each sync is a trace (also for `modelport watch`)
    platform = Platform(url, kill_after_writes=kill_after_writes)

    def say(result: SyncResult) -> None:
        if as_json:
            print(json.dumps({"commit": result.commit, "applied": result.applied,
                              "changes": [c.to_dict() for c in result.changes],
                              "failures": [f.__dict__ for f in result.failures],
                              "errors": result.errors, "notes": result.notes,
                              "uncommitted": result.uncommitted}), flush=True)
        else:
            print(describe(result), flush=True)

    syncer = Syncer(source, platform, prune)
    if once:
        try:
            result = syncer.sync()
        except (ModelportError, httpx.HTTPError, OSError, RuntimeError) as exc:
            print(failed(exc, platform.url), file=sys.stderr, flush=True)
            return 1
        finally:
            platform.close()
        say(result)
        return 0 if result.ok else 1
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    print(f"watching {source.id} ({'working tree' if source.worktree else 'commits'}) -> "
          f"{platform.url}, every {interval:g}s", flush=True)

    def error(exc: Exception) -> None:
        print(f"{failed(exc, platform.url)} (will retry)", file=sys.stderr, flush=True)

    Watcher(syncer, interval, on_result=say, on_error=error).run(stop)
    platform.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m services.watcher",
                                 description="GitOps watcher (what `modelport watch` runs)")
    ap.add_argument("path", nargs="?")
    ap.add_argument("--repo", default="")
    ap.add_argument("--branch", default="")
    ap.add_argument("--subpath", default="")
    ap.add_argument("--url", default=os.environ.get("MODELPORT_URL", "http://127.0.0.1:8000"))
    ap.add_argument("--interval", default="30s")
    ap.add_argument("--worktree", action="store_true")
    ap.add_argument("--no-prune", action="store_true")
    ap.add_argument("--once", action="store_true")
    ap.add_argument("--cache", default="")
    # fault injection (tests, `make chaos`; docs/gitops.md): SIGKILL after N writes
    ap.add_argument("--fault-kill-after-writes", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    telemetry.setup("watcher")  # JSON logs; OTEL_* turns on sync traces
    logging.getLogger("httpx").setLevel(logging.WARNING)
    source = make_source(a.path, a.repo, a.branch, a.subpath, a.worktree, a.cache)
    return run(source, a.url, parse_interval(a.interval), False if a.no_prune else None,
               a.once, kill_after_writes=a.fault_kill_after_writes)
