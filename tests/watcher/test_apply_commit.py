"""GitOps.ApplyCommit against a real SQLite file and a real package store (issue 18 §3):
a commit is written whole or not at all, what it wrote survives reopening the database
(and a SIGKILL inside the transaction), and services this source does not manage are
refused."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelport.errors import ModelportError
from modelport.home import HomeLayout
from modelport.package import ArchiveLimits, zip_directory
from modelport.v1 import gitops_pb2, registry_pb2
from services.registry import gitops_state
from services.registry.blobs import PackageStore
from services.registry.gitops_apply import KILL_AFTER, CommitApplier
from services.registry.service_spec import ServiceSpec
from services.registry.store import SqliteStore
from services.registry.store.base import ServiceRecord, VersionRecord
from tests.watcher.support import ROOT, write_package

SOURCE = "/repo#main:config"
NAMES = ("alpha", "beta", "gamma")


class Home:
    def __init__(self, root: Path) -> None:
        self.layout = HomeLayout(root)
        self.triggers = 0
        self.open()

    def open(self) -> None:
        self.store = SqliteStore(self.layout.db)
        self.packages = PackageStore(self.layout, ArchiveLimits())
        self.applier = CommitApplier(self.store, self.packages, self._trigger,
                                     self.layout.root / "faults")

    def reopen(self) -> None:
        self.store.close()
        self.open()

    def _trigger(self) -> None:
        self.triggers += 1

    def stage(self, tmp: Path, marker: str) -> str:
        """A real package (its predictor differs by ``marker``) ingested; its digest."""
        pkg = write_package(tmp / f"pkg-{marker}")
        with (pkg / "predict.py").open("a") as f:
            f.write(f"\n# {marker}\n")
        zip_directory(pkg, tmp / f"{marker}.zip")
        return self.packages.ingest(tmp / f"{marker}.zip").digest

    def events(self, name: str) -> list[str]:
        return [e.reason for e in self.store.list_events(name)]

    def source(self) -> dict:
        return next((s for s in self.store.list_gitops_sources() if s["id"] == SOURCE), {})


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path / "home")
    yield h
    h.store.close()


def spec(name: str, commit: str, source: str = SOURCE, **fields: object
         ) -> registry_pb2.ServiceSpec:
    return registry_pb2.ServiceSpec(
        model=name, replicas=1, env={"COMMIT": commit[:1]},
        annotations={"modelport.io/managed-by": "gitops", "modelport.io/gitops-source": source,
                     "modelport.io/source-commit": commit}, **fields)


def commit_request(commit: str, services: list[gitops_pb2.GitOpsServiceWrite],
                   prune: tuple[str, ...] = ()) -> gitops_pb2.ApplyCommitRequest:
    return gitops_pb2.ApplyCommitRequest(
        source=gitops_pb2.GitOpsSource(id=SOURCE, repo="/repo", branch="main", head=commit),
        commit=commit, services=services, prune=list(prune),
        statuses=[gitops_pb2.GitOpsServiceStatus(service=w.name, sync="Synced", commit=commit,
                                                 file=f"config/{w.name}.yaml", line=1)
                  for w in services],
        events=[gitops_pb2.GitOpsEvent(service=w.name, reason="GitOpsUpdated",
                                       message=f"updated from {commit}") for w in services],
        sync=gitops_pb2.GitOpsSyncRecord(commit=commit, result="Synced"))


def by_package(commit: str, digest: str, names: tuple[str, ...] = NAMES
               ) -> list[gitops_pb2.GitOpsServiceWrite]:
    return [gitops_pb2.GitOpsServiceWrite(name=n, spec=spec(n, commit), package_digest=digest)
            for n in names]


def commits(home: Home) -> dict[str, str]:
    return {s.name: s.spec.annotations.get("modelport.io/source-commit", "")
            for s in home.store.list_services()}


def test_a_commit_is_written_whole_and_survives_reopening(home: Home, tmp_path: Path) -> None:
    digest = home.stage(tmp_path, "A")
    intent = gitops_state.applying({"id": SOURCE, "head": "a" * 40}, {}, "a" * 40, 10.0)
    home.store.put_gitops_source(intent)
    out = home.applier.apply(commit_request("a" * 40, by_package("a" * 40, digest)))

    assert [(s.name, s.action, s.version, s.version_created) for s in out.services] == [
        (n, "created", 1, True) for n in NAMES]
    assert out.source.synced_commit == "a" * 40 and not out.source.applying
    assert home.triggers == 1
    home.reopen()
    assert commits(home) == dict.fromkeys(NAMES, "a" * 40)
    for n in NAMES:
        assert [v.number for v in home.store.list_versions(n)] == [1]
        assert home.store.get_service(n).spec.version == 1  # pinned to the version made
        assert home.events(n) == ["VersionCreated", "ServiceCreated", "GitOpsUpdated"]
    src = home.source()
    assert src["synced_commit"] == "a" * 40 and src["applying"] == ""
    assert src["apply_attempts"] == 0 and [h["commit"] for h in src["history"]] == ["a" * 40]
    assert {r["service"]: r["commit"] for r in home.store.list_gitops_services(SOURCE)} == \
        dict.fromkeys(NAMES, "a" * 40)
    [synced, progressing] = gitops_state.conditions(src)
    assert (synced["reason"], synced["status"]) == ("Synced", True)
    assert "a" * 12 in synced["message"] and progressing["reason"] == "Idle"

    # the same content again is the version that holds it: nothing new, nothing rebuilt
    again = home.applier.apply(commit_request("a" * 40, by_package("a" * 40, digest)))
    assert {s.action for s in again.services} == {"unchanged"}
    assert all(len(home.store.list_versions(n)) == 1 for n in NAMES)


def test_a_refused_service_leaves_nothing_of_the_commit(home: Home, tmp_path: Path) -> None:
    a = home.stage(tmp_path, "A")
    home.applier.apply(commit_request("a" * 40, by_package("a" * 40, a)))
    b = home.stage(tmp_path, "B")
    home.store.put_gitops_source(gitops_state.applying(
        {"id": SOURCE, "head": "b" * 40}, home.source(), "b" * 40, 20.0))
    before_events = {n: home.events(n) for n in NAMES}
    before_generation = {n: home.store.get_service(n).generation for n in NAMES}
    # alpha and beta are fine; gamma names content that was never staged
    writes = by_package("b" * 40, b, ("alpha", "beta")) + [gitops_pb2.GitOpsServiceWrite(
        name="gamma", spec=spec("gamma", "b" * 40), package_digest="sha256:" + "0" * 64)]
    with pytest.raises(ModelportError) as err:
        home.applier.apply(commit_request("b" * 40, writes, prune=("alpha",)))
    assert err.value.details["service"] == "gamma" and "gamma" in err.value.message
    assert err.value.code == "package.not_found"

    home.reopen()  # from the file: nothing of commit b was written
    assert commits(home) == dict.fromkeys(NAMES, "a" * 40)
    assert {n: home.events(n) for n in NAMES} == before_events
    assert {n: home.store.get_service(n).generation for n in NAMES} == before_generation
    assert all([v.number for v in home.store.list_versions(n)] == [1] for n in NAMES)
    src = home.source()
    assert src["synced_commit"] == "a" * 40 and src["applying"] == "b" * 40
    assert {r["commit"] for r in home.store.list_gitops_services(SOURCE)} == {"a" * 40}
    [synced, _] = gitops_state.conditions(src)
    assert synced["reason"] == "Applying" and "a" * 12 in synced["message"]

    # a pinned version that does not exist is refused the same way, naming its service
    missing = [gitops_pb2.GitOpsServiceWrite(name="beta", spec=spec("beta", "b" * 40,
                                                                     version=7))]
    with pytest.raises(ModelportError) as err:
        home.applier.apply(commit_request("b" * 40, by_package("b" * 40, b, ("alpha",))
                                          + missing))
    assert err.value.details["service"] == "beta" and err.value.code == "version.not_found"
    assert commits(home) == dict.fromkeys(NAMES, "a" * 40)
    assert [v.number for v in home.store.list_versions("alpha")] == [1]


def test_services_this_source_does_not_manage_are_refused(home: Home, tmp_path: Path) -> None:
    digest = home.stage(tmp_path, "A")
    home.store.add_version(VersionRecord(model="handmade", number=0, digest=digest,
                                         kind="python", config_json="{}", interface_json="{}",
                                         requirements="", python="", package_dir=""))
    home.store.add_service(ServiceRecord(name="handmade", spec=ServiceSpec(model="handmade")))
    other = gitops_pb2.GitOpsServiceWrite(name="theirs", spec=spec(
        "theirs", "a" * 40, source="/elsewhere#main:."), package_digest=digest)
    home.applier.apply(gitops_pb2.ApplyCommitRequest(
        source=gitops_pb2.GitOpsSource(id="/elsewhere#main:."), commit="c" * 40,
        services=[other]))
    untouched = {n: home.store.get_service(n).spec.to_json() for n in ("handmade", "theirs")}

    for request in (commit_request("a" * 40, by_package("a" * 40, digest, ("alpha", "handmade"))),
                    commit_request("a" * 40, by_package("a" * 40, digest, ("alpha", "theirs"))),
                    commit_request("a" * 40, by_package("a" * 40, digest, ("alpha",)),
                                   prune=("handmade",))):
        with pytest.raises(ModelportError) as err:
            home.applier.apply(request)
        assert err.value.code == "gitops.not_managed"
        assert err.value.details["service"] in ("handmade", "theirs")
        assert "alpha" not in commits(home)  # the service that was fine is rolled back too
    assert {n: home.store.get_service(n).spec.to_json() for n in ("handmade", "theirs")} == \
        untouched

    # a managed service whose annotations were dropped by hand is still this source's
    home.applier.apply(commit_request("a" * 40, by_package("a" * 40, digest, ("alpha",))))
    home.store.update_spec("alpha", home.store.get_service("alpha").spec.replace(annotations={}))
    out = home.applier.apply(commit_request("b" * 40, by_package("b" * 40, digest,
                                                                 ("alpha",)), prune=()))
    assert [s.action for s in out.services] == ["updated"]
    out = home.applier.apply(commit_request("c" * 40, [], prune=("alpha", "gone")))
    assert [(s.name, s.action) for s in out.services] == [("alpha", "pruned")]
    assert "ServiceDeleted" in home.events("alpha")


def test_store_transactions_nest_and_roll_back_whole(home: Home) -> None:
    def version(model: str) -> VersionRecord:
        return VersionRecord(model=model, number=0, digest="sha256:x", kind="python",
                             config_json="{}", interface_json="{}", requirements="",
                             python="", package_dir="")

    with pytest.raises(RuntimeError), home.store.transaction():
        home.store.add_version(version("m"))  # its own transaction joins the outer one
        with home.store.transaction():
            home.store.add_service(ServiceRecord(name="s", spec=ServiceSpec(model="m")))
        raise RuntimeError("halfway")
    home.reopen()
    assert home.store.list_versions("m") == [] and home.store.get_service("s") is None
    assert home.store.add_version(version("m")).number == 1  # alone, as before
    home.reopen()
    assert [v.number for v in home.store.list_versions("m")] == [1]


KILLED_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from modelport.v1 import gitops_pb2
    from tests.watcher.test_apply_commit import Home, by_package, commit_request

    home = Home(Path(sys.argv[1]))
    digest = home.stage(Path(sys.argv[2]), "B")
    (home.layout.root / "faults").mkdir(exist_ok=True)
    (home.layout.root / "faults" / "{kill}").write_text("2")
    home.applier.apply(commit_request("b" * 40, by_package("b" * 40, digest)))
    print("not killed")
""").replace("{kill}", KILL_AFTER)


def test_a_registry_killed_inside_the_transaction_leaves_the_previous_commit(
        home: Home, tmp_path: Path) -> None:
    a = home.stage(tmp_path, "A")
    home.applier.apply(commit_request("a" * 40, by_package("a" * 40, a)))
    home.store.close()
    child = subprocess.run([sys.executable, "-c", KILLED_CHILD, str(home.layout.root),
                            str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert not (home.layout.root / "faults" / KILL_AFTER).exists()  # taken as it was read
    home.open()
    assert commits(home) == dict.fromkeys(NAMES, "a" * 40)
    assert all([v.number for v in home.store.list_versions(n)] == [1] for n in NAMES)
    assert home.source()["synced_commit"] == "a" * 40
    assert home.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_conditions_say_what_is_in_force_and_what_is_going_on() -> None:
    first = gitops_state.applying({"id": SOURCE, "head": "b" * 40},
                                  {"synced_commit": "a" * 40}, "b" * 40, 5.0)
    second = gitops_state.applying({"id": SOURCE, "head": "b" * 40}, first, "b" * 40, 9.0)
    assert (first["apply_attempts"], second["apply_attempts"]) == (1, 2)
    assert second["applying_since"] == 5.0
    for src, progress in ((first, "Applying"), (second, "Resuming")):
        synced, progressing = gitops_state.conditions(src)
        assert (synced["reason"], progressing["reason"]) == ("Applying", progress)
        assert "commit " + "a" * 12 + " is in force" in synced["message"]
    refused = gitops_state.reported({"id": SOURCE, "head": "b" * 40,
                                     "message": "commit bbb not applied: ..."}, second, None,
                                    12.0)
    synced, progressing = gitops_state.conditions(refused)
    assert (synced["reason"], progressing["reason"]) == ("NotApplied", "Idle")
    assert refused["synced_commit"] == "a" * 40 and "a" * 12 in synced["message"]
    ahead = gitops_state.conditions({"head": "c" * 40, "synced_commit": "a" * 40})[0]
    assert ahead["reason"] == "OutOfSync"
    assert gitops_state.conditions({})[0]["message"] == "no commit is in force yet"
    # a watcher cannot move what is in force by reporting it
    claimed = gitops_state.reported({"id": SOURCE, "synced_commit": "z" * 40}, {}, None, 1.0)
    assert "synced_commit" not in claimed
