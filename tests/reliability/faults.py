"""What the fault tests (issue 18) and `make chaos` (bench/chaos.py) share: the packages they
deploy, the pid of the worker answering, and a steady load that records when each request
was sent and how it ended."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

#: answers with its worker's pid, so a test sees which process answered
PID_ECHO = """
import os

class Predictor:
    def predict(self, text):
        return {"echo": text, "pid": os.getpid()}
"""


def package(dest: Path, name: str, code: str = PID_ECHO, **config: Any) -> Path:
    """A predictor package (``text`` in) with extra config.json fields (``timeout_s``,
    ``health``, ...)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps({
        "name": name, "predictor": "predict:Predictor",
        "input": [{"name": "text", "type": "text"}], **config}))
    (dest / "predict.py").write_text(code)
    return dest


def answering_pid(url: str, timeout: float = 120.0) -> int:
    """The pid of the worker that answers ``url`` (a PID_ECHO service); 0 when the
    request failed (the test's wait goes on)."""
    try:
        r = httpx.post(url, json={"text": "pid"}, timeout=timeout)
    except httpx.HTTPError:
        return 0
    return int(r.json()["data"]["pid"]) if r.status_code == 200 else 0


@dataclass
class Outcome:
    sent: float
    done: float
    status: int  # 0: no HTTP answer at all
    code: str  # the error's code ("" for a 200)
    body: Any = None


@dataclass
class Steady:
    """``clients`` threads, each sending one request after another to ``url`` until
    stopped; every outcome is kept with when it was sent and when it ended."""

    url: str
    body: dict[str, Any]
    clients: int = 4
    timeout_s: float = 60.0
    headers: dict[str, str] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as http:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    r = http.post(self.url, json=self.body, headers=self.headers)
                    try:
                        body = r.json()
                    except ValueError:
                        body = r.text
                    code = "" if r.status_code == 200 else (
                        body.get("error", {}).get("code", "") if isinstance(body, dict) else "")
                    o = Outcome(sent, time.monotonic(), r.status_code, code, body)
                except httpx.HTTPError as exc:
                    o = Outcome(sent, time.monotonic(), 0, type(exc).__name__)
                    time.sleep(0.05)  # a refused connection would otherwise spin
                with self._lock:
                    self.outcomes.append(o)

    def __enter__(self) -> Steady:
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout_s + 10)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def wait_answers(self, n: int, timeout: float = 60.0, after: float = 0.0) -> None:
        """Until ``n`` requests sent after ``after`` (monotonic) answered 200."""
        deadline = time.monotonic() + timeout
        while sum(o.status == 200 and o.sent >= after for o in self.snapshot()) < n:
            assert time.monotonic() < deadline, (
                f"fewer than {n} answers in {timeout:g}s; last outcomes: "
                f"{[(o.status, o.code) for o in self.snapshot()[-8:]]}")
            time.sleep(0.05)

    def recovered_at(self, fault_at: float) -> float | None:
        """When the first request sent after the fault was answered 200 (None: none yet)."""
        ok = [o.done for o in self.snapshot() if o.sent >= fault_at and o.status == 200]
        return min(ok) if ok else None

    def failed(self) -> list[Outcome]:
        return [o for o in self.snapshot() if o.status != 200]
