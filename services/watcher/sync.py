"""Apply one revision as a whole: validate everything, then change what differs, then prune.

A sync is `prepare` (read the revision, render it, resolve packages, read the live
services, plan) followed by `apply`. If anything of the revision is wrong — a document
that does not validate, a package that is missing or invalid, a name taken by a service
this source does not manage — nothing of it is applied: the failing services are marked
Failed with file, line and message, the others keep what they run. Packages are compared
by content digest, so unchanged content never uploads, creates a version or rebuilds;
a revert pins the older version that already holds that content.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context

from modelport.errors import ModelportError
from modelport.package import ArchiveLimits, extract_zip, load_package, zip_directory
from services.telemetry import tracing
from services.watcher import diff as d
from services.watcher.platform import Platform
from services.watcher.render import Desired, DocFailure, Rendered, Renderer
from services.watcher.source import GitSource, Snapshot, resolve_relative

log = logging.getLogger(__name__)
_tracer = tracing.tracer("modelport.watcher")

SYNCED, OUT_OF_SYNC, FAILED = "Synced", "OutOfSync", "Failed"


@dataclass(frozen=True)
class PackageInfo:
    path: str  # repository path of the package directory or zip
    digest: str = ""
    error: str = ""


@dataclass
class Prepared:
    snapshot: Snapshot
    rendered: Rendered
    targets: dict[str, d.Target]
    live: dict[str, d.LiveService]
    failures: list[DocFailure]
    changes: list[d.Change]
    prune: bool
    packages: dict[str, PackageInfo] = field(default_factory=dict)
    pinned: dict[str, int] = field(default_factory=dict)  # service -> live version in use


@dataclass
class SyncResult:
    commit: str
    applied: bool  # False: the revision was blocked by failures and nothing changed
    changes: list[d.Change]
    failures: list[DocFailure]
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    uncommitted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.applied and not self.errors

    def summary(self) -> str:
        short = self.commit[:12]
        if not self.applied:
            return (f"commit {short} not applied: {len(self.failures)} problem(s): "
                    + "; ".join(f"{f.where()}: {f.message}" for f in self.failures))
        done = [c for c in self.changes if c.action not in ("keep",)]
        parts = [f"{c.action} {c.name}" + (" (drift)" if c.drift else "")
                 + (f" [{', '.join(str(f) for f in c.fields)}]" if c.action == "update" else "")
                 for c in done]
        text = f"synced {short}: " + ("; ".join(parts) if parts else "no changes")
        if self.errors:
            text += "; errors: " + "; ".join(f"{n}: {e}" for n, e in self.errors.items())
        return text


def _err(exc: Exception) -> str:
    return str(exc).replace("\n", " ")


class Syncer:
    def __init__(self, source: GitSource, platform: Platform, prune: bool | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self.source = source
        self.platform = platform
        self.prune_override = prune
        self.say = say or (lambda text: log.info("%s", text))
        self.renderer = Renderer()
        self._packages: dict[str, PackageInfo] = {}  # git oid -> package digest (immutable)
        self._digests: dict[tuple[str, int], str] = {}  # (model, version) -> digest
        self._previous: dict[str, dict[str, Any]] | None = None
        self._last_record: tuple[str, str] = ("", "")
        self._source_row: dict[str, Any] = {}

    # reading ----------------------------------------------------------------------------
    def previous(self) -> dict[str, dict[str, Any]]:
        """Last reported status per service (from the registry on first use)."""
        if self._previous is None:
            state = self.platform.gitops(self.source.id)
            rows = state.get("services", [])
            for src in state.get("sources", []):
                if src.get("id") == self.source.id:
                    self._source_row = src
            self._previous = {r["service"]: r for r in rows if r.get("source") == self.source.id}
        return self._previous

    def _package(self, snap: Snapshot, desired: Desired) -> PackageInfo:
        assert desired.service.spec.package is not None
        try:
            path = resolve_relative(desired.file, desired.service.spec.package)
        except ModelportError as exc:
            return PackageInfo("", error=exc.message)
        entry = snap.entry(path) if path else None
        if entry is None:
            where = "the working tree" if snap.worktree else f"commit {snap.head[:12]}"
            return PackageInfo(path, error=f"spec.package {desired.service.spec.package!r} "
                               f"({path}) does not exist in {where}")
        if entry.oid and entry.oid in self._packages:
            return self._packages[entry.oid]
        with tempfile.TemporaryDirectory(prefix="modelport-gitops-") as tmp:
            try:
                root = self._materialise(snap, path, entry.kind, Path(tmp))
                info = PackageInfo(path, digest=load_package(root).digest)
            except ModelportError as exc:
                info = PackageInfo(path, error=f"package {path}: {_err(exc)}")
            except (OSError, ValueError) as exc:
                info = PackageInfo(path, error=f"package {path} cannot be read: {exc}")
        if entry.oid:
            self._packages[entry.oid] = info
        return info

    @staticmethod
    def _materialise(snap: Snapshot, path: str, kind: str, tmp: Path) -> Path:
        """The package as a directory under tmp (a zip in the repository is unpacked safely)."""
        if kind == "tree":
            snap.export(path, tmp / "pkg")
            return tmp / "pkg"
        snap.export(path, tmp / "pkg.zip")
        extract_zip(tmp / "pkg.zip", tmp / "pkg", ArchiveLimits())
        return tmp / "pkg"

    def _versions(self, model: str) -> list[dict[str, Any]]:
        versions = self.platform.model_versions(model)
        for v in versions:
            self._digests[(model, v["number"])] = v["digest"]
        return versions

    def _live_version(self, view: dict[str, Any]) -> tuple[int, str | None]:
        """(version in use, its digest): spec.version, or the latest when it is 0."""
        model, number = view["spec"]["model"], view["spec"]["version"]
        if number and (model, number) in self._digests:
            return number, self._digests[(model, number)]
        versions = self._versions(model)
        if not number:
            number = versions[-1]["number"] if versions else 0
        return number, self._digests.get((model, number))

    def _find_version(self, model: str, digest: str) -> int:
        """The registry version holding `digest` (a working one first); 0 = upload needed."""
        matches = [v for v in self._versions(model) if v["digest"] == digest]
        good = [v for v in matches if v["state"] != "failed"]
        best = (good or matches)
        return best[-1]["number"] if best else 0

    def _annotations(self, desired: Desired, commit: str) -> dict[str, str]:
        return {**desired.service.metadata.annotations, d.MANAGED_BY: d.GITOPS,
                d.SOURCE: self.source.id, d.SOURCE_REPO: self.source.repo,
                d.SOURCE_PATH: desired.file, d.SOURCE_COMMIT: commit}

    def _target(self, desired: Desired, pkg: PackageInfo | None, commit: str) -> d.Target:
        s = desired.service.spec
        return d.Target(desired.name, d.comparable(
            model=s.model.name if s.model else desired.name,
            package=pkg.digest if pkg else None, version=s.model.version if s.model else 0,
            runtime=s.runtime, replicas=s.replicas, env=s.env, cpu=s.resources.cpu,
            memory=s.resources.memory, gpu=s.resources.gpu, timeout_s=s.timeout_s,
            annotations=self._annotations(desired, commit),
            serving={"traffic": [t.model_dump() for t in s.traffic],
                     "autoscaling": s.autoscaling.model_dump() if s.autoscaling else None,
                     "concurrency": s.concurrency, "auth": s.auth.model_dump(),
                     "rate_limit": s.rate_limit.model_dump()}), desired.file, desired.line)

    def _live(self, view: dict[str, Any], by_package: bool, owned: bool
              ) -> tuple[d.LiveService, int]:
        s = view["spec"]
        number, digest = self._live_version(view) if by_package else (s["version"], None)
        r = s["resources"]
        spec = d.comparable(model=s["model"], package=digest if by_package else None,
                            version=s["version"], runtime=s["runtime"], replicas=s["replicas"],
                            env=s["env"], cpu=r["cpu"], memory=r["memory"], gpu=r["gpu"],
                            timeout_s=s["timeout_s"], annotations=s["annotations"],
                            serving={k: s[k] for k in d.SERVING_FIELDS if k in s})
        return d.LiveService(view["name"], spec, dict(s["annotations"]), owned), number

    def prepare(self) -> Prepared:
        snap = self.source.snapshot()
        files = snap.yaml_files()
        if snap.worktree:
            texts = {p: snap.read(p) for p in files}
        else:
            blobs = self.source.cat_blobs([e.oid for e in files.values()])
            texts = {p: blobs[e.oid] for p, e in files.items()}
        rendered = self.renderer.render(texts)
        failures = list(rendered.failures)
        packages: dict[str, PackageInfo] = {}
        targets: dict[str, d.Target] = {}
        wanted = []
        for desired in rendered.services.values():
            if desired.service.spec.package:
                try:
                    wanted.append(resolve_relative(desired.file, desired.service.spec.package))
                except ModelportError:
                    pass  # reported per service below
        snap.prefetch(wanted)
        for name, desired in rendered.services.items():
            pkg = None
            if desired.service.spec.package:
                pkg = packages[name] = self._package(snap, desired)
                if pkg.error:
                    failures.append(DocFailure(desired.file, desired.package_line or
                                               desired.line, pkg.error, name))
                    continue
            targets[name] = self._target(desired, pkg, snap.commit)
        views = {v["name"]: v for v in self.platform.services()}
        live: dict[str, d.LiveService] = {}
        pinned: dict[str, int] = {}
        owned = {n for n, r in self.previous().items() if r.get("commit")}
        for name, view in views.items():
            ann = view["spec"]["annotations"]
            if name in targets or name in rendered.services or name in owned or (
                    ann.get(d.MANAGED_BY) == d.GITOPS and ann.get(d.SOURCE) == self.source.id):
                by_package = name in targets and "package" in targets[name].spec
                live[name], pinned[name] = self._live(view, by_package, name in owned)
        for name in d.conflicts(rendered.services, live, self.source.id):
            desired = rendered.services[name]
            failures.append(DocFailure(
                desired.file, desired.line, f"service {name!r} already exists and is not "
                f"managed by this repository ({self.source.id}); it is left alone — delete "
                "or rename it, or rename the service in the YAML", name))
            targets.pop(name, None)
        prune = (self.prune_override if self.prune_override is not None
                 else rendered.prune if rendered.prune is not None else True)
        applied = {n: r.get("desired_hash", "") for n, r in self.previous().items()
                   if r.get("sync") == SYNCED}
        mine = {n: s for n, s in live.items() if s.managed_by(self.source.id)}
        changes = d.plan(targets, mine, self.source.id, prune, applied)
        return Prepared(snap, rendered, targets, live, failures, changes, prune, packages,
                        pinned)

    # writing ----------------------------------------------------------------------------
    def _spec_doc(self, desired: Desired, commit: str, model: tuple[str, int] | None) -> str:
        doc = desired.service.model_dump(by_alias=True, exclude={"spec": {"package"}})
        doc["metadata"]["annotations"] = self._annotations(desired, commit)
        if model is not None:
            doc["spec"]["model"] = {"name": model[0], "version": model[1]}
        return json.dumps(doc)

    def _apply_one(self, p: Prepared, change: d.Change) -> None:
        desired = p.rendered.services[change.name]
        commit = p.snapshot.commit
        spec = desired.service.spec
        if spec.model is not None:
            self.platform.apply(change.name, self._spec_doc(
                desired, commit, (spec.model.name, spec.model.version)))
            return
        pkg = p.packages[change.name]
        cur = p.live.get(change.name)
        if cur is not None and cur.spec.get("package") == pkg.digest and p.pinned.get(
                change.name):
            version = p.pinned[change.name]
        else:
            version = self._find_version(change.name, pkg.digest)
        if not version:  # new content: upload it once, then pin the version it became
            entry = p.snapshot.entry(pkg.path)
            assert entry is not None
            with tempfile.TemporaryDirectory(prefix="modelport-gitops-") as tmp:
                if entry.kind == "tree":
                    p.snapshot.export(pkg.path, Path(tmp) / "pkg")
                    zip_directory(Path(tmp) / "pkg", Path(tmp) / "pkg.zip")
                else:
                    p.snapshot.export(pkg.path, Path(tmp) / "pkg.zip")
                self.platform.apply(change.name, self._spec_doc(desired, commit, None),
                                    Path(tmp) / "pkg.zip")
            version = self._find_version(change.name, pkg.digest)
            if not version:
                raise RuntimeError(f"the registry has no version of {change.name} with digest "
                                   f"{pkg.digest[:19]} after the upload")
        self.platform.apply(change.name, self._spec_doc(desired, commit,
                                                        (change.name, version)))

    def sync(self) -> SyncResult:
        """One sync, as a trace of its own (its REST calls join it at the gateway)."""
        with tracing.span(_tracer, "gitops.sync", {"modelport.gitops.source": self.source.id},
                          context=otel_context.Context()) as span:
            result = self._sync()
            if span is not None:
                span.set_attribute("modelport.gitops.commit", result.commit or "")
                span.set_attribute("modelport.gitops.changes", len(result.changes))
            return result

    def _sync(self) -> SyncResult:
        p = self.prepare()
        commit = p.snapshot.commit
        result = SyncResult(commit, not p.failures, p.changes, p.failures,
                            notes=p.rendered.notes, uncommitted=p.snapshot.uncommitted)
        events: list[dict[str, Any]] = []
        if result.applied:
            for change in p.changes:
                where = f"{change.file} at commit {commit[:12]}"
                try:
                    if change.action in ("create", "update"):
                        self._apply_one(p, change)
                    elif change.action == "prune":
                        self.platform.delete(change.name)
                except (ModelportError, OSError, RuntimeError) as exc:
                    result.errors[change.name] = _err(exc)
                    continue
                what = "; ".join(str(f) for f in change.fields if f.field != "model")
                if change.drift:
                    events.append({"service": change.name, "reason": "GitOpsDriftCorrected",
                                   "warning": True, "message": f"changed outside git ({what}); "
                                   f"restored from {where}"})
                elif change.action == "create":
                    events.append({"service": change.name, "reason": "GitOpsCreated",
                                   "message": f"created from {where}"})
                elif change.action == "update":
                    events.append({"service": change.name, "reason": "GitOpsUpdated",
                                   "message": f"updated from {where}: {what}"})
                elif change.action == "prune":
                    events.append({"service": change.name, "reason": "GitOpsPruned",
                                   "message": f"pruned: no longer declared in {self.source.id} "
                                   f"at commit {commit[:12]} (was {change.file})"})
        rows = self._statuses(p, result, events)
        self._report(p, result, rows, events)
        return result

    # status -----------------------------------------------------------------------------
    def _statuses(self, p: Prepared, result: SyncResult, events: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
        now = time.time()
        prev = self.previous()
        commit = p.snapshot.commit
        rows: dict[str, dict[str, Any]] = {}
        blocked = "; ".join(f"{f.where()}: {f.message}" for f in p.failures)

        def row(name: str, sync: str, file: str, line: int, message: str = "",
                synced: bool = False, desired_hash: str = "") -> None:
            old = prev.get(name, {})
            rows[name] = {
                "service": name, "source": self.source.id, "sync": sync, "file": file,
                "line": line, "message": message,
                "commit": commit if synced else old.get("commit", ""),
                "last_sync": now if synced else old.get("last_sync", 0.0),
                "desired_hash": desired_hash if synced else old.get("desired_hash", ""),
            }
            if sync == FAILED and old.get("message") != message:
                events.append({"service": name, "reason": "GitOpsFailed", "warning": True,
                               "message": f"{file}:{line}: {message}"})

        by_name = {c.name: c for c in p.changes}
        for name, t in p.targets.items():
            change = by_name.get(name)
            if name in result.errors:
                row(name, FAILED, t.file, t.line, result.errors[name])
            elif result.applied:
                row(name, SYNCED, t.file, t.line, synced=True, desired_hash=t.hash)
            elif change is not None and change.action == "keep":
                row(name, SYNCED, t.file, t.line)  # matches; the commit itself is blocked
            else:
                row(name, OUT_OF_SYNC, t.file, t.line,
                    f"commit {commit[:12]} not applied: {blocked}")
        for f in p.failures:
            if f.service:
                row(f.service, FAILED, f.file, f.line, f.message)
        failed_files = {f.file: f for f in p.failures if not f.service}
        for name, old in prev.items():
            if name not in rows and old.get("file") in failed_files:
                f = failed_files[old["file"]]
                row(name, FAILED, f.file, f.line, f.message)
        for c in p.changes:
            if c.name in rows:
                continue
            if c.action == "orphan":
                row(c.name, OUT_OF_SYNC, c.file, 0, "no longer declared in the repository; "
                    "pruning is off (prune: false), so it is left running")
            elif c.action == "prune" and (c.name in result.errors or not result.applied):
                msg = result.errors.get(c.name) or f"to be pruned once commit {commit[:12]} " \
                    "can be applied"
                row(c.name, FAILED if c.name in result.errors else OUT_OF_SYNC, c.file, 0, msg)
        return sorted(rows.values(), key=lambda r: r["service"])

    def _report(self, p: Prepared, result: SyncResult, rows: list[dict[str, Any]],
                events: list[dict[str, Any]]) -> None:
        now = time.time()
        src = self.source
        message = "" if result.applied else result.summary()
        prev_sources = self._source_row
        source = {
            "id": src.id, "repo": src.repo, "branch": src.branch, "path": src.subpath or ".",
            "mode": "worktree" if src.worktree else "commit", "head": p.snapshot.head,
            "synced_commit": p.snapshot.commit if result.applied else prev_sources.get(
                "synced_commit", ""),
            "uncommitted": p.snapshot.uncommitted, "message": message,
            "notes": p.rendered.notes, "prune": p.prune,
            "last_sync": now if result.applied else prev_sources.get("last_sync", 0.0),
        }
        self._source_row = source
        payload: dict[str, Any] = {"source": source, "services": rows, "events": events}
        outcome = "Synced" if result.ok else ("Blocked" if not result.applied else "Failed")
        record = (p.snapshot.commit, outcome)
        if record != self._last_record or events:
            payload["sync"] = {"commit": p.snapshot.commit, "ts": now, "result": outcome,
                               "message": result.summary()}
            self._last_record = record
        self.platform.report(payload)
        self._previous = {r["service"]: r for r in rows}
