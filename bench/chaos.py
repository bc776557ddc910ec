"""`make chaos`: each fault of issue 18 against a fresh platform under a steady load of 4
clients, and one table: fault -> requests failed during it, seconds until the service
answers again, anything lost. docs/reliability.md records a run and says how each row is
measured.

    .venv/bin/python bench/chaos.py                       # every scenario
    .venv/bin/python bench/chaos.py --only registry,worker

Per scenario: `modelport up` on a fresh home (tests/conftest.py's start_platform), a
service ``steady`` (answers its worker's pid) under 4 clients calling it back to back
(tests/reliability/faults.py Steady), and a ``slow`` service (0.2 s a call) with 8 async
tasks and a 30-item batch job submitted just before the fault, so some are queued or
running when it strikes. After the fault the script does nothing but wait (the platform
must heal by itself), then checks that every task and batch item ran (each item once) and
that the services and their versions are still there.

Columns: *requests* sent during the scenario; *in flight* at the fault; *failed*: answered
with an error or cut off; *refused*: never connected (nothing listened: only while the
whole platform is down); *no answer for*: the longest time after the fault without a
successful answer; *lost*: tasks, batch items, services or versions missing afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

import modelport  # noqa: E402
from modelport import supervision  # noqa: E402
from modelport.home import HomeLayout  # noqa: E402
from tests.conftest import (  # noqa: E402
    AUTH_HEADERS,
    BIN,
    RunningPlatform,
    component_pid,
    open_to_workers,
    start_platform,
)
from tests.reliability.faults import PID_ECHO, Outcome, Steady, answering_pid, package  # noqa: E402

SLOW = """
import time

class Predictor:
    def predict(self, text):
        time.sleep(0.2)
        return {"echo": text}
"""
TASKS, BATCH_ITEMS = 8, 30
#: how long a scenario waits for the platform to heal before it reports a failure
HEAL_S = 120.0
SCENARIOS = ("registry", "builder", "runtime", "gateway", "worker", "container", "platform",
             "worker-stop", "disk-full", "gitops")
FAULTS = {
    "registry": "SIGKILL registry", "builder": "SIGKILL builder",
    "runtime": "SIGKILL runtime", "gateway": "SIGKILL gateway",
    "worker": "SIGKILL a worker", "container": "SIGKILL a container replica (Docker)",
    "platform": "SIGKILL the whole platform, then `up` on the same home",
    "worker-stop": "SIGSTOP a worker beyond its 2 s timeout",
    "disk-full": "disk full on the home (64 MiB tmpfs filled)",
    "gitops": "GitOps sync killed halfway (registry SIGKILLed inside the commit)",
}


@dataclass
class Row:
    scenario: str
    requests: int = 0
    in_flight: int = 0
    failed: int = 0
    refused: int = 0
    no_answer_s: float | None = None
    lost: str = "?"
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        gap = "did not heal" if self.no_answer_s is None else f"{self.no_answer_s:.1f}"
        return [FAULTS[self.scenario], str(self.requests), str(self.in_flight),
                str(self.failed), str(self.refused), gap, self.lost, "; ".join(self.notes)]


HEAD = ["fault", "requests", "in flight", "failed", "refused", "no answer for (s)", "lost",
        "notes"]


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def up(home: Path, port: int = 0, *args: str, env: dict[str, str] | None = None
       ) -> RunningPlatform:
    return start_platform(home, env=env, argv=[
        str(BIN / "modelport"), "up", "--home", str(home), "--port", str(port),
        "--grpc-port", "0", *args])


def summarize(row: Row, outcomes: list[Outcome], fault_at: float) -> None:
    """The load's side of a row: counts, and the longest time without a 200 after the
    fault (from the fault to the first answer, then between answers)."""
    row.requests = len(outcomes)
    row.in_flight = sum(o.sent <= fault_at <= o.done for o in outcomes)
    bad = [o for o in outcomes if o.status != 200]
    row.refused = sum(o.code in ("ConnectError", "ConnectTimeout") for o in bad)
    row.failed = len(bad) - row.refused
    codes = sorted({f"{o.status or ''} {o.code}".strip() for o in bad
                    if o.code not in ("ConnectError", "ConnectTimeout")})
    if codes:
        row.notes.append("errors: " + ", ".join(codes))
    ok = sorted(o.done for o in outcomes if o.status == 200 and o.done >= fault_at)
    if not ok:
        row.no_answer_s = None
        return
    gaps = [ok[0] - fault_at] + [b - a for a, b in zip(ok, ok[1:], strict=False)]
    row.no_answer_s = max(gaps)


class Work:
    """What must not be lost across the fault: async tasks, a batch job, the services."""

    def __init__(self, plat: RunningPlatform, tmp: Path) -> None:
        self.plat, self.tmp = plat, tmp
        self.tasks: list[str] = []
        self.batch = ""
        self.services: dict[str, list[int]] = {}

    def submit(self) -> None:
        url = self.plat.url
        with httpx.Client(timeout=30) as http:
            for i in range(TASKS):
                r = http.post(f"{url}/v1/services/slow/tasks", json={"text": f"task-{i}"})
                r.raise_for_status()
                self.tasks.append(r.json()["task_id"])
        items = self.tmp / "items.jsonl"
        items.write_text("".join(json.dumps({"text": f"item-{i}"}) + "\n"
                                 for i in range(BATCH_ITEMS)))
        with modelport.Client(url, home=self.plat.home) as c:
            self.batch = c.batch_create("slow", items, concurrency=2)["id"]
            self.services = {s["name"]: sorted(v["number"] for v in c.versions(s["name"]))
                             for s in c.list()["services"]}

    def check(self, url: str, notes: list[str]) -> str:
        """"none", or what is missing, once everything had up to HEAL_S to finish. A task
        that was running when its gateway died is failed as ``task.interrupted``, by the
        at-most-once rule (docs/serving.md): said in ``notes``, not counted as lost."""
        missing: list[str] = []
        deadline = time.monotonic() + HEAL_S
        views: dict[str, dict[str, Any]] = {}
        with httpx.Client(timeout=30, headers=AUTH_HEADERS) as http:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    views = {t: http.get(f"{url}/v1/tasks/{t}").json() for t in self.tasks}
                    if all(v["status"] in ("succeeded", "failed", "cancelled")
                           for v in views.values()):
                        break
                time.sleep(0.5)
        outcome = [v.get("status", "?") if v.get("status") != "failed" else
                   (v.get("error") or {}).get("code", "failed") for v in views.values()]
        interrupted = outcome.count("task.interrupted")
        done = outcome.count("succeeded")
        if interrupted:
            notes.append(f"tasks: {done} succeeded, {interrupted} in flight at the fault "
                         "failed as task.interrupted (at most once)")
        if done + interrupted < len(self.tasks):
            missing.append(f"tasks {done}/{len(self.tasks)} succeeded ({sorted(outcome)})")
        with modelport.Client(url, home=self.plat.home) as c:
            try:
                job = c.batch_wait(self.batch, timeout=HEAL_S)
                out = c.batch_results(self.batch, self.tmp / "results")
                sources = [json.loads(line)["source"] for line in out.read_text().splitlines()]
                if (job["status"], job["done"], job["failed"]) != ("succeeded", BATCH_ITEMS, 0) \
                        or len(sources) != len(set(sources)) or len(sources) != BATCH_ITEMS:
                    missing.append(f"batch {job['status']} {job['done']}/{BATCH_ITEMS} done, "
                                   f"{len(sources)} results, {len(set(sources))} distinct")
            except Exception as exc:  # noqa: BLE001 - reported in the row
                missing.append(f"batch: {exc}")
            now = {s["name"]: sorted(v["number"] for v in c.versions(s["name"]))
                   for s in c.list()["services"]}
        for name, versions in self.services.items():  # a sync may add versions, not drop
            if not set(versions) <= set(now.get(name) or ()):
                missing.append(f"service {name}: versions {versions} -> {now.get(name)}")
        return "none" if not missing else "; ".join(missing)


def heal(load: Steady, fault_at: float, extra: Callable[[], bool] = lambda: True) -> bool:
    """Until a request sent after the fault was answered and ``extra()`` holds; then 3 s
    more of load, so the row shows the platform steady again."""
    deadline = time.monotonic() + HEAL_S
    while load.recovered_at(fault_at) is None or not extra():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    time.sleep(3.0)
    return True


@contextlib.contextmanager
def platform_with_load(tmp: Path, *args: str, env: dict[str, str] | None = None,
                       port: int = 0, steady_spec: dict[str, Any] | None = None,
                       steady_config: dict[str, Any] | None = None
                       ) -> Iterator[tuple[RunningPlatform, Steady, Work]]:
    home = tmp / "home"
    plat = up(home, port, *args, env=env)
    try:
        with modelport.Client(plat.url, home=home) as c:
            c.create(package(tmp / "steady", "steady", PID_ECHO, **(steady_config or {})),
                     name="steady", spec=json.dumps(steady_spec) if steady_spec else None)
            c.create(package(tmp / "slow", "slow", SLOW), name="slow")
        work = Work(plat, tmp)
        with Steady(f"{plat.url}/v1/services/steady/infer", {"text": "x"}) as load:
            load.wait_answers(40)
            yield plat, load, work
    finally:
        plat.stop()


def kill_component(tmp: Path, name: str) -> Row:
    row = Row(name)
    with platform_with_load(tmp) as (plat, load, work):
        run = HomeLayout(plat.home).run
        old = component_pid(plat.proc.pid, name)
        assert old is not None, name
        work.submit()
        fault_at = time.monotonic()
        os.kill(old, signal.SIGKILL)

        def back() -> bool:
            comp = {c["name"]: c for c in supervision.read(run)["components"]}.get(name, {})
            return comp.get("state") == "running" and comp.get("pid") not in (None, 0, old)

        healed = heal(load, fault_at, back)
        back_at = time.monotonic()
        load.stop()
        summarize(row, load.snapshot(), fault_at)
        if healed:
            row.notes.append(f"{name} serving again within {back_at - 3 - fault_at:.1f} s")
        row.lost = work.check(plat.url, row.notes)
    return row


def kill_worker(tmp: Path) -> Row:
    row = Row("worker")
    with platform_with_load(tmp) as (plat, load, work):
        url = f"{plat.url}/v1/services/steady/infer"
        pid = answering_pid(url)
        work.submit()
        fault_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        heal(load, fault_at, lambda: answering_pid(url) not in (0, pid))
        load.stop()
        summarize(row, load.snapshot(), fault_at)
        row.lost = work.check(plat.url, row.notes)
    return row


def docker_ready() -> str:
    """"" when a Docker engine and the base image are there, else why not."""
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
        client.images.get(os.environ.get("MODELPORT_TEST_BASE_IMAGE",
                                          "modelport/base:bookworm"))
        client.close()
    except Exception as exc:  # noqa: BLE001 - the row says why
        return f"skipped: no Docker engine with the base image ({type(exc).__name__}; " \
               ".ci/docker-setup provides both)"
    return ""


def kill_container(tmp: Path) -> Row:
    row = Row("container")
    if why := docker_ready():
        row.lost, row.notes = "-", [why]
        return row
    import docker

    image = os.environ.get("MODELPORT_TEST_BASE_IMAGE", "modelport/base:bookworm")
    client = docker.from_env(timeout=60)
    with platform_with_load(tmp, env={"MODELPORT_BUILDER_DOCKER_BASE_IMAGE": image},
                            steady_spec={"runtime": "docker"}) as (plat, load, work):
        running = [c for c in client.containers.list(
            filters={"label": "modelport.service=steady"}) if c.status == "running"]
        assert running, "no container serves steady"
        work.submit()
        fault_at = time.monotonic()
        running[0].kill()  # SIGKILL, from outside the platform
        heal(load, fault_at, lambda: any(
            c.id != running[0].id and c.status == "running" for c in client.containers.list(
                filters={"label": "modelport.service=steady"})))
        load.stop()
        summarize(row, load.snapshot(), fault_at)
        row.lost = work.check(plat.url, row.notes)
    client.close()
    return row


def kill_everything(pid: int) -> None:
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=30)


def kill_platform(tmp: Path) -> Row:
    row = Row("platform")
    port = free_port()
    home = tmp / "home"
    with platform_with_load(tmp, port=port) as (plat, load, work):
        work.submit()
        fault_at = time.monotonic()
        kill_everything(plat.proc.pid)
        again = up(home, port)  # what an operator (or systemd) does: `up` again
        try:
            heal(load, fault_at)
            load.stop()
            summarize(row, load.snapshot(), fault_at)
            row.lost = work.check(again.url, row.notes)
            row.notes.append("refused: while nothing listened, until `up` was back")
        finally:
            again.stop()
    return row


def stop_worker(tmp: Path) -> Row:
    row = Row("worker-stop")
    with platform_with_load(tmp, steady_config={"timeout_s": 2}) as (plat, load, work):
        url = f"{plat.url}/v1/services/steady/infer"
        worker = psutil.Process(answering_pid(url))
        work.submit()
        fault_at = time.monotonic()
        worker.send_signal(signal.SIGSTOP)
        try:
            heal(load, fault_at, lambda: answering_pid(url) not in (0, worker.pid))
        finally:
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.send_signal(signal.SIGCONT)
        load.stop()
        summarize(row, load.snapshot(), fault_at)
        row.notes.append("default probes (health every 10 s, 10 s timeout, 3 misses)")
        row.lost = work.check(plat.url, row.notes)
    return row


def disk_full(tmp: Path) -> Row:
    row = Row("disk-full")
    home = tmp / "home"
    home.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(home)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        row.lost, row.notes = "-", [f"skipped: cannot mount a tmpfs ({mounted.stderr.strip()})"]
        return row
    try:
        with platform_with_load(tmp) as (plat, load, work):
            work.submit()
            fillers = []
            fault_at = time.monotonic()
            for i, piece in enumerate((1 << 20, 4096, 64)):
                path = home / f"filler-{i}"
                fillers.append(path)
                with path.open("wb", buffering=0) as f, contextlib.suppress(OSError):
                    while True:
                        f.write(b"\0" * piece)
            with httpx.Client(timeout=60, headers=AUTH_HEADERS) as http:
                r = http.post(f"{plat.url}/v1/services/slow/tasks", json={"text": "full"})
                row.notes.append(f"while full: task submit {r.status_code} "
                                 f"{r.json().get('error', {}).get('code', '')}")
                r = http.post(f"{plat.url}/api/v1/keys", json={"scopes": ["read"]})
                row.notes.append(f"key {r.status_code}")
            time.sleep(5.0)  # inference goes on meanwhile
            for f in fillers:
                f.unlink()
            freed = time.monotonic()
            with httpx.Client(timeout=60, headers=AUTH_HEADERS) as http:
                r = http.post(f"{plat.url}/api/v1/keys", json={"scopes": ["read"]})
            row.notes.append(f"after freeing: key {r.status_code} in "
                             f"{time.monotonic() - freed:.1f} s")
            heal(load, fault_at)
            load.stop()
            summarize(row, load.snapshot(), fault_at)
            row.lost = work.check(plat.url, row.notes)
    finally:
        if subprocess.run(["umount", str(home)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(home)], capture_output=True)
    return row


def gitops(tmp: Path) -> Row:
    from tests.watcher.support import Repo, service_yaml

    row = Row("gitops")
    names = ["g1", "g2", "g3"]
    repo = Repo(tmp / "repo")

    def marked(mark: str) -> str:
        for n in names:
            dest = repo.root / "models" / n
            package(dest, n, f"class Predictor:\n    def predict(self, text):\n"
                             f"        return {{'mark': {mark!r}}}\n")
            repo.write(f"config/{n}.yaml", service_yaml(n, package=f"../models/{n}"))
        return repo.commit(mark)

    first = marked("A")
    home = tmp / "home"
    plat = up(home, 0, "--config", str(repo.config))
    commits: list[dict[str, str]] = []
    try:
        def in_force() -> dict[str, str]:
            r = httpx.get(f"{plat.url}/api/v1/services", headers=AUTH_HEADERS, timeout=30)
            live = {s["name"]: s for s in r.json()["services"]}
            return {n: live.get(n, {}).get("spec", {}).get("annotations", {}).get(
                "modelport.io/source-commit", "") for n in names}

        deadline = time.monotonic() + HEAL_S
        while set(in_force().values()) != {first}:
            assert time.monotonic() < deadline, f"commit A never in force: {in_force()}"
            time.sleep(0.5)
        with modelport.Client(plat.url, home=home) as c:
            c.create(package(tmp / "slow", "slow", SLOW), name="slow")
        work = Work(plat, tmp)
        with Steady(f"{plat.url}/v1/services/g1/infer", {"text": "x"}) as load:
            load.wait_answers(40)
            work.submit()
            faults = home / "faults"
            faults.mkdir(exist_ok=True)
            (faults / "gitops-apply-kill-after").write_text("2")
            second = marked("B")
            fault_at = time.monotonic()
            deadline = time.monotonic() + HEAL_S
            while True:
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    commits.append(in_force())
                if commits and set(commits[-1].values()) == {second}:
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            in_force_at = time.monotonic()
            time.sleep(3.0)
            load.stop()
        summarize(row, load.snapshot(), fault_at)
        mixed = [c for c in commits if len(set(c.values())) > 1]
        whole = bool(commits) and set(commits[-1].values()) == {second}
        row.notes.append(f"commit B in force for all 3 after {in_force_at - fault_at:.1f} s"
                         if whole else "commit B never in force for all 3")
        registry_crashes = {c["name"]: c for c in supervision.read(HomeLayout(home).run)
                            ["components"]}.get("registry", {}).get("crash_count", 0)
        row.notes.append(f"registry crashes: {registry_crashes}; {len(commits)} samples, "
                         f"{len(mixed)} mixed")
        lost = work.check(plat.url, row.notes)
        row.lost = lost if not mixed and whole else f"{lost}; mixed commits: {mixed[:2]}"
    finally:
        plat.stop()
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(SCENARIOS),
                    help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    ap.add_argument("--keep", action="store_true", help="keep the temporary homes")
    args = ap.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        ap.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    run = {"registry": lambda t: kill_component(t, "registry"),
           "builder": lambda t: kill_component(t, "builder"),
           "runtime": lambda t: kill_component(t, "runtime"),
           "gateway": lambda t: kill_component(t, "gateway"),
           "worker": kill_worker, "container": kill_container, "platform": kill_platform,
           "worker-stop": stop_worker, "disk-full": disk_full, "gitops": gitops}
    rows: list[Row] = []
    began = time.monotonic()
    for name in chosen:
        tmp = Path(tempfile.mkdtemp(prefix=f"chaos-{name}-"))
        open_to_workers(tmp)
        print(f"chaos: {FAULTS[name]} ...", flush=True)
        t0 = time.monotonic()
        try:
            row = run[name](tmp)
        except Exception as exc:  # noqa: BLE001 - one broken scenario is a row, not the end
            row = Row(name, lost="?", notes=[f"scenario failed: {type(exc).__name__}: {exc}"])
        finally:
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
        rows.append(row)
        print(f"chaos:   {' | '.join(row.cells()[1:])} ({time.monotonic() - t0:.0f} s)",
              flush=True)
    print(f"\n{len(rows)} scenarios in {time.monotonic() - began:.0f} s, 4 clients each "
          f"({os.cpu_count()} CPUs)\n")
    print(markdown(rows))
    healed = all(r.no_answer_s is not None and r.no_answer_s <= 30 for r in rows
                 if not any(n.startswith("skipped") for n in r.notes))
    nothing_lost = all(r.lost in ("none", "-") for r in rows)
    print(f"\ntargets: recovers by itself within 30 s: {'yes' if healed else 'NO'}; "
          f"nothing lost: {'yes' if nothing_lost else 'NO'}")
    return 0 if healed and nothing_lost else 1


if __name__ == "__main__":
    sys.exit(main())
