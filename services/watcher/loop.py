"""When to sync: at once on a new commit (watchdog on the refs), on a saved file, on a
webhook (a long poll on the gateway), and every `interval` as the fallback that also
catches drift. Triggers only set a flag; the loop re-reads everything each pass, so a
burst of events costs one sync and a missed event costs at most one interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from services.watcher.sync import Syncer, SyncResult

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.2
WEBHOOK_POLL_S = 5.0


class _Kick(FileSystemEventHandler):
    """Sets the trigger for ref updates and for files saved in the work tree; ignores git's
    own bookkeeping (index, objects, logs) so `git status` cannot wake the loop."""

    def __init__(self, git_dir: Path, kick: threading.Event) -> None:
        self.git_dir = str(git_dir.resolve())
        self.kick = kick

    def _relevant(self, path: str) -> bool:
        if path.startswith(self.git_dir + "/") or path == self.git_dir:
            rel = path[len(self.git_dir) + 1:]
            return rel in ("HEAD", "packed-refs") or rel.startswith("refs/heads/")
        if "/.git/" in path or path.endswith("/.git") or "/__pycache__" in path:
            return False
        return True

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "") or ""]
        if any(p and self._relevant(str(p)) for p in paths):
            self.kick.set()


class Watcher:
    def __init__(self, syncer: Syncer, interval: float = 30.0,
                 on_result: Callable[[SyncResult], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None,
                 webhooks: bool = True) -> None:
        self.syncer = syncer
        self.interval = interval
        self.on_result = on_result or (lambda r: None)
        self.on_error = on_error or (lambda e: log.warning("sync failed: %s", e))
        self.webhooks = webhooks
        self.kick = threading.Event()
        self.syncs = 0

    def _listen_webhooks(self, stop: threading.Event) -> None:
        platform, source = self.syncer.platform, self.syncer.source.id
        seen = -1
        while not stop.is_set():
            try:
                n = platform.wait_sync(source, max(seen, 0), 0 if seen < 0 else WEBHOOK_POLL_S)
                if seen >= 0 and n > seen:
                    log.info("webhook: sync requested")
                    self.kick.set()
                seen = n
            except Exception as exc:  # the platform may be restarting; keep listening
                log.debug("webhook long poll: %s", exc)
                stop.wait(2.0)

    def run(self, stop: threading.Event) -> None:
        """Sync now, then on every trigger, until `stop` is set. Never raises for a sync."""
        observer = Observer()
        for path, recursive in self.syncer.source.watch_paths():
            observer.schedule(_Kick(self.syncer.source.git_dir, self.kick), str(path),
                              recursive=recursive)
        observer.start()
        if self.webhooks:
            threading.Thread(target=self._listen_webhooks, args=(stop,), daemon=True,
                             name="gitops-webhooks").start()
        stopper = threading.Thread(target=lambda: (stop.wait(), self.kick.set()), daemon=True)
        stopper.start()
        backoff = 1.0
        try:
            while not stop.is_set():
                self.kick.clear()
                try:
                    self.on_result(self.syncer.sync())
                    backoff = 1.0
                    wait = self.interval
                except Exception as exc:  # a bad sync never stops the watcher
                    self.on_error(exc)
                    wait = min(backoff, self.interval)
                    backoff = min(backoff * 2, 30.0)
                self.syncs += 1
                self.kick.wait(wait)
                if stop.is_set():
                    break
                time.sleep(DEBOUNCE_S)  # let the rest of a burst (lock, rename, reflog) land
        finally:
            observer.stop()
            observer.join(timeout=5)
