"""Apply one revision as a whole: validate everything, then write all of it at once.

A sync is `prepare` (read the revision, render it, resolve packages, read the live
services, plan) followed by writing. If anything of the revision is wrong — a document
that does not validate, a package that is missing or invalid, a name taken by a service
this source does not manage — nothing of it is applied: the failing services are marked
Failed with file, line and message, the others keep what they run. Packages are compared
by content digest, so unchanged content never uploads, creates a version or rebuilds;
a revert pins the older version that already holds that content.

A valid revision is written in three steps (docs/gitops.md, "Atomic commits"): the intent
(the commit this sync is about to apply, shown as `applying`), staging (new package
content uploaded by digest, changing no service) and one `ApplyCommit`, which the registry
carries out in a single transaction: every service, prune, event and status of the commit,
and the commit itself as the one in force, or none of it. A sync cut short anywhere is
simply run again (the watcher's retry, or a restarted watcher); nothing was written yet.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context

from modelport.errors import Kind, ModelportError
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
    applied: bool  # False: nothing of the revision changed (blocked, or refused)
    changes: list[d.Change]
    failures: list[DocFailure]
    #: the service the platform refused, and why (then nothing of the commit was applied)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    uncommitted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.applied and not self.errors

    @property
    def outcome(self) -> str:
        return "Synced" if self.ok else ("Failed" if self.errors else "Blocked")

    def why(self) -> str:
        """Why the commit was not applied."""
        if self.failures:
            return "; ".join(f"{f.where()}: {f.message}" for f in self.failures)
        return "; ".join(f"the platform refused service {n}: {e}" for n, e in self.errors.items())

    def summary(self) -> str:
        short = self.commit[:12]
        if not self.applied:
            count = f"{len(self.failures)} problem(s): " if self.failures else ""
            return f"commit {short} not applied: {count}{self.why()}"
        done = [c for c in self.changes if c.action not in ("keep",)]
        parts = [f"{c.action} {c.name}" + (" (drift)" if c.drift else "")
                 + (f" [{', '.join(str(f) for f in c.fields)}]" if c.action == "update" else "")
                 for c in done]
        return f"synced {short}: " + ("; ".join(parts) if parts else "no changes")


def _err(exc: Exception) -> str:
    return str(exc).replace("\n", " ")


#: a platform answer that refuses what was sent (as opposed to one it could not give now)
REFUSALS = (Kind.INVALID, Kind.CONFLICT, Kind.NOT_FOUND, Kind.TOO_LARGE)


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

    # reading ----------------------------------------------------------------------------
    def previous(self) -> dict[str, dict[str, Any]]:
        """Last reported status per service (from the registry on first use)."""
        if self._previous is None:
            rows = self.platform.gitops(self.source.id).get("services", [])
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
    def _spec_doc(self, desired: Desired, commit: str, model: tuple[str, int]) -> dict[str, Any]:
        doc = desired.service.model_dump(by_alias=True, exclude={"spec": {"package"}})
        doc["metadata"]["annotations"] = self._annotations(desired, commit)
        doc["spec"]["model"] = {"name": model[0], "version": model[1]}
        return doc

    def _stage(self, p: Prepared, pkg: PackageInfo) -> None:
        """Upload a package's content (stored by digest; no service changes)."""
        entry = p.snapshot.entry(pkg.path)
        assert entry is not None
        with tempfile.TemporaryDirectory(prefix="modelport-gitops-") as tmp:
            if entry.kind == "tree":
                p.snapshot.export(pkg.path, Path(tmp) / "pkg")
                zip_directory(Path(tmp) / "pkg", Path(tmp) / "pkg.zip")
            else:
                p.snapshot.export(pkg.path, Path(tmp) / "pkg.zip")
            digest = self.platform.stage(Path(tmp) / "pkg.zip")
        if digest != pkg.digest:
            raise RuntimeError(f"the platform stored {pkg.path} as {digest[:19]}, not as "
                               f"{pkg.digest[:19]} as read from the commit")

    def _write(self, p: Prepared, change: d.Change, staged: set[str]) -> dict[str, Any]:
        """One service as ApplyCommit writes it: the declared spec, pinned to the registry
        version that holds its package content, or naming that content (staged now, once
        per digest) when no version of its model holds it yet."""
        desired = p.rendered.services[change.name]
        commit = p.snapshot.commit
        spec = desired.service.spec
        if spec.model is not None:
            return {"name": change.name, "spec": self._spec_doc(
                desired, commit, (spec.model.name, spec.model.version))}
        pkg = p.packages[change.name]
        cur = p.live.get(change.name)
        if cur is not None and cur.spec.get("package") == pkg.digest and p.pinned.get(
                change.name):
            version = p.pinned[change.name]
        else:
            version = self._find_version(change.name, pkg.digest)
        if version:
            return {"name": change.name,
                    "spec": self._spec_doc(desired, commit, (change.name, version))}
        if pkg.digest not in staged:
            self._stage(p, pkg)
            staged.add(pkg.digest)
        return {"name": change.name, "spec": self._spec_doc(desired, commit, (change.name, 0)),
                "package": pkg.digest}

    def _events(self, p: Prepared) -> list[dict[str, Any]]:
        commit = p.snapshot.commit
        events: list[dict[str, Any]] = []
        for change in p.changes:
            where = f"{change.file} at commit {commit[:12]}"
            what = "; ".join(str(f) for f in change.fields if f.field != "model")
            if change.action in ("keep", "orphan"):
                continue
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
        return events

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
        if not result.applied:  # blocked: nothing of it is written; say why
            return self._not_applied(p, result)
        writes = [c for c in p.changes if c.action in ("create", "update")]
        prunes = [c.name for c in p.changes if c.action == "prune"]
        if writes or prunes:  # 1. intent: shown as `applying` until the commit is in force
            self.platform.report({"source": self._source(p, result), "applying": commit})
        staged: set[str] = set()
        services = []
        for change in writes:  # 2. stage new package content (no service changes)
            try:
                services.append(self._write(p, change, staged))
            except ModelportError as exc:
                if exc.kind not in REFUSALS:
                    raise  # the platform could not answer now: the whole sync is retried
                result.applied = False
                result.errors[change.name] = _err(exc)
                return self._not_applied(p, result)
        events = self._events(p)
        rows = self._statuses(p, result, events)
        body: dict[str, Any] = {"source": self._source(p, result), "commit": commit,
                                "services": services, "prune": prunes, "statuses": rows,
                                "events": events}
        record = self._record(p, result, events)
        if record:
            body["sync"] = record
        try:  # 3. the whole commit, in one registry transaction
            self.platform.apply_commit(body)
        except ModelportError as exc:
            refused = exc.details.get("service")
            if not refused or exc.kind not in REFUSALS:
                raise  # nothing was written; the whole sync is retried
            result.applied = False
            result.errors[str(refused)] = _err(exc)
            return self._not_applied(p, result)
        self._previous = {r["service"]: r for r in rows}
        self._last_record = (commit, result.outcome)
        return result

    def _not_applied(self, p: Prepared, result: SyncResult) -> SyncResult:
        """Report a commit that is not put in force: blocked by its documents, or refused."""
        events: list[dict[str, Any]] = []
        rows = self._statuses(p, result, events)
        payload: dict[str, Any] = {"source": self._source(p, result), "services": rows,
                                   "events": events}
        record = self._record(p, result, events)
        if record:
            payload["sync"] = record
        self.platform.report(payload)
        self._previous = {r["service"]: r for r in rows}
        self._last_record = (p.snapshot.commit, result.outcome)
        return result

    # status -----------------------------------------------------------------------------
    def _statuses(self, p: Prepared, result: SyncResult, events: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
        now = time.time()
        prev = self.previous()
        commit = p.snapshot.commit
        rows: dict[str, dict[str, Any]] = {}
        blocked = "" if result.applied else result.why()

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

    def _source(self, p: Prepared, result: SyncResult) -> dict[str, Any]:
        """The source as this watcher sees it; what is in force is the registry's to say."""
        src = self.source
        return {"id": src.id, "repo": src.repo, "branch": src.branch,
                "path": src.subpath or ".", "mode": "worktree" if src.worktree else "commit",
                "head": p.snapshot.head, "uncommitted": p.snapshot.uncommitted,
                "message": "" if result.applied else result.summary(),
                "notes": p.rendered.notes, "prune": p.prune}

    def _record(self, p: Prepared, result: SyncResult, events: list[dict[str, Any]]
                ) -> dict[str, Any] | None:
        """A history entry when the outcome for this commit changed (or something happened)."""
        if (p.snapshot.commit, result.outcome) == self._last_record and not events:
            return None
        return {"commit": p.snapshot.commit, "ts": time.time(), "result": result.outcome,
                "message": result.summary()}
