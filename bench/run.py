"""Gateway overhead benchmark: the iris predictor in-process vs. through `modelport up`.

Run as ``.venv/bin/python bench/run.py [--seconds N] [--warmup N] [--concurrency 1,8]``
(``make bench`` runs it with the defaults). In one run it

1. starts ``modelport up --port 0 --grpc-port 0`` on a fresh temporary home and waits
   for its ``ready: http://127.0.0.1:PORT`` line,
2. deploys ``examples/predictor-iris`` as service ``iris``,
3. times ``Predictor.predict(features=...)`` imported in this process (sequential),
4. times ``GET /health`` on the gateway (the HTTP floor: uvicorn + starlette + client),
5. times ``POST /v1/services/iris/infer`` at each concurrency (keep-alive httpx client;
   a sync client at concurrency 1, ``httpx.AsyncClient`` with N tasks above that),
6. prints one table and stops the platform with SIGTERM (always, also on error or Ctrl-C).

Everything stays on 127.0.0.1; loops are bounded by time. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "predictor-iris"
SERVICE = "iris"
FEATURES = [5.1, 3.5, 1.4, 0.2]
EXPECTED_LABEL = "setosa"
BODY = json.dumps({"features": FEATURES}).encode()
HEADERS = {"content-type": "application/json"}
READY_TIMEOUT_S = 180.0
DEPLOY_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- results
@dataclass
class Stats:
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


# --------------------------------------------------------------------------- platform
class PlatformProcess:
    """`modelport up` in a subprocess on a fresh home; stop() sends SIGTERM and waits."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.home = workdir / "home"
        self.log_path = workdir / "up.log"
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.stdout_lines: list[str] = []

    def _modelport_argv(self) -> list[str]:
        exe = Path(sys.executable).parent / "modelport"
        if not exe.exists():
            raise SystemExit(f"{exe} not found; run `make venv` first")
        return [str(exe), "up", "--home", str(self.home), "--port", "0", "--grpc-port", "0"]

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    def start(self) -> str:
        log = self.log_path.open("w")
        try:
            self.proc = subprocess.Popen(
                self._modelport_argv(), cwd=ROOT, stdout=subprocess.PIPE, stderr=log,
                stdin=subprocess.DEVNULL, text=True, bufsize=1)
        finally:
            log.close()
        threading.Thread(target=self._pump, name="modelport-up-stdout", daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"`modelport up` printed no ready line in {READY_TIMEOUT_S:g}s")
            try:
                line = self._lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"`modelport up` exited early (code {self.proc.wait()})")
            if line.startswith("ready: "):
                self.url = line.split("ready: ", 1)[1].strip()
                return self.url

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print(f"bench: `modelport up` ignored SIGTERM for {STOP_TIMEOUT_S:g}s; killing",
                      file=sys.stderr)
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def diagnostics(self, lines: int = 30) -> str:
        """Tail of the launcher's stderr and each component log, for a failed run."""
        parts = []
        for path in [self.log_path, *sorted((self.home / "logs").glob("**/*.log"))]:
            try:
                tail = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            if tail:
                parts.append(f"--- {path} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(parts)


class CpuProbe:
    """CPU time (user + system) of this process and of every process under `modelport up`.

    Linux only (/proc); elsewhere it measures nothing and the CPU table is left out.
    Processes are labelled by what they run: gateway, runtime, registry, builder (the
    components), worker (the model process), launcher (`modelport up`), bench (this client).
    """

    def __init__(self, root_pid: int | None) -> None:
        self.root_pid = root_pid
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._before: dict[str, float] = {}

    @staticmethod
    def _label(cmdline: list[str]) -> str:
        if "-m" in cmdline:
            mod = cmdline[cmdline.index("-m") + 1] if cmdline.index("-m") + 1 < len(cmdline) else ""
            if mod.startswith("services."):
                return mod.split(".", 1)[1]
            if "worker" in mod:
                return "worker"
        if any(a.endswith("modelport") for a in cmdline[:2]) and "up" in cmdline:
            return "launcher"
        return "other"

    def _tree(self) -> dict[int, str]:
        if self.root_pid is None or not Path("/proc").is_dir():
            return {}
        parents: dict[int, int] = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        found = {self.root_pid}
        changed = True
        while changed:
            changed = False
            for pid, ppid in parents.items():
                if ppid in found and pid not in found:
                    found.add(pid)
                    changed = True
        out = {}
        for pid in found:
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            out[pid] = self._label([a.decode(errors="replace") for a in raw.split(b"\0") if a])
        return out

    def snapshot(self) -> dict[str, float]:
        cpu: dict[str, float] = {}
        for pid, label in self._tree().items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # utime, stime are fields 14 and 15 of stat; index 11, 12 after the comm field
            cpu[label] = cpu.get(label, 0.0) + (int(fields[11]) + int(fields[12])) / self.tick
        t = os.times()
        cpu["bench"] = t.user + t.system
        return cpu

    def start(self) -> None:
        self._before = self.snapshot()

    def stop(self) -> dict[str, float]:
        after = self.snapshot()
        return {k: v - self._before.get(k, 0.0) for k, v in after.items()}


NO_PROBE = CpuProbe(None)


def deploy(url: str) -> dict:
    import modelport

    with modelport.Client(url) as client:
        return client.create(EXAMPLE, name=SERVICE, timeout=DEPLOY_TIMEOUT_S)


# --------------------------------------------------------------------------- measurements
def load_predictor():
    spec = importlib.util.spec_from_file_location("bench_iris_predict", EXAMPLE / "predict.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    predictor = module.Predictor()
    predictor.setup()
    return predictor


def bench_in_process(predictor, seconds: float, warmup: float, probe: CpuProbe) -> Stats:
    clock = time.perf_counter_ns
    for duration in (warmup, seconds):  # the last pass is the measured one
        stats = Stats("in-process predict()", 1)
        lat = stats.latencies_ns
        out = predictor.predict(features=FEATURES)
        probe.start()
        start = clock()
        end = start + int(duration * 1e9)
        t0 = start
        while t0 < end:
            out = predictor.predict(features=FEATURES)
            t1 = clock()
            lat.append(t1 - t0)
            t0 = t1
        stats.elapsed_s = (t0 - start) / 1e9
        stats.cpu_s = probe.stop()
        if out["label"] != EXPECTED_LABEL:
            raise RuntimeError(f"in-process predict returned {out!r}")
    return stats


def _check_infer(resp: httpx.Response, stats: Stats) -> None:
    if resp.status_code != 200:
        stats.errors += 1
        if stats.errors == 1:
            print(f"bench: first error from the gateway: {resp.status_code} {resp.text[:300]}",
                  file=sys.stderr)
        return
    doc = resp.json()
    if doc["data"]["label"] != EXPECTED_LABEL:
        stats.errors += 1
        return
    meta = doc["metadata"]
    stats.gw_duration_ms.append(meta["duration"])
    stats.worker_ms.append(meta["worker_duration"])


def bench_sync(url: str, path: str, seconds: float, warmup: float, name: str,
               infer: bool, probe: CpuProbe) -> Stats:
    clock = time.perf_counter_ns
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for duration in (warmup, seconds):  # the last pass is the measured one
            stats = Stats(name, 1)
            lat = stats.latencies_ns
            probe.start()
            start = clock()
            end = start + int(duration * 1e9)
            t0 = start
            while t0 < end:
                if infer:
                    resp = client.post(path, content=BODY, headers=HEADERS)
                else:
                    resp = client.get(path)
                t1 = clock()
                # latency is the round trip only; checking the answer is not timed
                if infer:
                    lat.append(t1 - t0)
                    _check_infer(resp, stats)
                elif resp.status_code == 200:
                    lat.append(t1 - t0)
                else:
                    stats.errors += 1
                t0 = clock()
            stats.elapsed_s = (t0 - start) / 1e9
            stats.cpu_s = probe.stop()
    return stats


async def _bench_async(url: str, path: str, seconds: float, warmup: float, name: str,
                       concurrency: int, probe: CpuProbe) -> Stats:
    clock = time.perf_counter_ns
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:
        for duration in (warmup, seconds):  # the last pass is the measured one
            stats = Stats(name, concurrency)
            probe.start()
            start = clock()
            end = start + int(duration * 1e9)

            async def worker(stats: Stats, end: int) -> None:
                while clock() < end:
                    t0 = clock()
                    resp = await client.post(path, content=BODY, headers=HEADERS)
                    stats.latencies_ns.append(clock() - t0)
                    _check_infer(resp, stats)

            await asyncio.gather(*(worker(stats, end) for _ in range(concurrency)))
            stats.elapsed_s = (clock() - start) / 1e9
            stats.cpu_s = probe.stop()
    return stats


def bench_gateway(url: str, concurrency: int, seconds: float, warmup: float,
                  probe: CpuProbe) -> Stats:
    path = f"/v1/services/{SERVICE}/infer"
    name = f"gateway POST /infer c={concurrency}"
    if concurrency == 1:
        return bench_sync(url, path, seconds, warmup, name, True, probe)
    return asyncio.run(_bench_async(url, path, seconds, warmup, name, concurrency, probe))


# --------------------------------------------------------------------------- report
def machine() -> str:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"nproc={cpus}  cpu={model or platform.processor() or '?'}  "
            f"python={platform.python_version()} ({platform.python_implementation()})  "
            f"os={platform.system()} {platform.release()}")


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True).stdout.strip()
        return sha + (" (+uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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


def _sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    # a background job of a non-interactive shell inherits SIGINT ignored; Ctrl-C must stop us
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"machine: {machine()}")
    print(f"load:    {load()} (1/5/15 min, before the run; other work on the machine skews "
          "the numbers)")
    print(f"commit:  {commit()}")
    argv = getattr(sys, "orig_argv", None) or [Path(sys.executable).name, *sys.argv]
    print(f"command: {' '.join(argv)}", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="modelport-bench-"))
    plat = PlatformProcess(workdir)
    failed = True
    try:
        t = time.monotonic()
        url = plat.start()
        print(f"platform: {url} ready in {time.monotonic() - t:.1f}s (home {plat.home})",
              flush=True)
        t = time.monotonic()
        svc = deploy(url)
        print(f"deployed: {svc['name']} version {svc['serving_version']} in "
              f"{time.monotonic() - t:.1f}s", flush=True)

        probe = CpuProbe(plat.proc.pid if plat.proc else None)
        predictor = load_predictor()
        inproc = bench_in_process(predictor, args.seconds, args.warmup, probe)
        print(f"  measured {inproc.name}", flush=True)
        health = None
        if not args.no_health:
            health = bench_sync(url, "/health", args.seconds, args.warmup,
                                "gateway GET /health", False, probe)
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
