"""When the watch thread reads the socket: only while one model call runs long.

The worker's main thread reads frames whenever no model code runs. A call that lasts
longer than ``WATCH_INTERVAL_S`` (or one expected to be long: setup, a batch, a stream)
gets a second reader, the watch thread, so ``health``, ``cancel``, ``credit`` and the
runtime's going away are seen meanwhile (``Shim._serve_call`` does the reading). A
short call never wakes it: it only looks every interval, and after ``PARK_AFTER_S``
without a call it sleeps until the next call starts.

Stdlib only, Python >= 3.8.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

#: how often the watch thread looks whether model code is still in the same call; a call
#: this long gets a reader for health, cancel, credit and shutdown within one more interval
WATCH_INTERVAL_S = 0.02
#: after this long with no model call, the watch thread sleeps until the next call starts
PARK_AFTER_S = 1.0


class CallWatch:
    """The model calls as the watch thread sees them: how many began, whether one runs."""

    def __init__(self) -> None:
        #: calls into model code so far, and whether one is running
        self.calls = 0
        self.in_call = False
        #: released to wake the watch thread at once (held otherwise)
        self._kick = threading.Lock()
        self._kick.acquire()
        self._park_lock = threading.Lock()
        self.parked = False

    def enter(self, release: Callable[[], None], watch_now: bool = False) -> None:
        """Model code is about to run: ``release()`` lets the watch thread read from
        then on (at once when ``watch_now``: a call expected to be long)."""
        self.calls += 1
        self.in_call = True
        release()
        if watch_now or self.parked:
            self.wake()

    def leave(self) -> None:
        self.in_call = False

    def wake(self) -> None:
        with self._park_lock:
            self.parked = False
            try:
                self._kick.release()
            except RuntimeError:  # a wake-up is already pending
                pass

    def loop(self, serve_call: Callable[[int], bool]) -> None:
        """The watch thread: ``serve_call(n)`` reads while call number n runs long (False
        once the runtime is gone, which ends the thread); costs nothing per short call."""
        seen = -1  # the call running at the last look, -1 for none
        last_calls, last_active = 0, time.monotonic()
        while True:
            kicked = self._kick.acquire(True, -1 if self.parked else WATCH_INTERVAL_S)
            calls, in_call = self.calls, self.in_call
            if in_call and (kicked or calls == seen):
                if not serve_call(calls):
                    return
                seen = -1
            else:
                seen = calls if in_call else -1
            now = time.monotonic()
            if in_call or calls != last_calls:
                last_calls, last_active = calls, now
            elif now - last_active > PARK_AFTER_S and not self.parked:
                with self._park_lock:
                    self.parked = True
                # enter() sets in_call, then reads parked: one of us sees the other's
                # write, so a call that began meanwhile is never missed
                if self.in_call or self.calls != last_calls:
                    self.wake()
