"""Bounded timing loops: call something back to back for a given time, keep each latency.

Loops end on time, never on a count, so a slow or stuck path cannot make a run endless.
Only the call is timed: checking its answer (``record``) happens outside the timed span.
A warm-up pass runs the same loop first and is thrown away (``warm_then_measure``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from harness.processes import CpuProbe

T = TypeVar("T")
clock = time.perf_counter_ns


@dataclass
class Stats:
    """One measured row: latencies, errors, and what the processes spent meanwhile."""

    name: str
    concurrency: int
    latencies_ns: list[int] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: int = 0
    # from the gateway's response metadata, per request (ms); empty for other rows
    gw_duration_ms: list[float] = field(default_factory=list)
    worker_ms: list[float] = field(default_factory=list)
    # CPU seconds each process spent during the measured phase (see CpuProbe)
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def ms(self) -> np.ndarray:
        return np.asarray(self.latencies_ns, dtype=np.float64) / 1e6

    @property
    def n(self) -> int:
        return len(self.latencies_ns)

    def pct(self, q: float) -> float:
        return float(np.percentile(self.ms, q)) if self.n else float("nan")

    @property
    def rps(self) -> float:
        return self.n / self.elapsed_s if self.elapsed_s else float("nan")


def timed_loop(call: Callable[[], T], seconds: float,
               record: Callable[[int, T], None]) -> float:
    """``call()`` back to back for ``seconds``; ``record(latency_ns, result)`` after each,
    untimed. Returns the wall seconds the loop took."""
    start = clock()
    end = start + int(seconds * 1e9)
    t0 = start
    while t0 < end:
        out = call()
        t1 = clock()
        record(t1 - t0, out)
        t0 = clock()
    return (t0 - start) / 1e9


async def concurrent_loop(call: Callable[[], Awaitable[T]], concurrency: int, seconds: float,
                          record: Callable[[int, T], None]) -> float:
    """``concurrency`` tasks, each awaiting ``call()`` back to back for ``seconds``."""
    start = clock()
    end = start + int(seconds * 1e9)

    async def worker() -> None:
        while clock() < end:
            t0 = clock()
            out = await call()
            record(clock() - t0, out)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (clock() - start) / 1e9


def warm_then_measure(name: str, concurrency: int, seconds: float, warmup: float,
                      probe: CpuProbe, run: Callable[[Stats, float], float]) -> Stats:
    """Two passes of ``run(stats, duration) -> elapsed s``: ``warmup`` s thrown away, then
    ``seconds`` s measured, with the CPU each process used during it."""
    for duration in (warmup, seconds):  # the last pass is the measured one
        stats = Stats(name, concurrency)
        probe.start()
        stats.elapsed_s = run(stats, duration)
        stats.cpu_s = probe.stop()
    return stats


def latencies_ms(call: Callable[[], object], seconds: float, warmup: float) -> np.ndarray:
    """Latencies (ms) of sequential calls for ``seconds`` after ``warmup``."""
    out: list[int] = []
    timed_loop(call, warmup, lambda ns, _: None)
    timed_loop(call, seconds, lambda ns, _: out.append(ns))
    return np.asarray(out, dtype=np.float64) / 1e6
