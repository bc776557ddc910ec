"""`make bench`: modelport against the physical limit, side by side, in one run, with wrk.

This is what ``make bench`` runs (``make bench BENCH_ARGS="--seconds 10 --record"`` passes
options); by hand, ``.venv/bin/python bench/suite.py [--seconds N]
[--workloads noop,sklearn,binary,batching] [--concurrency 1,32] [--record]``. (bench/run.py
is the separate in-process vs. gateway comparison with an httpx client.) In one run it

1. starts ``modelport up --port 0 --grpc-port 0`` on a fresh temporary home and reads the
   resident memory of the idle platform (every process under it, no service deployed),
2. per workload (a model package under ``bench/models/``): deploys it on the platform, reads
   the idle replica's RSS and the model's own RSS (a plain python of the replica's
   environment that imports the predictor and runs ``setup()``), starts the limit (the same
   package behind ``bench/limit_app.py``: uvicorn + uvloop + httptools + Starlette, one worker
   per core), checks one answer from each, then runs wrk at each concurrency against the
   limit and against ``POST /v1/services/{name}/infer``, reading the CPU time of each side's
   process tree from /proc around every run,
3. with ``bench/models/batch-sleep`` present, compares it with a copy of itself whose
   ``batching`` key is removed (``batch-sleep-unbatched``, made for the run): the two
   at c=32 on the platform,
4. prints one table (every figure next to its reference from the same run, and the issue's
   targets with pass/miss) and, with ``--record``, adds it to bench/RESULTS.md.

Every process it starts is stopped on exit, on an error, on Ctrl-C and on SIGTERM. The exit
status is 1 when any wrk run saw a non-2xx answer or a socket error, or a check failed, and
130 when interrupted; a missed target is reported in the table, not in the exit status. The
shared pieces (platform, /proc, wrk, the table, RESULTS.md) are in bench/harness/; see
bench/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness.paths import BENCH, MODELS, ROOT
from harness.platform import Platform
from harness.processes import (
    Proc,
    TreeWatch,
    cpu_seconds,
    raise_on_sigterm,
    rss_bytes,
    start_session,
    stop_session,
)
from harness.report import RESULTS, Row, command, commit, load, machine, record, render
from harness.wrk import WrkResult, run_wrk, wrk_version

DEPLOY_TIMEOUT_S = 900.0  # the first deploy of the sklearn package builds a venv with it
BINARY_SIZE = 1 << 20
BATCH_C = 32
MB = 1024 * 1024

# the targets (issue 7)
TARGET_NOOP_RPS_RATIO = 0.25
TARGET_ADDED_P50_MS = 0.6
TARGET_BATCH_RATIO = 8.0
TARGET_PLATFORM_MB = 300.0
TARGET_REPLICA_MB = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Limit:
    """bench/limit_app.py serving one package under uvicorn, one worker per core."""

    def __init__(self, package: Path, workers: int, workdir: Path) -> None:
        self.package = package
        self.workers = workers
        self.log_path = workdir / f"limit-{package.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._watch = TreeWatch()

    def start(self) -> str:
        port = free_port()
        # this interpreter's uvicorn: the limit imports the package with the bench's libraries
        argv = [sys.executable, "-m", "uvicorn", "limit_app:app", "--app-dir", str(BENCH),
                "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
                "--http", "httptools", "--workers", str(self.workers), "--no-access-log",
                "--log-level", "info"]
        env = os.environ | {"MODELPORT_LIMIT_PACKAGE": str(self.package),
                            "PYTHONPATH": str(BENCH)}
        self.proc = start_session(argv, self.log_path, env)
        self._watch.root = self.proc.pid
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the limit server exited with {self.proc.returncode}; "
                                   f"its log:\n{self.log_path.read_text()[-2000:]}")
            # every worker has run setup() and serves: one "startup complete" line each
            if self.log_path.read_text().count("Application startup complete") >= self.workers:
                self.tree()
                return self.url
            time.sleep(0.2)
        raise RuntimeError(f"the limit server did not start {self.workers} workers in 120 s; "
                           f"its log:\n{self.log_path.read_text()[-2000:]}")

    def tree(self) -> list[Proc]:
        return self._watch.tree()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.tree()
        stop_session(self.proc, timeout=15)
        self._watch.reap()
        self.proc = None


# --------------------------------------------------------------------------- workloads
@dataclass
class Workload:
    name: str
    package: Path
    body: bytes
    ctype: str
    check: Callable[[Any], bool]  # is the answer's "data" right?
    expect: str  # what check wants, for the error message


def workloads(names: list[str]) -> list[Workload]:
    table = {
        "noop": Workload("noop", MODELS / "noop", b'{"x": 1}', "application/json",
                         lambda d: d == "ok", '"ok"'),
        "sklearn": Workload("sklearn", MODELS / "sklearn",
                            b'{"features": [5.1, 3.5, 1.4, 0.2]}', "application/json",
                            lambda d: d == "setosa", '"setosa"'),
        "binary": Workload("binary", MODELS / "binary",
                           bytes(range(256)) * (BINARY_SIZE // 256), "application/octet-stream",
                           lambda d: d == BINARY_SIZE, str(BINARY_SIZE)),
    }
    return [table[n] for n in names if n in table]


def unbatched_copy(batched: Path) -> Path:
    """``batch-sleep`` with its ``batching`` key removed, made fresh for this run (removed
    at exit), so the reference can only differ from the batched package in that key."""
    dest = Path(tempfile.mkdtemp(prefix="modelport-bench-")) / "batch-sleep-unbatched"
    atexit.register(shutil.rmtree, dest.parent, True)
    shutil.copytree(batched, dest)
    config = json.loads((dest / "config.json").read_text())
    config.pop("batching", None)
    config["name"] = "batch-sleep-unbatched"
    config["description"] = "batch-sleep served one request at a time (its reference)"
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return dest


def batching_workloads() -> tuple[Workload, Workload, dict[str, Any]] | None:
    """The batched/unbatched 5 ms model pair, when ``bench/models/batch-sleep`` exists."""
    batched = MODELS / "batch-sleep"
    if not (batched / "config.json").exists():
        return None
    unbatched = unbatched_copy(batched)
    config = json.loads((batched / "config.json").read_text())
    inputs = config.get("input", [])
    if not inputs or any("example" not in i for i in inputs):
        raise SystemExit(f"bench: {batched}/config.json needs an 'example' for every input "
                         "(the suite sends it as the request body)")
    body = json.dumps({i["name"]: i["example"] for i in inputs}).encode()

    def made(name: str, pkg: Path) -> Workload:
        return Workload(name, pkg, body, "application/json", lambda d: d is not None,
                        "any JSON answer")

    return (made("batch-sleep", batched), made("batch-sleep-unbatched", unbatched),
            config.get("batching") or {})


# the model alone: a plain python of the replica's environment imports the predictor and runs
# setup(); stdlib only, since it runs in the model's venv. With "--time N" it also times N
# calls of predict (or predict_batch with one list of N copies when the package batches).
MODEL_PROBE = r"""
import importlib.util, json, sys, time
pkg, body = sys.argv[1], json.loads(sys.argv[2])
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 0
cfg = json.load(open(pkg + "/config.json"))
mod, _, cls = cfg.get("predictor", "predict:Predictor").partition(":")
sys.path.insert(0, pkg)
spec = importlib.util.spec_from_file_location(mod, pkg + "/" + mod + ".py")
m = importlib.util.module_from_spec(spec); sys.modules[mod] = m; spec.loader.exec_module(m)
p = getattr(m, cls or "Predictor")(); p.setup()
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
out = {"rss_kb": rss}
if batch:
    times = []
    for _ in range(7):
        t = time.perf_counter()
        if hasattr(p, "predict_batch"):
            p.predict_batch([body] * batch)
        else:
            p.predict(**body)
        times.append(time.perf_counter() - t)
    out["model_ms"] = sorted(times)[len(times) // 2] * 1e3
print(json.dumps(out))
"""


def probe_model(python: str, package: Path, body: bytes | None = None,
                batch: int = 0) -> dict[str, float]:
    argv = [python, "-c", MODEL_PROBE, str(package), (body or b"{}").decode()]
    if batch:
        argv.append(str(batch))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=package)
    if proc.returncode != 0:
        raise RuntimeError(f"loading {package.name}'s predictor with {python} failed:\n"
                           f"{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def verify(url: str, w: Workload, who: str, token: str) -> None:
    """One request before measuring: a fast wrong answer must not count as throughput."""
    resp = httpx.post(f"{url}/v1/services/{w.name}/infer", content=w.body,
                      headers={"content-type": w.ctype, "authorization": f"Bearer {token}"},
                      timeout=60)
    if resp.status_code != 200:
        raise RuntimeError(f"{who} answered {w.name} with {resp.status_code}: {resp.text[:500]}")
    data = resp.json().get("data")
    if not w.check(data):
        raise RuntimeError(f"{who} answered {w.name} with data={data!r}, expected {w.expect}")


# --------------------------------------------------------------------------- measuring
@dataclass
class Run:
    wrk: WrkResult
    cpu_s: float

    @property
    def cpu_per_1k(self) -> float:
        return self.cpu_s * 1000 / self.wrk.requests if self.wrk.requests else float("nan")


class Bench:
    def __init__(self, args: argparse.Namespace, token: str) -> None:
        self.args = args
        self.token = token  # sent to both sides, so they parse the same request bytes
        self.errors: list[str] = []

    def measure(self, who: str, url: str, tree: Callable[[], list[Proc]], w: Workload,
                body: Path, c: int) -> Run:
        target = f"{url}/v1/services/{w.name}/infer"
        if self.args.warmup > 0:
            run_wrk(target, body, w.ctype, c, self.args.warmup, self.token)
        procs = tree()
        before = cpu_seconds(procs)
        res = run_wrk(target, body, w.ctype, c, self.args.seconds, self.token)
        cpu = cpu_seconds(procs) - before
        if problem := res.problems():
            self.errors.append(f"{who} {w.name} c={c}: {problem}")
        print(f"  {w.name:<22} c={c:<3} {who:<9} {res.rps:>9.0f} req/s  p50 {res.p50_ms:.3f} "
              f"ms  p99 {res.p99_ms:.3f} ms" + (f"  [{problem}]" if problem else ""), flush=True)
        return Run(res, cpu)


def deploy(plat: Platform, w: Workload) -> list[Proc]:
    """Deploy ``w`` and return the worker processes it added."""
    before = {(p.pid, p.start) for p in plat.tree()}
    t = time.monotonic()
    plat.deploy(w.package, w.name, DEPLOY_TIMEOUT_S)
    print(f"  deployed {w.name} in {time.monotonic() - t:.1f}s", flush=True)
    return [p for p in plat.tree() if (p.pid, p.start) not in before and p.label == "worker"]


def worker_python(worker: Proc) -> str:
    i = worker.argv.index("-m")
    return worker.argv[i - 1]


# --------------------------------------------------------------------------- report
def fmt_ms(x: float) -> str:
    return f"{x:.3f}"


def fmt_rps(x: float) -> str:
    return f"{x:.0f}"


def verdict(ok: bool) -> str:
    return "pass" if ok else "MISS"


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # wrk takes whole seconds only
    ap.add_argument("--seconds", type=int, default=5, help="measured seconds per wrk run")
    ap.add_argument("--warmup", type=int, default=1,
                    help="seconds of wrk before each measured run, not counted (0: none)")
    ap.add_argument("--workloads", default=None,
                    help="comma-separated: noop, sklearn, binary, batching (default: all; "
                    "batching when bench/models/batch-sleep* exist)")
    ap.add_argument("--concurrency", default="1,32", help="wrk connections, comma-separated")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                    help="uvicorn workers for the limit (default: one per core)")
    ap.add_argument("--record", action="store_true",
                    help=f"add the table to {RESULTS.relative_to(ROOT)}")
    ap.add_argument("--keep-home", action="store_true", help="keep the temporary platform home")
    args = ap.parse_args(argv)
    args.explicit_workloads = args.workloads is not None
    args.workloads = [w.strip() for w in (args.workloads or "noop,sklearn,binary,batching")
                      .split(",") if w.strip()]
    unknown = set(args.workloads) - {"noop", "sklearn", "binary", "batching"}
    if unknown:
        ap.error(f"unknown workload(s) {sorted(unknown)}; choose from noop, sklearn, binary, "
                 "batching")
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",")]
    except ValueError:
        ap.error(f"--concurrency wants comma-separated integers, got {args.concurrency!r}")
    if args.seconds < 1 or args.warmup < 0:
        ap.error("--seconds must be >= 1 and --warmup >= 0 (whole seconds: wrk's -d)")
    if any(c < 1 for c in args.concurrency):
        ap.error("--concurrency values must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path("/proc/self/stat").exists():
        raise SystemExit("bench: the suite reads CPU and memory from /proc; run it on Linux")
    wrk = wrk_version()
    pair = batching_workloads() if "batching" in args.workloads else None
    if "batching" in args.workloads and pair is None and args.explicit_workloads:
        raise SystemExit(f"bench: --workloads batching needs {MODELS}/batch-sleep")
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sha = commit()
    cmd = command(__file__, argv)
    header = [
        f"date:     {date}",
        f"commit:   {sha}",
        f"machine:  {machine()}",
        f"load:     {load()} (1/5/15 min, before the run)",
        f"command:  {cmd}",
        f"client:   {wrk}, -t1 (one client thread: it shares the cores with the servers),",
        f"          {args.warmup} s warm-up + {args.seconds} s measured per run, 127.0.0.1",
        f"limit:    bench/limit_app.py (Starlette) under uvicorn --loop uvloop --http httptools "
        f"--workers {args.workers}",
        "platform: `modelport up` on a fresh home, POST /v1/services/{name}/infer, auth on "
        "(admin token)",
    ]
    print("\n".join(header), flush=True)

    raise_on_sigterm(interrupt=True)
    workdir = Path(tempfile.mkdtemp(prefix="modelport-bench-"))
    plat = Platform(workdir)
    limit: Limit | None = None
    rows: list[Row] = []
    notes: list[str] = []
    failed = True
    try:
        t = time.monotonic()
        url = plat.start()
        print(f"started:  modelport up at {url}, ready in {time.monotonic() - t:.1f}s", flush=True)
        bench = Bench(args, plat.token)
        time.sleep(2.0)  # let the components finish starting before reading their memory
        idle = plat.tree()
        idle_rss = {p: rss_bytes(p.pid) for p in idle}
        platform_mb = sum(idle_rss.values()) / MB
        by_label: dict[str, float] = {}
        for p, b in idle_rss.items():
            by_label[p.label] = by_label.get(p.label, 0.0) + b / MB
        notes.append("idle platform RSS by process (MB): " + ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(by_label.items(), key=lambda kv: -kv[1])))
        rows.append(Row("memory", "", "", ""))
        rows.append(Row("  idle platform RSS MB (all processes)", "-", f"{platform_mb:.0f}", "",
                        f"<= {TARGET_PLATFORM_MB:.0f}",
                        verdict(platform_mb <= TARGET_PLATFORM_MB)))
        mem_rows: list[Row] = []
        perf_rows: list[Row] = []

        for w in workloads(args.workloads):
            print(f"{w.name}:", flush=True)
            workers = deploy(plat, w)
            verify(url, w, "modelport", plat.token)
            body = workdir / f"{w.name}.body"
            body.write_bytes(w.body)
            if workers:
                time.sleep(0.5)
                worker_mb = rss_bytes(workers[0].pid) / MB
                model_mb = probe_model(worker_python(workers[0]), w.package)["rss_kb"] / 1024
                extra = worker_mb - model_mb
                mem_rows.append(Row(f"  {w.name} idle replica RSS MB (ref: model alone)",
                                    f"{model_mb:.0f}", f"{worker_mb:.0f}", f"{extra:+.0f}",
                                    f"<= +{TARGET_REPLICA_MB:.0f}",
                                    verdict(extra <= TARGET_REPLICA_MB)))
                if len(workers) > 1:
                    notes.append(f"{w.name}: {len(workers)} worker processes; the replica row "
                                 "reads the first")
            else:
                notes.append(f"{w.name}: no worker process found under the platform; no "
                             "replica memory row")
            limit = Limit(w.package, args.workers, workdir)
            limit.start()
            verify(limit.url, w, "the limit", plat.token)
            for c in args.concurrency:
                lim = bench.measure("limit", limit.url, limit.tree, w, body, c)
                mp = bench.measure("modelport", url, plat.tree, w, body, c)
                perf_rows += perf(w.name, c, lim, mp)
            limit.stop()
            limit = None

        if pair is not None:
            batched, unbatched, cfg = pair
            print("batching:", flush=True)
            runs = {}
            for w in (unbatched, batched):
                workers = deploy(plat, w)
                verify(url, w, "modelport", plat.token)
                body = workdir / f"{w.name}.body"
                body.write_bytes(w.body)
                runs[w.name] = bench.measure("modelport", url, plat.tree, w, body, BATCH_C)
            max_batch = int(cfg.get("max_batch_size") or 1)
            max_latency = float(cfg.get("max_latency_ms") or 0.0)
            python = worker_python(workers[0]) if workers else sys.executable
            model_ms = probe_model(python, batched.package, batched.body, max_batch)["model_ms"]
            b, u = runs[batched.name].wrk, runs[unbatched.name].wrk
            bound = 3 * max_latency + model_ms
            ratio = b.rps / u.rps if u.rps else float("nan")
            perf_rows.append(Row(f"batching (batch-sleep, max_batch_size {max_batch}, "
                                 f"max_latency_ms {max_latency:g})", "", "", ""))
            perf_rows.append(Row(f"  c={BATCH_C} req/s (ref: unbatched)", fmt_rps(u.rps),
                                 fmt_rps(b.rps), f"{ratio:.2f}x", f">= {TARGET_BATCH_RATIO:g}x",
                                 verdict(ratio >= TARGET_BATCH_RATIO)))
            perf_rows.append(Row(f"  c={BATCH_C} p50 ms (ref: unbatched)", fmt_ms(u.p50_ms),
                                 fmt_ms(b.p50_ms), f"{b.p50_ms - u.p50_ms:+.3f}"))
            perf_rows.append(Row(f"  c={BATCH_C} p99 ms (ref: 3*max_latency + model)",
                                 fmt_ms(bound), fmt_ms(b.p99_ms), f"{b.p99_ms - bound:+.3f}",
                                 "<= ref", verdict(b.p99_ms <= bound)))
            notes.append(f"batching: model time {model_ms:.1f} ms = one predict_batch of "
                         f"{max_batch} items in the replica's environment (median of 7)")

        rows = perf_rows + rows + mem_rows
        table = render(rows)
        footer = [
            "",
            "reference = the limit (same predictor, bare Starlette app) unless the row says "
            "otherwise;",
            "  vs ref = ratio (x) for req/s and CPU, difference (+/-) for ms and MB",
            "CPU s/1k req = user+system CPU seconds of the whole process tree per 1,000 "
            "requests",
            "  (limit: uvicorn and its workers; modelport: launcher, registry, builder, runtime, "
            "gateway, worker)",
            *notes,
            f"load after the run: {load()}",
        ]
        text = "\n".join(header) + "\n\n" + table + "\n" + "\n".join(footer)
        print()
        print(table)
        print("\n".join(footer))
        if bench.errors:
            print("\nbench: some wrk runs failed (their figures are not trustworthy):",
                  file=sys.stderr)
            for e in bench.errors:
                print(f"  {e}", file=sys.stderr)
        failed = bool(bench.errors)
        if args.record:
            if failed:
                print("bench: not recording a run with failed requests", file=sys.stderr)
            else:
                record(text, date, sha, cmd)
                print(f"recorded in {RESULTS.relative_to(ROOT)}")
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping everything it started", file=sys.stderr)
        failed = False
        return 130
    except Exception as exc:
        print(f"\nbench: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(plat.diagnostics(), file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish cleaning up
        if limit is not None:
            limit.stop()
        plat.stop()
        if failed or args.keep_home:
            print(f"bench: platform home and logs kept at {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def perf(name: str, c: int, lim: Run, mp: Run) -> Iterator[Row]:
    """The rows of one workload at one concurrency: modelport next to the limit."""
    ratio = mp.wrk.rps / lim.wrk.rps if lim.wrk.rps else float("nan")
    added = mp.wrk.p50_ms - lim.wrk.p50_ms
    yield Row(f"{name} c={c}", "", "", "")
    rps_target = rps_result = p50_target = p50_result = ""
    if name == "noop" and c == 32:
        rps_target, rps_result = f">= {TARGET_NOOP_RPS_RATIO:g}x", verdict(
            ratio >= TARGET_NOOP_RPS_RATIO)
    if name == "noop" and c == 1:
        p50_target, p50_result = f"<= +{TARGET_ADDED_P50_MS:g} ms", verdict(
            added <= TARGET_ADDED_P50_MS)
    yield Row("  req/s", fmt_rps(lim.wrk.rps), fmt_rps(mp.wrk.rps), f"{ratio:.3f}x",
              rps_target, rps_result)
    yield Row("  p50 ms" + (" (vs ref: added p50)" if c == 1 else ""), fmt_ms(lim.wrk.p50_ms),
              fmt_ms(mp.wrk.p50_ms), f"{added:+.3f}",
              p50_target, p50_result)
    yield Row("  p99 ms", fmt_ms(lim.wrk.p99_ms), fmt_ms(mp.wrk.p99_ms),
              f"{mp.wrk.p99_ms - lim.wrk.p99_ms:+.3f}")
    cpu_ratio = mp.cpu_per_1k / lim.cpu_per_1k if lim.cpu_per_1k else float("nan")
    yield Row("  CPU s/1k req", f"{lim.cpu_per_1k:.3f}", f"{mp.cpu_per_1k:.3f}",
              f"{cpu_ratio:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
