"""`make bench`: modelport against the physical limit, side by side, in one run, with wrk.

Run as ``.venv/bin/python bench/suite.py [--seconds N] [--workloads noop,sklearn,binary,batching]
[--concurrency 1,32] [--record]``. In one run it

1. starts ``modelport up --port 0 --grpc-port 0`` on a fresh temporary home and reads the
   resident memory of the idle platform (every process under it, no service deployed),
2. per workload (a model package under ``bench/models/``): deploys it on the platform, reads
   the idle replica's RSS and the model's own RSS (a plain python of the replica's
   environment that imports the predictor and runs ``setup()``), starts the limit (the same
   package behind ``bench/limit_app.py``: uvicorn + uvloop + httptools + Starlette, one worker
   per core), checks one answer from each, then runs wrk at each concurrency against the
   limit and against ``POST /v1/services/{name}/infer``, reading the CPU time of each side's
   process tree from /proc around every run,
3. with ``bench/models/batch-sleep`` and ``batch-sleep-unbatched`` present, compares the two
   at c=32 on the platform,
4. prints one table (every figure next to its reference from the same run, and the issue's
   targets with pass/miss) and, with ``--record``, adds it to bench/RESULTS.md.

Every process it starts is stopped on exit, on an error, on Ctrl-C and on SIGTERM. The exit
status is 1 when any wrk run saw a non-2xx answer or a socket error, or a check failed; a
missed target is reported in the table, not in the exit status. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
MODELS = BENCH / "models"
WRK_SCRIPT = BENCH / "wrk" / "post.lua"
RESULTS = BENCH / "RESULTS.md"
RECORD_HEADING = "## make bench (wrk suite)"

READY_TIMEOUT_S = 180.0
DEPLOY_TIMEOUT_S = 900.0  # the first deploy of the sklearn package builds a venv with it
STOP_TIMEOUT_S = 30.0
WRK_TIMEOUT = "10s"  # a request slower than this counts as a socket error (timeout)
BINARY_SIZE = 1 << 20
BATCH_C = 32
MB = 1024 * 1024

# the targets (issue 7)
TARGET_NOOP_RPS_RATIO = 0.25
TARGET_ADDED_P50_MS = 0.6
TARGET_BATCH_RATIO = 8.0
TARGET_PLATFORM_MB = 300.0
TARGET_REPLICA_MB = 30.0


# --------------------------------------------------------------------------- wrk
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


def _ms(text: str) -> float:
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
        requests=int(total.group(1)), duration_s=_ms(total.group(2)) / 1e3,
        rps=float(rps.group(1)), p50_ms=_ms(pct["50"]), p75_ms=_ms(pct["75"]),
        p90_ms=_ms(pct["90"]), p99_ms=_ms(pct["99"]),
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


# --------------------------------------------------------------------------- processes
@dataclass(frozen=True)
class Proc:
    pid: int
    start: int  # /proc/<pid>/stat starttime: tells a live process from a reused pid
    label: str
    argv: tuple[str, ...]


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _label(argv: tuple[str, ...]) -> str:
    if "modelport_worker.shim" in argv:
        return "worker"
    if "-m" in argv and argv.index("-m") + 1 < len(argv):
        mod = argv[argv.index("-m") + 1]
        if mod.startswith("services."):
            return mod.split(".", 1)[1]
        if mod == "modelport.launcher":  # what `modelport up` execs into
            return "launcher"
    if "up" in argv and any(a.endswith("modelport") for a in argv[:2]):
        return "launcher"
    if any("multiprocessing" in a for a in argv) or any(a.endswith("uvicorn") for a in argv[:2]):
        return "uvicorn"
    return Path(argv[0]).name if argv else "?"


def process_tree(root: int) -> list[Proc]:
    """``root`` and every process below it (Linux /proc)."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (st := _stat(int(d.name))) is not None:
            parents[int(d.name)] = int(st[1])
    found, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parents.items():
            if ppid == pid and child not in found:
                found.add(child)
                frontier.append(child)
    out = []
    for pid in sorted(found):
        st = _stat(pid)
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if st is None:
            continue
        argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        out.append(Proc(pid, int(st[19]), _label(argv), argv))
    return out


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(procs: list[Proc]) -> float:
    """User + system CPU seconds the given (live) processes have used so far."""
    total = 0
    for p in procs:
        st = _stat(p.pid)
        if st is not None and int(st[19]) == p.start:
            total += int(st[11]) + int(st[12])
    return total / TICK


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def kill_leftovers(procs: list[Proc]) -> None:
    """SIGKILL any process of an earlier snapshot that is still alive (same pid and start)."""
    for p in procs:
        st = _stat(p.pid)
        if st is not None and int(st[19]) == p.start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)


class Platform:
    """`modelport up` on a fresh home in its own session; stop() takes the whole tree down."""

    def __init__(self, workdir: Path) -> None:
        self.home = workdir / "home"
        self.log_path = workdir / "up.log"
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.token = ""
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._seen: list[Proc] = []

    def start(self) -> str:
        exe = Path(sys.executable).parent / "modelport"
        if not exe.exists():
            raise SystemExit(f"bench: {exe} not found; run `make venv` first")
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [str(exe), "up", "--home", str(self.home), "--port", "0", "--grpc-port", "0"],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                text=True, bufsize=1, start_new_session=True)
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"`modelport up` exited early (code {self.proc.wait()})")
            if line.startswith("ready: "):
                self.url = line.split("ready: ", 1)[1].strip()
                # auth stays on (the default); every request carries the admin token
                self.token = (self.home / "admin.token").read_text().strip()
                return self.url
        raise RuntimeError(f"`modelport up` printed no ready line in {READY_TIMEOUT_S:g}s")

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def tree(self) -> list[Proc]:
        if self.proc is None:
            return []
        procs = process_tree(self.proc.pid)
        known = {(p.pid, p.start) for p in self._seen}
        self._seen += [p for p in procs if (p.pid, p.start) not in known]
        return procs

    def stop(self) -> None:
        if self.proc is None:
            return
        self.tree()  # remember the latest children, to reap any the launcher leaves behind
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                print(f"bench: `modelport up` ignored SIGTERM for {STOP_TIMEOUT_S:g}s; killing "
                      "it", file=sys.stderr)
                self.proc.kill()
                self.proc.wait()
        kill_leftovers(self._seen)

    def diagnostics(self, lines: int = 30) -> str:
        """Tail of the launcher's stderr and each component log, for a failed run."""
        parts = []
        for path in [self.log_path, *sorted((self.home / "logs").glob("**/*.log"))]:
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                if tail:
                    parts.append(f"--- {path} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(parts)


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
        self._seen: list[Proc] = []

    def start(self) -> str:
        port = free_port()
        uvicorn = Path(sys.executable).parent / "uvicorn"
        argv = [str(uvicorn), "limit_app:app", "--app-dir", str(BENCH), "--host", "127.0.0.1",
                "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                "--workers", str(self.workers), "--no-access-log", "--log-level", "info"]
        env = os.environ | {"MODELPORT_LIMIT_PACKAGE": str(self.package),
                            "PYTHONPATH": str(BENCH)}
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
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
        if self.proc is None:
            return []
        procs = process_tree(self.proc.pid)
        known = {(p.pid, p.start) for p in self._seen}
        self._seen += [p for p in procs if (p.pid, p.start) not in known]
        return procs

    def stop(self) -> None:
        if self.proc is None:
            return
        self.tree()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        kill_leftovers(self._seen)
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


def batching_workloads() -> tuple[Workload, Workload, dict[str, Any]] | None:
    """The batched/unbatched 5 ms model pair, when both packages exist."""
    batched, unbatched = MODELS / "batch-sleep", MODELS / "batch-sleep-unbatched"
    if not (batched / "config.json").exists() or not (unbatched / "config.json").exists():
        return None
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


def deploy(url: str, plat: Platform, w: Workload) -> list[Proc]:
    """Deploy ``w`` and return the worker processes it added."""
    import modelport

    before = {(p.pid, p.start) for p in plat.tree()}
    t = time.monotonic()
    with modelport.Client(url, token=plat.token) as client:
        client.create(w.package, name=w.name, timeout=DEPLOY_TIMEOUT_S)
    print(f"  deployed {w.name} in {time.monotonic() - t:.1f}s", flush=True)
    return [p for p in plat.tree() if (p.pid, p.start) not in before and p.label == "worker"]


def worker_python(worker: Proc) -> str:
    i = worker.argv.index("-m")
    return worker.argv[i - 1]


# --------------------------------------------------------------------------- report
@dataclass
class Row:
    figure: str
    ref: str
    value: str
    vs: str
    target: str = ""
    result: str = ""


def fmt_ms(x: float) -> str:
    return f"{x:.3f}"


def fmt_rps(x: float) -> str:
    return f"{x:.0f}"


def verdict(ok: bool) -> str:
    return "pass" if ok else "MISS"


def render(rows: list[Row]) -> str:
    head = Row("figure", "reference", "modelport", "vs ref", "target", "result")
    cols = [max(len(getattr(r, f)) for r in [head, *rows])
            for f in ("figure", "ref", "value", "vs", "target", "result")]

    def line(r: Row) -> str:
        if not r.ref and not r.value:  # a section heading
            return r.figure
        return (f"{r.figure:<{cols[0]}}  {r.ref:>{cols[1]}}  {r.value:>{cols[2]}}  "
                f"{r.vs:>{cols[3]}}  {r.target:<{cols[4]}}  {r.result}").rstrip()

    out = [line(head), "-" * (sum(cols) + 10)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"nproc={len(os.sched_getaffinity(0))}  cpu={model}  "
            f"python={platform.python_version()}  os={platform.system()} {platform.release()}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           text=True, capture_output=True).stdout.strip()
    return sha + (" (+uncommitted changes)" if dirty else "")


def record(text: str, date: str, sha: str, command: str) -> None:
    """Add this run under RECORD_HEADING in RESULTS.md, newest first, keeping the rest."""
    entry = (f"### {date}\n\n- **commit:** `{sha}`\n- **command:** `{command}`\n\n"
             f"```\n{text.rstrip()}\n```\n\n")
    doc = RESULTS.read_text() if RESULTS.exists() else "# bench results\n\n"
    if RECORD_HEADING not in doc:
        section = (f"{RECORD_HEADING}\n\nEach `make bench` run recorded with `--record` "
                   "(`bench/suite.py`), newest first;\nbench/README.md says how to read "
                   "the table.\n\n")
        title, rest = "", doc
        if doc.startswith("# "):  # at the top: right after the title line
            title, _, rest = doc.partition("\n")
            title += "\n\n"
        rest = rest.lstrip("\n")
        if rest and not rest.startswith("## "):  # untitled results must not join the section
            rest = "## Earlier results\n\n" + rest
        doc = title + section + rest
    head, _, rest = doc.partition(RECORD_HEADING)
    # newest first: right after the section's intro paragraph
    intro_end = rest.index("\n\n", rest.index("\n\n") + 2) + 2
    RESULTS.write_text(head + RECORD_HEADING + rest[:intro_end] + entry + rest[intro_end:])


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
        raise SystemExit(f"bench: --workloads batching needs {MODELS}/batch-sleep and "
                         f"{MODELS}/batch-sleep-unbatched")
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sha = commit()
    command = shlex.join([os.path.relpath(sys.executable, ROOT)
                          if sys.executable.startswith(str(ROOT)) else sys.executable,
                          os.path.relpath(__file__, ROOT), *(argv or sys.argv[1:])])
    header = [
        f"date:     {date}",
        f"commit:   {sha}",
        f"machine:  {machine()}",
        f"load:     {load()} (1/5/15 min, before the run)",
        f"command:  {command}",
        f"client:   {wrk}, -t1 (one client thread: it shares the cores with the servers),",
        f"          {args.warmup} s warm-up + {args.seconds} s measured per run, 127.0.0.1",
        f"limit:    bench/limit_app.py (Starlette) under uvicorn --loop uvloop --http httptools "
        f"--workers {args.workers}",
        "platform: `modelport up` on a fresh home, POST /v1/services/{name}/infer, auth on "
        "(admin token)",
    ]
    print("\n".join(header), flush=True)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
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
            workers = deploy(url, plat, w)
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
                workers = deploy(url, plat, w)
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
                record(text, date, sha, command)
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
