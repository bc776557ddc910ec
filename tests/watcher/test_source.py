"""Reading a revision from real git repositories: committed state, not the work tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from modelport.errors import ModelportError
from modelport.package import load_package
from services.watcher.source import GitSource, resolve_relative
from tests.watcher.support import Repo, service_yaml


def test_commit_mode_reads_the_commit_and_reports_uncommitted_files(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.write("config/a.yaml", service_yaml("a"))
    first = repo.commit()
    repo.write("config/a.yaml", service_yaml("a", replicas=5))  # saved, not committed
    repo.write("config/new.yml", service_yaml("new"))
    (repo.root / "models" / "echo" / "predict.py").write_text("broken = (\n")
    src = GitSource.local(repo.config)
    assert src.branch == "main" and src.subpath == "config"
    snap = src.snapshot()
    assert snap.commit == first and not snap.worktree
    assert list(snap.yaml_files()) == ["config/a.yaml"]
    assert b"replicas: 1" in snap.read("config/a.yaml")
    assert snap.uncommitted == ["config/a.yaml", "config/new.yml"]  # only under PATH
    out = tmp_path / "pkg"
    snap.export("models/echo", out)  # the package as committed, not as edited
    assert "class Echo" in (out / "predict.py").read_text()
    assert load_package(out).name == "echo"


def test_worktree_mode_reads_saved_files(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.write("config/a.yaml", service_yaml("a"))
    head = repo.commit()
    repo.write("config/a.yaml", service_yaml("a", replicas=5))
    snap = GitSource.local(repo.config, worktree=True).snapshot()
    assert snap.worktree and snap.commit == f"{head}+worktree"
    assert b"replicas: 5" in snap.read("config/a.yaml")


def test_tracks_a_branch_other_than_the_checked_out_one(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.write("config/a.yaml", service_yaml("a"))
    repo.commit()
    repo.git("checkout", "-q", "-b", "prod")
    repo.write("config/b.yaml", service_yaml("b"))
    prod = repo.commit()
    repo.git("checkout", "-q", "main")
    snap = GitSource.local(repo.config, branch="prod").snapshot()
    assert snap.commit == prod and "config/b.yaml" in snap.yaml_files()


def test_remote_bare_repository_is_fetched_through_a_file_url(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.write("config/a.yaml", service_yaml("a"))
    repo.commit()
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.root), str(bare)], check=True)
    src = GitSource.remote(f"file://{bare}", "main", tmp_path / "cache", "config")
    assert list(src.snapshot().yaml_files()) == ["config/a.yaml"]
    repo.write("config/b.yaml", service_yaml("b"))
    new = repo.commit()
    repo.git("push", "-q", str(bare), "main")
    snap = src.snapshot()  # each snapshot fetches
    assert snap.commit == new and sorted(snap.yaml_files()) == ["config/a.yaml",
                                                                "config/b.yaml"]


def test_not_a_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelportError) as exc:
        GitSource.local(tmp_path)
    assert exc.value.code == "gitops.not_a_repo" and "git init" in exc.value.fix


def test_package_paths_stay_inside_the_repository() -> None:
    assert resolve_relative("config/a.yaml", "../models/echo") == "models/echo"
    assert resolve_relative("a.yaml", "m.zip") == "m.zip"
    for bad in ("../../outside", "/etc"):
        with pytest.raises(ModelportError):
            resolve_relative("config/a.yaml", bad)
