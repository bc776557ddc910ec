"""Steady, bounded concurrent load against a service, recording every answer.

``Load`` runs ``workers`` threads that each send one request after another (real HTTP to
the gateway) until stopped or ``max_s`` passed, so a test can do something under load and
then check that every request got an answer, and which. ``frozen()`` holds the load still
around something (a SIGKILL) so that the requests it can cost are exactly known.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Answer:
    status: int
    version: str
    body: Any
    #: the request's place in the order they were sent, from 1 (``Load.sent``)
    seq: int = 0


@dataclass
class Load:
    url: str
    body: dict[str, Any]
    workers: int = 4
    max_s: float = 120.0
    headers: dict[str, str] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: requests sent so far, and those not answered yet; while ``_frozen``, no worker sends
    _sent: int = 0
    _in_flight: int = 0
    #: the seq of each request in ``errors`` (no answer at all)
    _error_seqs: list[int] = field(default_factory=list)
    _frozen: bool = False
    _moved: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._moved = threading.Condition(self._lock)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_s
        with httpx.Client(timeout=90) as http:
            while not self._stop.is_set() and time.monotonic() < deadline:
                with self._lock:
                    while self._frozen and not self._stop.is_set():
                        self._moved.wait(0.1)
                    if self._stop.is_set():
                        break
                    self._in_flight += 1
                    self._sent += 1
                    seq = self._sent
                try:
                    r = http.post(self.url, json=self.body, headers=self.headers)
                    try:
                        body = r.json()
                    except ValueError:
                        body = r.text
                    answer = Answer(r.status_code, r.headers.get("x-model-version", ""), body,
                                    seq)
                except httpx.HTTPError as exc:  # no answer at all: the worst outcome
                    with self._lock:
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                        self._error_seqs.append(seq)
                        self._in_flight -= 1
                    continue
                with self._lock:
                    self.answers.append(answer)
                    self._in_flight -= 1

    @contextlib.contextmanager
    def frozen(self) -> Iterator[int]:
        """Hold the load still: while the block runs no worker sends a new request (the
        ones in flight go on). Yields how many were in flight as it began; that number can
        only fall inside the block, so a kill done there meets at most that many. The
        requests sent after the block are those after ``sent()`` read inside it
        (``failed_after``)."""
        with self._lock:
            self._frozen = True
            in_flight = self._in_flight
        try:
            yield in_flight
        finally:
            with self._lock:
                self._frozen = False
                self._moved.notify_all()

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(self.workers)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(120)

    def sent(self) -> int:
        """How many requests were sent so far (each one's ``seq`` is at most this)."""
        with self._lock:
            return self._sent

    def failed_after(self, seq: int) -> list[str]:
        """The failures (non-200 answers, no answer) of the requests sent after the first
        ``seq``."""
        with self._lock:
            return [f"{a.status}: {a.body}" for a in self.answers
                    if a.seq > seq and a.status != 200] + [
                e for e, n in zip(self.errors, self._error_seqs, strict=True) if n > seq]

    def count(self) -> int:
        with self._lock:
            return len(self.answers)

    def wait_for(self, n: int, timeout: float = 60) -> None:
        """Until ``n`` more answers came in (the load is really flowing)."""
        target = self.count() + n
        deadline = time.monotonic() + timeout
        while self.count() < target:
            assert time.monotonic() < deadline, f"load stalled at {self.count()} answers"
            time.sleep(0.05)

    def failures(self) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.status != 200]

    def versions(self) -> Counter[str]:
        with self._lock:
            return Counter(a.version for a in self.answers if a.status == 200)


def wait_until(check: Callable[[], Any], timeout: float = 120, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.2)
