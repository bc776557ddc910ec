"""GitOps against a real platform and real git repositories (the issue's acceptance list).

Long-running watchers use a 300 s polling interval, so anything they do within a test
was triggered by watchdog (a commit or a saved file) or by the webhook, not by polling.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import AUTH_HEADERS
from tests.watcher.support import CLI, ECHO, Repo, cli, cli_json, service_yaml, wait_until


@pytest.fixture
def watchers():  # noqa: ANN201
    procs: list[subprocess.Popen[str]] = []

    def start(url: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([CLI, "watch", *args, "--url", url], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def get(url: str, name: str) -> dict:
    r = httpx.get(f"{url}/api/v1/services/{name}", timeout=30, headers=AUTH_HEADERS)
    return r.json() if r.status_code == 200 else {}


def names(url: str) -> set[str]:
    return {s["name"] for s in httpx.get(f"{url}/api/v1/services", timeout=30,
                                         headers=AUTH_HEADERS).json()["services"]}


def gitops(url: str) -> dict:
    return httpx.get(f"{url}/api/v1/gitops", timeout=30, headers=AUTH_HEADERS).json()


def row(url: str, service: str) -> dict:
    return next((r for r in gitops(url)["services"] if r["service"] == service), {})


def predicts(url: str, name: str) -> bool:
    r = httpx.post(f"{url}/v1/services/{name}/infer", json={"text": "hi"}, timeout=30)
    return r.status_code == 200 and r.json()["data"]["text"] == "hi"


def once(url: str, repo: Repo, *args: str) -> dict:
    return cli_json(url, "watch", str(repo.config), "--once", *args)


def test_commit_serves_scales_prunes_and_leaves_cli_services_alone(platform, tmp_path: Path,
                                                                   watchers) -> None:
    url = platform.url
    repo = Repo(tmp_path / "repo")
    repo.write("config/lifecycle.yaml", service_yaml("lifecycle"))
    repo.commit("add lifecycle")
    cli(url, "create", str(ECHO), "--name", "handmade", check=True)
    before = get(url, "handmade")
    proc = watchers(url, str(repo.config), "--interval", "300s")

    wait_until(lambda: predicts(url, "lifecycle"), what="lifecycle serves")
    ann = get(url, "lifecycle")["spec"]["annotations"]
    assert ann["modelport.io/managed-by"] == "gitops"
    assert ann["modelport.io/source-path"] == "config/lifecycle.yaml"
    assert ann["modelport.io/source-commit"] == repo.head()

    repo.write("config/lifecycle.yaml", service_yaml("lifecycle", replicas=2))
    head = repo.commit("two replicas")
    wait_until(lambda: get(url, "lifecycle")["ready_replicas"] == 2, what="2 replicas")
    wait_until(lambda: row(url, "lifecycle").get("commit") == head, what="status commit")
    r = row(url, "lifecycle")
    assert r["sync"] == "Synced" and r["health"] == "Healthy" and r["last_sync"] > 0

    # a commit that changes only a serving field (here concurrency) is applied too
    repo.write("config/lifecycle.yaml", service_yaml("lifecycle", replicas=2,
                                                     extra="  concurrency: 2\n"))
    repo.commit("concurrency 2")
    wait_until(lambda: get(url, "lifecycle")["spec"]["concurrency"] == 2, what="concurrency")

    (repo.config / "lifecycle.yaml").unlink()
    head = repo.commit("remove lifecycle")
    wait_until(lambda: "lifecycle" not in names(url), what="pruned")
    now = get(url, "handmade")  # the CLI-made service next to it is untouched
    assert now["spec"] == before["spec"] and now["spec"]["annotations"] == {}
    assert get(url, "handmade")["generation"] == before["generation"]
    source = next(s for s in gitops(url)["sources"] if s["repo"] == str(repo.root))
    wait_until(lambda: next(s for s in gitops(url)["sources"] if s["repo"] == str(
        repo.root))["synced_commit"] == head, what="source synced")
    assert any(h["commit"] == head for h in next(s for s in gitops(url)["sources"]
                                                if s["id"] == source["id"])["history"])
    reasons = [e["reason"] for e in cli_json(url, "events", "lifecycle")]
    assert {"GitOpsCreated", "GitOpsUpdated", "GitOpsPruned"} <= set(reasons)
    assert proc.poll() is None
    cli(url, "delete", "handmade", check=True)


def test_invalid_document_blocks_its_commit_and_the_next_good_commit_applies(
        platform, tmp_path: Path, watchers) -> None:
    url = platform.url
    repo = Repo(tmp_path / "repo")
    repo.write("config/valid.yaml", service_yaml("valid"))
    repo.commit()
    proc = watchers(url, str(repo.config), "--interval", "300s")
    wait_until(lambda: get(url, "valid").get("phase") == "running", what="valid runs")

    repo.write("config/valid.yaml", service_yaml("valid", replicas=2))
    repo.write("config/invalid.yaml", "apiVersion: modelport/v1\nkind: ModelService\n"
               "metadata: {name: invalid}\nspec:\n  package: ../models/echo\n"
               "  replicas: -1\n")
    bad = repo.commit("one good, one bad")
    wait_until(lambda: row(url, "invalid").get("sync") == "Failed", what="invalid Failed")
    r = row(url, "invalid")
    assert (r["file"], r["line"]) == ("config/invalid.yaml", 6), r
    assert "replicas" in r["message"]
    v = row(url, "valid")
    assert v["sync"] == "OutOfSync" and bad[:12] in v["message"] and "invalid.yaml:6" in v[
        "message"]
    assert get(url, "valid")["spec"]["replicas"] == 1  # nothing of the commit was applied
    assert "invalid" not in names(url)
    source = next(s for s in gitops(url)["sources"] if s["repo"] == str(repo.root))
    assert source["head"] == bad and source["synced_commit"] != bad
    assert proc.poll() is None  # the watcher keeps running

    repo.write("config/invalid.yaml", service_yaml("invalid"))
    good = repo.commit("fix")
    wait_until(lambda: row(url, "invalid").get("sync") == "Synced" and row(
        url, "valid").get("commit") == good, what="next good commit applied")
    assert get(url, "valid")["spec"]["replicas"] == 2 and "invalid" in names(url)
    (repo.config / "valid.yaml").unlink()
    (repo.config / "invalid.yaml").unlink()
    repo.commit("clean up")
    wait_until(lambda: not {"valid", "invalid"} & names(url), what="cleaned up")


def test_uncommitted_edits_are_reported_not_applied_unless_worktree(platform, tmp_path: Path,
                                                                     watchers) -> None:
    url = platform.url
    repo = Repo(tmp_path / "repo")
    repo.write("config/edit.yaml", service_yaml("edit"))
    repo.commit()
    assert once(url, repo)["applied"]
    repo.write("config/edit.yaml", service_yaml("edit", replicas=2))  # saved, not committed
    result = once(url, repo)
    assert result["uncommitted"] == ["config/edit.yaml"]
    assert [c["action"] for c in result["changes"]] == ["keep"]
    assert get(url, "edit")["spec"]["replicas"] == 1
    source = next(s for s in gitops(url)["sources"] if s["repo"] == str(repo.root))
    assert source["uncommitted"] == ["config/edit.yaml"] and source["mode"] == "commit"
    status = cli(url, "status")
    assert "uncommitted changes: config/edit.yaml" in status.stdout

    watchers(url, str(repo.config), "--worktree", "--interval", "300s")
    wait_until(lambda: get(url, "edit")["spec"]["replicas"] == 2, what="worktree applied")
    repo.write("config/edit.yaml", service_yaml("edit", replicas=1,
                                                 extra="  env: {SAVED: 'yes'}\n"))
    wait_until(lambda: get(url, "edit")["spec"]["env"] == {"SAVED": "yes"},
               what="applied on save")
    assert get(url, "edit")["spec"]["annotations"]["modelport.io/source-commit"].endswith(
        "+worktree")
    cli(url, "delete", "edit", check=True)


def test_unchanged_package_makes_no_version_and_revert_needs_no_rebuild(platform,
                                                                         tmp_path: Path) -> None:
    url = platform.url
    repo = Repo(tmp_path / "repo")
    repo.write("config/pkg.yaml", service_yaml("pkg"))
    repo.commit()
    assert once(url, repo)["applied"]
    wait_until(lambda: get(url, "pkg")["serving_version"] == 1, what="v1 serves")

    repo.write("config/pkg.yaml", service_yaml("pkg", extra="  env: {A: '1'}\n"))
    repo.commit("env only")
    assert once(url, repo)["applied"]
    assert [v["number"] for v in cli_json(url, "versions", "pkg")] == [1]

    with (repo.root / "models" / "echo" / "predict.py").open("a") as f:
        f.write("\n# version 2\n")
    repo.commit("new model code")
    changes = once(url, repo)["changes"]
    assert [f["field"] for f in changes[0]["fields"]] == ["package"]
    wait_until(lambda: get(url, "pkg")["serving_version"] == 2, what="v2 serves")
    builds = [e for e in cli_json(url, "events", "pkg") if e["reason"] == "BuildStarted"]

    repo.git("revert", "--no-edit", "HEAD")
    assert once(url, repo)["applied"]
    wait_until(lambda: get(url, "pkg")["serving_version"] == 1, what="v1 serves again")
    assert [v["number"] for v in cli_json(url, "versions", "pkg")] == [1, 2]
    assert get(url, "pkg")["spec"]["version"] == 1
    after = [e for e in cli_json(url, "events", "pkg") if e["reason"] == "BuildStarted"]
    assert after == builds  # no rebuild
    assert once(url, repo)["changes"][0]["action"] == "keep"  # idempotent
    cli(url, "delete", "pkg", check=True)


def test_remote_bare_repository_by_polling_and_by_webhook(platform, tmp_path: Path,
                                                          watchers) -> None:
    url = platform.url
    repo = Repo(tmp_path / "repo")
    repo.write("config/remote.yaml", service_yaml("remote"))
    repo.commit()
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.root), str(bare)], check=True)
    remote = f"file://{bare}"
    args = ["--repo", remote, "--branch", "main", "--path", "config", "--cache",
            str(tmp_path / "cache")]

    poller = watchers(url, *args, "--interval", "1s")
    wait_until(lambda: get(url, "remote").get("phase") == "running", what="remote runs")
    repo.write("config/remote.yaml", service_yaml("remote", replicas=2))
    repo.commit()
    repo.git("push", "-q", str(bare), "main")
    wait_until(lambda: get(url, "remote")["spec"]["replicas"] == 2, what="polled")
    os.killpg(poller.pid, signal.SIGTERM)
    poller.wait(15)

    watchers(url, *args, "--interval", "300s")
    source_id = f"{remote}#main:config"
    wait_until(lambda: any(s["id"] == source_id and s["heartbeat"] > 0
                           for s in gitops(url)["sources"]), what="watcher reported")
    repo.write("config/remote.yaml", service_yaml("remote", replicas=1))
    head = repo.commit()
    repo.git("push", "-q", str(bare), "main")

    def hook() -> bool:  # a GitHub-shaped push event; retried until the watcher listens
        r = httpx.post(f"{url}/api/v1/gitops/webhook",
                       headers={"X-GitHub-Event": "push", **AUTH_HEADERS},
                       json={"ref": "refs/heads/main", "after": head,
                             "repository": {"clone_url": remote, "full_name": "x/remote"}},
                       timeout=30)
        assert r.status_code == 202, r.text
        return get(url, "remote")["spec"]["replicas"] == 1

    wait_until(hook, timeout=60, what="webhook sync")
    r = httpx.post(f"{url}/api/v1/gitops/webhook", json={"ref": "refs/heads/main",
                   "repository": {"clone_url": "file:///nowhere/else.git"}}, timeout=30,
                   headers=AUTH_HEADERS)
    assert r.status_code == 404 and r.json()["error"]["code"] == "gitops.no_source"
    cli(url, "delete", "remote", check=True)


def test_diff_matches_what_the_next_sync_does_and_drift_is_restored(platform,
                                                                    tmp_path: Path) -> None:
    url = platform.url
    repo = Repo(tmp_path / "repo")
    repo.write("config/d1.yaml", service_yaml("d1"))
    repo.write("config/d2.yaml", service_yaml("d2"))
    repo.commit()
    assert once(url, repo)["applied"]

    repo.write("config/d1.yaml", service_yaml("d1", replicas=2))
    (repo.config / "d2.yaml").unlink()
    repo.write("config/more.yaml", service_yaml("d3") + "---\nkind: Note\ntext: hi\n")
    repo.commit()
    planned = cli_json(url, "diff", str(repo.config))
    assert planned["applies"] and planned["notes"]
    assert {(c["action"], c["name"]) for c in planned["changes"]} == {
        ("update", "d1"), ("prune", "d2"), ("create", "d3")}
    human = cli(url, "diff", str(repo.config)).stdout
    assert "~ update d1" in human and "replicas: 1 -> 2" in human and "- prune d2" in human
    assert {"d1", "d2"} <= names(url) and "d3" not in names(url)  # diff changed nothing

    done = once(url, repo)
    assert [c for c in done["changes"] if c["action"] != "keep"] == planned["changes"]
    assert get(url, "d1")["spec"]["replicas"] == 2 and "d2" not in names(url) and "d3" in names(
        url)
    assert cli_json(url, "diff", str(repo.config))["changes"] == []

    # an edit by hand through the CLI is drift: diff shows it, the next sync restores it
    hand = tmp_path / "hand"
    shutil.copytree(repo.root / "models" / "echo", hand)
    with (hand / "predict.py").open("a") as f:
        f.write("\n# by hand\n")
    cli(url, "update", "d1", str(hand), "--no-wait", check=True)
    [drift] = cli_json(url, "diff", str(repo.config))["changes"]
    assert drift["name"] == "d1" and drift["drift"] and drift["action"] == "update"
    assert [f["field"] for f in drift["fields"]] == ["package"]
    assert [c["name"] for c in once(url, repo)["changes"] if c["drift"]] == ["d1"]
    assert get(url, "d1")["spec"]["version"] == 1 and get(url, "d1")["spec"]["replicas"] == 2
    assert get(url, "d1")["spec"]["annotations"]["modelport.io/managed-by"] == "gitops"
    assert "GitOpsDriftCorrected" in {e["reason"] for e in cli_json(url, "events", "d1")}
    for n in ("d1", "d3"):
        cli(url, "delete", n, check=True)


def test_prune_false_in_the_repository_keeps_deleted_services(platform, tmp_path: Path) -> None:
    url = platform.url
    repo = Repo(tmp_path / "repo")
    repo.write("config/repo.yaml", "apiVersion: modelport/v1\nkind: GitOpsConfig\n"
               "spec: {prune: false}\n")
    repo.write("config/keep.yaml", service_yaml("keep"))
    repo.commit()
    assert once(url, repo)["applied"]
    (repo.config / "keep.yaml").unlink()
    repo.commit()
    assert [c["action"] for c in once(url, repo)["changes"]] == ["orphan"]
    assert "keep" in names(url)
    assert row(url, "keep")["sync"] == "OutOfSync" and "prune" in row(url, "keep")["message"]
    cli(url, "delete", "keep", check=True)


def test_up_with_config_runs_a_supervised_watcher(tmp_path: Path) -> None:
    from tests.conftest import start_platform

    repo = Repo(tmp_path / "repo")
    repo.write("config/upcfg.yaml", service_yaml("upcfg"))
    repo.commit()
    plat = start_platform(tmp_path / "home", "--config", str(repo.config))
    try:
        wait_until(lambda: predicts(plat.url, "upcfg"), what="served via up --config")
        repo.write("config/upcfg.yaml", service_yaml("upcfg", extra="  env: {B: '2'}\n"))
        head = repo.commit()
        wait_until(lambda: row(plat.url, "upcfg").get("commit") == head, what="new commit")
        assert get(plat.url, "upcfg")["spec"]["env"] == {"B": "2"}
        assert (tmp_path / "home" / "logs" / "watcher.log").exists()
        # bad reports are refused with a reason
        r = httpx.post(f"{plat.url}/api/v1/gitops/reports", json={"source": {}}, timeout=30,
                       headers=AUTH_HEADERS)
        assert r.status_code == 422 and r.json()["error"]["code"] == "gitops.report_invalid"
    finally:
        assert plat.stop() == 0


def test_up_with_a_config_outside_git_fails_at_once(tmp_path: Path) -> None:
    res = subprocess.run([CLI, "up", "--home", str(tmp_path / "home"), "--port", "0",
                          "--config", str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    said = " ".join((res.stdout + res.stderr).split())  # rich wraps long lines
    assert res.returncode == 1 and "is not inside a git work tree" in said, said
