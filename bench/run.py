"""The gateway's overhead: the iris predictor in-process vs. through `modelport up` (httpx).

Not what ``make bench`` runs (that is bench/suite.py, wrk against a bare-app limit): this is
the earlier comparison of one model imported in this process against the same model behind
the platform, as a Python httpx caller sees it. Run it as
``.venv/bin/python bench/run.py [--seconds N] [--warmup N] [--concurrency 1,8] [--no-health]``.
In one run it

1. starts ``modelport up --port 0 --grpc-port 0`` on a fresh temporary home and waits
   for its ``ready: http://127.0.0.1:PORT`` line,
2. deploys ``examples/predictor-iris`` as service ``iris`` (with the admin token),
3. times ``Predictor.predict(features=...)`` imported in this process (sequential),
4. times ``GET /health`` on the gateway (the HTTP floor: uvicorn + starlette + client),
5. times ``POST /v1/services/iris/infer`` at each concurrency (keep-alive httpx client;
   a sync client at concurrency 1, ``httpx.AsyncClient`` with N tasks above that),
6. prints one table and stops the platform with SIGTERM (always, also on error or Ctrl-C).

Everything stays on 127.0.0.1; loops are bounded by time. Exit status 0 when every gateway
request succeeded, 1 otherwise, 130 on Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness.iris import bench_gateway, bench_health, bench_in_process, deploy, load_predictor
from harness.platform import Platform
from harness.processes import raise_on_sigterm
from harness.report import context, load
from harness.timing import Stats


# --------------------------------------------------------------------------- report
def _median_diff(a: list[float], b: list[float]) -> float:
    return float(np.median(np.asarray(a) - np.asarray(b))) if a else float("nan")


def report(inproc: Stats, health: Stats | None, gateways: list[Stats], seconds: float,
           warmup: float) -> str:
    ip50 = inproc.pct(50)
    lines = []
    head = (f"{'path':<30} {'c':>2} {'requests':>9} {'err':>4} {'p50 ms':>9} {'p99 ms':>9} "
            f"{'req/s':>9} {'p50 x':>8} {'rps x':>8} {'+p50 ms':>8}")
    lines.append(head)
    lines.append("-" * len(head))

    def row(s: Stats, ratios: bool) -> str:
        p50, p99 = s.pct(50), s.pct(99)
        extra = (f" {p50 / ip50:>8.1f} {s.rps / inproc.rps:>8.4f} {p50 - ip50:>8.3f}"
                 if ratios else f" {'':>8} {'':>8} {'':>8}")
        return (f"{s.name:<30} {s.concurrency:>2} {s.n:>9} {s.errors:>4} {p50:>9.4f} "
                f"{p99:>9.4f} {s.rps:>9.0f}" + extra).rstrip()

    lines.append(row(inproc, False))
    if health is not None:
        lines.append(row(health, False))
    for s in gateways:
        lines.append(row(s, True))
    lines.append("")
    lines.append("p50 x = gateway p50 / in-process p50;  rps x = gateway req/s / in-process "
                 "req/s;  +p50 ms = gateway p50 - in-process p50")
    lines.append(f"each row: {warmup:g} s warm-up, then {seconds:g} s measured; in-process is "
                 "sequential (c=1)")

    c1 = next((s for s in gateways if s.concurrency == 1 and s.gw_duration_ms), None)
    if c1 is not None:
        rtt = list(c1.ms[: len(c1.gw_duration_ms)])
        lines.append("")
        lines.append("where the c=1 gateway time goes (medians of per-request differences, ms; "
                     "from the response metadata):")
        parts = [
            ("client round trip (httpx -> gateway -> httpx)", float(np.median(rtt))),
            ("  client + HTTP + JSON + routing in gateway (rtt - metadata.duration)",
             _median_diff(rtt, c1.gw_duration_ms)),
            ("  gateway->runtime gRPC + runtime->worker socket (duration - worker_duration)",
             _median_diff(c1.gw_duration_ms, c1.worker_ms)),
            ("  worker: decode inputs + predict + encode output (worker_duration)",
             float(np.median(c1.worker_ms))),
            ("  of which predict() itself (in-process p50)", ip50),
        ]
        if health is not None:
            parts.append(("GET /health round trip (client + HTTP floor, no gRPC, no JSON)",
                          health.pct(50)))
        for label, value in parts:
            lines.append(f"  {label:<78} {value:>8.3f}")

    rows = [s for s in [inproc, health, *gateways] if s is not None and s.cpu_s and s.n]
    if any(len(s.cpu_s) > 1 for s in rows):
        cols = ["bench", "gateway", "runtime", "worker", "registry", "builder", "launcher"]
        cols += sorted({k for s in rows for k in s.cpu_s} - set(cols))
        lines.append("")
        lines.append("CPU ms per request during the measured phase, by process (user+system, "
                     "/proc); 'cores' = CPU s / wall s:")
        head = f"{'path':<30} {'c':>2} " + " ".join(f"{c:>8}" for c in cols) + \
            f" {'total':>8} {'cores':>6}"
        lines.append(head)
        lines.append("-" * len(head))
        for s in rows:
            per = [s.cpu_s.get(c, 0.0) * 1000 / s.n for c in cols]
            total = sum(s.cpu_s.values())
            lines.append(f"{s.name:<30} {s.concurrency:>2} " + " ".join(f"{v:>8.3f}" for v in per)
                         + f" {total * 1000 / s.n:>8.3f} {total / s.elapsed_s:>6.2f}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per row")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per row")
    ap.add_argument("--concurrency", default="1,8",
                    help="comma-separated gateway concurrencies (default 1,8)")
    ap.add_argument("--no-health", action="store_true", help="skip the GET /health row")
    ap.add_argument("--keep-home", action="store_true",
                    help="keep the temporary platform home (logs) after the run")
    args = ap.parse_args(argv)
    try:
        args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    except ValueError:
        ap.error("--concurrency takes comma-separated integers, e.g. 1,8")
    if not args.concurrency or any(c < 1 or c > 256 for c in args.concurrency):
        ap.error("--concurrency values must be between 1 and 256")
    if not (0 < args.seconds <= 600) or not (0 <= args.warmup <= 60):
        ap.error("--seconds must be in (0, 600] and --warmup in [0, 60]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_on_sigterm()
    print(context(__file__, argv), flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="modelport-bench-"))
    plat = Platform(workdir)
    failed = True
    try:
        t = time.monotonic()
        url = plat.start()
        print(f"platform: {url} ready in {time.monotonic() - t:.1f}s (home {plat.home})",
              flush=True)
        t = time.monotonic()
        svc = deploy(plat)
        print(f"deployed: {svc['name']} version {svc['serving_version']} in "
              f"{time.monotonic() - t:.1f}s", flush=True)

        probe = plat.cpu_probe()
        predictor = load_predictor()
        inproc = bench_in_process(predictor, args.seconds, args.warmup, probe)
        print(f"  measured {inproc.name}", flush=True)
        health = None
        if not args.no_health:
            health = bench_health(url, args.seconds, args.warmup, probe)
            print(f"  measured {health.name}", flush=True)
        gateways = []
        for c in args.concurrency:
            gateways.append(bench_gateway(url, c, args.seconds, args.warmup, probe))
            print(f"  measured {gateways[-1].name}", flush=True)
        print()
        print(report(inproc, health, gateways, args.seconds, args.warmup))
        print(f"\nload after the run: {load()}")
        failed = any(s.errors for s in gateways) or any(s.n == 0 for s in gateways)
        if failed:
            print("\nbench: some gateway requests failed; see the err column", file=sys.stderr)
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            failed = False  # interrupted, not broken: nothing to keep
        else:
            print(f"\nbench: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            print(plat.diagnostics(), file=sys.stderr)
        raise
    finally:
        code = plat.stop()
        if code not in (None, 0):
            print(f"bench: `modelport up` exited with code {code} after SIGTERM",
                  file=sys.stderr)
        if failed or args.keep_home:
            print(f"bench: platform home kept at {plat.home}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; platform stopped", file=sys.stderr)
        sys.exit(130)
