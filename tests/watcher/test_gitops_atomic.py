"""A GitOps sync killed halfway (issue 18 §3 and its chaos scenario): a commit that changes
three services is applied whole or not at all.

A real git repository, a real platform, and real SIGKILLs: of the watcher after its 1st
and then its 2nd write (the intent, the staged package), of the registry inside the
ApplyCommit transaction (the fault file docs/gitops.md describes), and of the registry
under `modelport up --config` with nothing run afterwards but the watcher's own retry.
A thread reads the three services every 50 ms the whole time; no read may show them at
different commits.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import AUTH_HEADERS, RunningPlatform, component_pid, start_platform
from tests.watcher.support import ROOT, Repo, cli, service_yaml, wait_until

KILL_FILE = "gitops-apply-kill-after"
#: commit B's predictor: answers show which package content serves
PREDICT_B = ("class Echo:\n    def setup(self):\n        pass\n\n"
             "    def predict(self, text):\n        return {'text': 'B:' + text}\n")


class Sampler:
    """Reads the services every 50 ms: per read, each one's (source-commit annotation,
    env COMMIT), both written with its spec."""

    def __init__(self, url: str, names: tuple[str, ...]) -> None:
        self.url, self.names = url, names
        self.samples: list[dict[str, tuple[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10, headers=AUTH_HEADERS) as http:
            while not self._stop.wait(0.05):
                try:
                    r = http.get(f"{self.url}/api/v1/services")
                except httpx.HTTPError:
                    continue  # the platform is restarting: no read, nothing to compare
                if r.status_code != 200:
                    continue
                seen = {s["name"]: (s["spec"]["annotations"].get(
                    "modelport.io/source-commit", ""), s["spec"]["env"].get("COMMIT", ""))
                    for s in r.json()["services"] if s["name"] in self.names}
                self.samples.append(seen)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)

    def mixes(self) -> list[dict[str, tuple[str, str]]]:
        """Reads where the services were not all there, or not all at one commit."""
        return [s for s in self.samples
                if set(s) != set(self.names) or len(set(s.values())) != 1]

    def commits(self) -> set[str]:
        return {v[0] for s in self.samples for v in s.values()}


def at_a(repo: Repo, names: tuple[str, ...]) -> str:
    for n in names:
        repo.write(f"config/{n}.yaml", service_yaml(n, extra="  env: {COMMIT: A}\n"))
    return repo.commit("commit A: three services")


def to_b(repo: Repo, names: tuple[str, ...]) -> str:
    """New package content and a new spec for all three, in one commit."""
    repo.write("models/echo/predict.py", PREDICT_B)
    for n in names:
        repo.write(f"config/{n}.yaml", service_yaml(n, extra="  env: {COMMIT: B}\n"))
    return repo.commit("commit B: new model code and env for all three")


def services(url: str, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{url}/api/v1/services", headers=AUTH_HEADERS, timeout=30)
    r.raise_for_status()
    return {s["name"]: s for s in r.json()["services"] if s["name"] in names}


def commits_of(url: str, names: tuple[str, ...]) -> dict[str, str]:
    return {n: s["spec"]["annotations"].get("modelport.io/source-commit", "")
            for n, s in services(url, names).items()}


def source(url: str, repo: Repo) -> dict[str, Any]:
    data = httpx.get(f"{url}/api/v1/gitops", headers=AUTH_HEADERS, timeout=30).json()
    return next(s for s in data["sources"] if s["repo"] == str(repo.root))


def condition(src: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in src["conditions"] if c["type"] == kind)


def served_b(url: str, name: str) -> bool:
    r = httpx.post(f"{url}/v1/services/{name}/infer", json={"text": "hi"}, timeout=60)
    return r.status_code == 200 and r.json()["data"]["text"] == "B:hi"


def watcher_once(url: str, repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.watcher", str(repo.config),
                           "--once", "--url", url, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def arm(home: Path, after: int) -> Path:
    """The registry's fault file: SIGKILL inside the next ApplyCommit after `after` services."""
    (home / "faults").mkdir(exist_ok=True)
    path = home / "faults" / KILL_FILE
    path.write_text(str(after))
    return path


def test_a_watcher_killed_halfway_leaves_the_previous_commit_then_resumes(
        platform: RunningPlatform, tmp_path: Path) -> None:
    url, names = platform.url, ("atom-a", "atom-b", "atom-c")
    repo = Repo(tmp_path / "repo")
    a = at_a(repo, names)
    done = watcher_once(url, repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert commits_of(url, names) == dict.fromkeys(names, a)

    with Sampler(url, names) as sampler:
        b = to_b(repo, names)
        for writes, progress in ((1, "Applying"), (2, "Resuming")):
            killed = watcher_once(url, repo, "--fault-kill-after-writes", str(writes))
            assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
            assert commits_of(url, names) == dict.fromkeys(names, a)  # nothing of B
            src = source(url, repo)
            assert src["synced_commit"] == a and src["applying"] == b
            assert src["apply_attempts"] == writes
            assert condition(src, "Progressing")["reason"] == progress
            synced = condition(src, "Synced")
            assert synced["reason"] == "Applying" and f"commit {a[:12]} is in force" in \
                synced["message"]
            status = cli(url, "status").stdout
            assert f"Progressing: True {progress}" in status, status
            assert f"applying {b[:12]} (attempt {writes}" in status, status

        done = watcher_once(url, repo)
        assert done.returncode == 0, done.stdout + done.stderr
        assert commits_of(url, names) == dict.fromkeys(names, b)
        src = source(url, repo)
        assert src["synced_commit"] == b and src["applying"] == "" and \
            src["apply_attempts"] == 0
        assert condition(src, "Synced")["reason"] == "Synced"
        assert condition(src, "Progressing")["reason"] == "Idle"
        for n in names:
            wait_until(lambda n=n: served_b(url, n), timeout=180, what=f"{n} serves B")
    assert sampler.samples and sampler.commits() == {a, b}, sampler.commits()
    assert sampler.mixes() == [], sampler.mixes()[:3]
    for n in names:
        cli(url, "delete", n, check=True)


def test_a_registry_killed_inside_the_transaction_keeps_the_previous_commit(
        platform: RunningPlatform, tmp_path: Path) -> None:
    url, names = platform.url, ("atom2-a", "atom2-b", "atom2-c")
    repo = Repo(tmp_path / "repo")
    a = at_a(repo, names)
    done = watcher_once(url, repo)
    assert done.returncode == 0, done.stdout + done.stderr
    registry = component_pid(platform.proc.pid, "registry")

    with Sampler(url, names) as sampler:
        b = to_b(repo, names)
        fault = arm(platform.home, 1)
        failed = watcher_once(url, repo)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "sync failed" in failed.stderr and "Traceback" not in failed.stderr, \
            failed.stderr
        assert not fault.exists()  # the registry took it as it read it
        wait_until(lambda: component_pid(platform.proc.pid, "registry") not in (
            None, registry), what="the registry restarted by the launcher")
        wait_until(lambda: services(url, names), what="the registry answers again")
        assert commits_of(url, names) == dict.fromkeys(names, a)
        src = source(url, repo)
        assert src["synced_commit"] == a and src["applying"] == b

        done = watcher_once(url, repo)
        assert done.returncode == 0, done.stdout + done.stderr
        assert commits_of(url, names) == dict.fromkeys(names, b)
        assert source(url, repo)["synced_commit"] == b
        for n in names:
            wait_until(lambda n=n: served_b(url, n), timeout=180, what=f"{n} serves B")
    assert sampler.commits() == {a, b}, sampler.commits()
    assert sampler.mixes() == [], sampler.mixes()[:3]
    for n in names:
        cli(url, "delete", n, check=True)


def test_watch_once_says_a_clean_error_when_the_platform_is_down(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    at_a(repo, ("nowhere",))
    res = watcher_once("http://127.0.0.1:9", repo)
    assert res.returncode == 1
    assert "sync failed: cannot reach the platform at http://127.0.0.1:9" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout, res.stderr


def test_under_up_config_the_watchers_own_retry_applies_the_whole_commit(
        tmp_path: Path) -> None:
    names = ("atom3-a", "atom3-b", "atom3-c")
    repo = Repo(tmp_path / "repo")
    a = at_a(repo, names)
    plat = start_platform(tmp_path / "home", "--config", str(repo.config))
    try:
        url = plat.url
        wait_until(lambda: commits_of(url, names) == dict.fromkeys(names, a), timeout=180,
                   what="commit A applied by the supervised watcher")
        wait_until(lambda: source(url, repo)["synced_commit"] == a, what="A in force")
        registry = component_pid(plat.proc.pid, "registry")
        with Sampler(url, names) as sampler:
            fault = arm(plat.home, 2)  # after two of the three services
            b = to_b(repo, names)  # the watcher sees the commit itself; nothing else is run
            wait_until(lambda: commits_of(url, names) == dict.fromkeys(names, b),
                       timeout=240, what="the watcher's retry applied B")
            assert not fault.exists()
            assert component_pid(plat.proc.pid, "registry") != registry  # it was killed
            src = source(url, repo)
            assert src["synced_commit"] == b and src["applying"] == ""
            assert condition(src, "Synced")["reason"] == "Synced"
        log = (plat.home / "logs" / "watcher.log").read_text()
        assert "will retry" in log, log[-2000:]
        assert sampler.commits() == {a, b}, sampler.commits()
        assert sampler.mixes() == [], sampler.mixes()[:3]
    finally:
        assert plat.stop() == 0


def test_a_service_the_registry_refuses_keeps_the_whole_commit_out(
        platform: RunningPlatform, tmp_path: Path) -> None:
    url, names = platform.url, ("atom4-a", "atom4-b")
    repo = Repo(tmp_path / "repo")
    a = at_a(repo, names)
    done = watcher_once(url, repo)
    assert done.returncode == 0, done.stdout + done.stderr
    for n in names:
        repo.write(f"config/{n}.yaml", service_yaml(n, extra="  env: {COMMIT: B}\n"))
    # valid YAML naming a registry version that does not exist: only the registry can tell
    repo.write("config/atom4-ref.yaml", "apiVersion: modelport/v1\nkind: ModelService\n"
               "metadata: {name: atom4-ref}\nspec:\n  model: {name: atom4-a, version: 9}\n")
    b = repo.commit("two updates and a service pinned to a missing version")
    refused = watcher_once(url, repo)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "not applied: the platform refused service atom4-ref" in refused.stdout, \
        refused.stdout
    assert commits_of(url, names) == dict.fromkeys(names, a)  # the updates are not applied
    assert "atom4-ref" not in services(url, ("atom4-ref",))
    rows = {r["service"]: r for r in httpx.get(f"{url}/api/v1/gitops", headers=AUTH_HEADERS,
                                               timeout=30).json()["services"]}
    assert rows["atom4-ref"]["sync"] == "Failed" and "version 9" in rows["atom4-ref"]["message"]
    assert {rows[n]["sync"] for n in names} == {"OutOfSync"}
    assert all("atom4-ref" in rows[n]["message"] and b[:12] in rows[n]["message"]
               for n in names)
    src = source(url, repo)
    synced = condition(src, "Synced")
    assert src["synced_commit"] == a and src["applying"] == ""
    assert synced["reason"] == "NotApplied" and f"commit {a[:12]} is in force" in \
        synced["message"]
    for n in names:
        cli(url, "delete", n, check=True)
