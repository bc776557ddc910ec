"""GitOps benchmark: commit-to-first-prediction, and what an idle watcher costs.

Run as ``.venv/bin/python bench/gitops.py [--rounds 5] [--services 200] [--idle 60]``.
In one run it

1. starts ``modelport up`` on a fresh temporary home and a ``modelport watch`` on a
   fresh git repository (polling interval 300 s, so only watchdog reacts to commits),
2. warms the builder's environment cache with one service, then ``--rounds`` times
   commits the YAML of a new service using the same (cached) package and times
   ``git commit`` -> first successful ``POST /v1/services/{name}/infer``,
3. stops that watcher, commits ``--services`` service YAMLs (replicas 0: declared,
   versioned and built, no worker processes) to a second repository, starts a watcher
   on it with the default 30 s interval, times its first sync, then samples its CPU
   time (including git children) and RSS while idle for ``--idle`` seconds.

Everything stays on 127.0.0.1; the platform and watchers are stopped with SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from harness.paths import ROOT
from harness.platform import Platform
from harness.processes import raise_on_sigterm, start_session, stop_session
from harness.report import context

sys.path.insert(0, str(ROOT))  # for tests/watcher/support.py: repositories and service YAMLs
BIN = Path(sys.executable).parent

from tests.watcher.support import Repo, service_yaml  # noqa: E402


def watch(config: Path, url: str, interval: str, log: Path, token: str
          ) -> subprocess.Popen[bytes]:
    """``modelport watch`` on ``config``, with the admin token (auth is on)."""
    return start_session([str(BIN / "modelport"), "watch", str(config), "--url", url,
                          "--interval", interval], log, os.environ | {"MODELPORT_TOKEN": token})


def predict_ok(client: httpx.Client, url: str, name: str) -> bool:
    try:
        r = client.post(f"{url}/v1/services/{name}/infer", json={"text": "hi"})
    except httpx.TransportError:
        return False
    return r.status_code == 200


def commit_to_prediction(client: httpx.Client, url: str, repo: Repo, name: str,
                         timeout: float = 300) -> float:
    repo.write(f"config/{name}.yaml", service_yaml(name))
    t0 = time.perf_counter()
    repo.commit(f"add {name}")
    deadline = time.monotonic() + timeout
    while not predict_ok(client, url, name):
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not answer within {timeout}s")
        time.sleep(0.01)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--idle", type=float, default=60.0)
    a = ap.parse_args()
    raise_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="modelport-bench-gitops-"))
    print(context(__file__), flush=True)
    up = Platform(tmp)
    watchers: list[subprocess.Popen[bytes]] = []
    try:
        url = up.start()
        client = httpx.Client(timeout=30, headers={"authorization": f"Bearer {up.token}"})

        # 1. commit -> first prediction, cached package ---------------------------------
        repo = Repo(tmp / "repo")
        repo.commit("empty")
        watchers.append(watch(repo.config, url, "300s", tmp / "watch1.log", up.token))
        time.sleep(2)
        warm = commit_to_prediction(client, url, repo, "warmup")
        times = [commit_to_prediction(client, url, repo, f"svc{i}") for i in range(a.rounds)]
        print(f"\ncommit -> first prediction (new service, cached environment), "
              f"{a.rounds} rounds:")
        print(f"  first ever (environment built): {warm:.2f} s")
        print(f"  median {statistics.median(times):.2f} s  min {min(times):.2f} s  "
              f"max {max(times):.2f} s  all: {', '.join(f'{t:.2f}' for t in times)}")
        stop_session(watchers.pop())

        # 2. idle watcher on N YAMLs -----------------------------------------------------
        big = Repo(tmp / "big")
        for i in range(a.services):
            big.write(f"config/s{i:03d}.yaml", service_yaml(f"idle{i:03d}", replicas=0))
        big.commit(f"{a.services} services")
        t0 = time.perf_counter()
        w = watch(big.config, url, "30s", tmp / "watch2.log", up.token)
        watchers.append(w)
        log = tmp / "watch2.log"
        while "synced" not in log.read_text() and "not applied" not in log.read_text():
            if w.poll() is not None or time.perf_counter() - t0 > 900:
                raise SystemExit(f"watcher failed:\n{log.read_text()}")
            time.sleep(0.1)
        first = time.perf_counter() - t0
        print(f"\nfirst sync of {a.services} service YAMLs (upload, create, pin): {first:.1f} s")
        print("  " + log.read_text().splitlines()[1][:100] + "...")
        time.sleep(5)  # let the first sync's aftermath settle
        proc = psutil.Process(w.pid)

        def cpu() -> float:
            t = proc.cpu_times()
            return t.user + t.system + t.children_user + t.children_system

        c0, w0 = cpu(), time.perf_counter()
        rss = []
        while time.perf_counter() - w0 < a.idle:
            rss.append(proc.memory_info().rss)
            time.sleep(1)
        c1, w1 = cpu(), time.perf_counter()
        syncs = log.read_text().count("synced") - 1
        print(f"idle watcher over {w1 - w0:.0f} s (interval 30 s, {syncs} resync(s), "
              f"webhook long poll every 5 s):")
        print(f"  CPU {1000 * (c1 - c0):.0f} ms = {100 * (c1 - c0) / (w1 - w0):.2f} % of one "
              f"core (watcher + its git children)")
        print(f"  RSS median {statistics.median(rss) / 2**20:.1f} MiB, max "
              f"{max(rss) / 2**20:.1f} MiB")
        status = client.get(f"{url}/api/v1/gitops").json()
        rows = [r for r in status["services"] if r["source"].startswith(str(big.root) + "#")]
        synced = sum(1 for r in rows if r["sync"] == "Synced")
        print(f"  status: {synced}/{len(rows)} services of that repository Synced")
        print(json.dumps({"commit_to_prediction_s": times, "first_ever_s": warm,
                          "first_sync_200_s": first, "idle_cpu_pct": 100 * (c1 - c0) /
                          (w1 - w0), "idle_rss_mib": max(rss) / 2**20}))
        return 0
    finally:
        for w in watchers:
            stop_session(w)
        up.stop()


if __name__ == "__main__":
    sys.exit(main())
