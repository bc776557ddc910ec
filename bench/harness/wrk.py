"""wrk, the load generator of the suite: one run, and its ``--latency`` report parsed.

One client thread (``-t1``): on a small machine wrk shares the cores with the servers it
measures, and a second thread would take a core from them (bench/README.md). The request
comes from ``bench/wrk/post.lua``: body from a file, Content-Type and Authorization from the
environment, no per-response Lua hook.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from harness.paths import BENCH

WRK_SCRIPT = BENCH / "wrk" / "post.lua"
WRK_TIMEOUT = "10s"  # a request slower than this counts as a socket error (timeout)


@dataclass
class WrkResult:
    """What one wrk run reported (its text output, see parse_wrk)."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)

    def problems(self) -> str:
        """Why this run cannot be trusted ('' when it can)."""
        out = []
        if self.requests == 0:
            out.append("no request completed")
        if self.non2xx:
            out.append(f"{self.non2xx} non-2xx/3xx responses")
        errs = {k: v for k, v in self.socket_errors.items() if v}
        if errs:
            out.append("socket errors " + ", ".join(f"{k} {v}" for k, v in errs.items()))
        return "; ".join(out)


_TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def duration_ms(text: str) -> float:
    """A wrk duration (``207.00us``, ``9.76ms``, ``1.02s``, ``1.50m``) in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _TIME_UNITS_MS[m.group(2)]


def parse_wrk(text: str) -> WrkResult:
    """Parse wrk's ``--latency`` report: percentiles, totals, Non-2xx and socket errors.

    Raises ValueError naming the missing part when the text is not such a report (for
    example wrk was started without ``--latency``).
    """
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", text, re.M))
    if len(pct) != 4:
        raise ValueError("wrk output has no latency distribution (was --latency passed?)")
    total = re.search(r"^\s*(\d+) requests in (\S+?),", text, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not total or not rps:
        raise ValueError("wrk output has no 'N requests in T' / 'Requests/sec:' lines")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = dict(zip(("connect", "read", "write", "timeout"),
                      (int(x) for x in sock.groups()), strict=True)) if sock else {}
    return WrkResult(
        requests=int(total.group(1)), duration_s=duration_ms(total.group(2)) / 1e3,
        rps=float(rps.group(1)), p50_ms=duration_ms(pct["50"]), p75_ms=duration_ms(pct["75"]),
        p90_ms=duration_ms(pct["90"]), p99_ms=duration_ms(pct["99"]),
        non2xx=int(non2xx.group(1)) if non2xx else 0, socket_errors=errors)


def run_wrk(url: str, body: Path, ctype: str, concurrency: int, seconds: int,
            token: str = "") -> WrkResult:
    """One wrk run: one client thread (see README: wrk shares the cores), POST ``body``."""
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", f"--timeout={WRK_TIMEOUT}",
            "--latency", "-s", str(WRK_SCRIPT), url]
    env = os.environ | {"WRK_BODY_FILE": str(body), "WRK_CONTENT_TYPE": ctype,
                        "WRK_AUTHORIZATION": f"Bearer {token}" if token else ""}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    finally:  # interrupted or timed out: no wrk left behind, not even a zombie
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode} against {url}: "
                           f"{(err or out).strip()[-500:]}")
    try:
        return parse_wrk(out)
    except ValueError as exc:
        raise RuntimeError(f"{exc}; wrk printed:\n{out}{err}") from None


def wrk_version() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("bench: wrk is not installed; `make bench` installs it "
                         "(apt-get install -y wrk), or put a wrk binary on PATH")
    out = subprocess.run([path, "-v"], capture_output=True, text=True)
    first = (out.stdout + out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"
