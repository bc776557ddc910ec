"""GitOps.ApplyCommit: a whole commit written in one registry transaction.

A watcher used to apply a commit as one or two `PUT /api/v1/services/{name}` per service,
so a failure after the first left some services at the new commit and the rest at the
old one. Here every write of the commit — new versions from staged packages, specs,
prunes, their events, the per-service sync statuses and the source with `synced_commit`
set and the intent cleared — goes into one SQLite transaction (`Store.transaction()`),
run on the event loop without an await, so no other request sees or writes anything in
between. A service the registry refuses rolls all of it back, and the error names the
service (`details.service`). Nothing half-written survives a crash either: a registry
killed inside the transaction restarts with the previous commit in force.

Fault injection (tests and `make chaos` only, docs/gitops.md): a file
`<home>/faults/gitops-apply-kill-after` holding N is taken (removed as it is read) by the
next ApplyCommit that writes services, which SIGKILLs this process after writing N of
them, inside the transaction.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict

from modelport.errors import ModelportError, conflict, invalid, not_found
from modelport.spec.service import check_name
from modelport.v1 import gitops_pb2
from services.registry import gitops_state
from services.registry.blobs import PackageStore
from services.registry.service_spec import ServiceSpec
from services.registry.servicer import add_package_version, runtime_for
from services.registry.store.base import EventRecord, ServiceRecord, Store, VersionRecord

log = logging.getLogger(__name__)

MANAGED_BY, GITOPS = "modelport.io/managed-by", "gitops"
SOURCE = "modelport.io/gitops-source"
KILL_AFTER = "gitops-apply-kill-after"


def _dict(msg: Any) -> dict[str, Any]:
    return MessageToDict(msg, preserving_proto_field_name=True)


class CommitApplier:
    def __init__(self, store: Store, packages: PackageStore, trigger: Callable[[], None],
                 faults: Path | None = None) -> None:
        self.store = store
        self.packages = packages
        self.trigger = trigger
        self.faults = faults

    # refusals ---------------------------------------------------------------------------
    @staticmethod
    def _refuse(name: str, err: ModelportError) -> ModelportError:
        err.details = {**err.details, "service": name}
        err.message = f"service {name!r}: {err.message}"
        return err

    def _managed(self, svc: ServiceRecord, source: str) -> bool:
        """This source's: its annotations say so, or (annotations dropped by a hand edit)
        the stored sync status says this source synced it."""
        ann = svc.spec.annotations
        if ann.get(MANAGED_BY) == GITOPS:
            return ann.get(SOURCE) == source
        return any(r["service"] == svc.name and r.get("commit")
                   for r in self.store.list_gitops_services(source))

    def _not_managed(self, name: str, source: str, what: str) -> ModelportError:
        return conflict("gitops.not_managed", f"service {name!r} exists and is not managed "
                        f"by {source}; {what} it is refused",
                        "delete or rename that service, or rename the service in the YAML")

    # one service ------------------------------------------------------------------------
    def _version(self, model: str, digest: str, name: str) -> tuple[VersionRecord, bool]:
        """The version of ``model`` holding ``digest`` (a working one first, else a failed
        one: pinning it again rebuilds nothing), or one made now from the staged package."""
        matches = [v for v in self.store.list_versions(model) if v.digest == digest]
        good = [v for v in matches if v.state != "failed"]
        if good or matches:
            return (good or matches)[-1], False
        return add_package_version(self.store, model, self.packages.get(digest), name), True

    def _write(self, w: gitops_pb2.GitOpsServiceWrite, source: str
               ) -> gitops_pb2.GitOpsAppliedService:
        name = check_name(w.name)
        svc = self.store.get_service(name)
        if svc is not None and not self._managed(svc, source):
            raise self._not_managed(name, source, "changing")
        spec = ServiceSpec.from_proto(w.spec, name)
        created = False
        if w.package_digest:
            v, created = self._version(spec.model, w.package_digest, name)
            spec = spec.replace(version=v.number)
        else:
            versions = self.store.list_versions(spec.model)
            chosen = [v for v in versions if v.number == spec.version] if spec.version \
                else versions[-1:]
            if not chosen:
                raise not_found("version.not_found", f"model {spec.model!r} has no "
                                + (f"version {spec.version}" if spec.version else "versions"),
                                "declare the service by spec.package, or name a version "
                                f"that `modelport versions {spec.model}` lists")
            v = chosen[0]
        spec = runtime_for(spec, w.spec.runtime, v.kind)
        now = time.time()
        if svc is None:
            self.store.add_service(ServiceRecord(name=name, spec=spec,
                                                 status={"phase": "pending"}))
            self._event(name, spec.model, "ServiceCreated", f"service {name} created", now)
            action = "created"
        else:
            lifecycle = svc.spec.to_json().get("lifecycle")
            if lifecycle:  # stop/restart are not the spec's to undo (serving.py)
                spec = spec.replace(lifecycle=lifecycle)
            action = "unchanged"
            if spec.to_json() != svc.spec.to_json() or created:
                svc = self.store.update_spec(name, spec)
                self._event(name, spec.model, "SpecUpdated",
                            f"generation {svc.generation} applied", now)
                action = "updated"
        return gitops_pb2.GitOpsAppliedService(name=name, action=action, version=spec.version,
                                               version_created=created)

    def _prune(self, name: str, source: str) -> gitops_pb2.GitOpsAppliedService | None:
        svc = self.store.get_service(name)
        if svc is None:
            return None  # already gone
        if not self._managed(svc, source):
            raise self._not_managed(name, source, "pruning")
        self.store.delete_service(name)
        self._event(name, svc.spec.model or name, "ServiceDeleted",
                    f"service {name} deleted; its model versions are kept", time.time())
        return gitops_pb2.GitOpsAppliedService(name=name, action="pruned")

    def _event(self, service: str, model: str, reason: str, message: str, now: float) -> None:
        self.store.add_event(EventRecord(now, service, model, 0, "Normal", reason, message))

    # the commit -------------------------------------------------------------------------
    def _kill_after(self, writes: int) -> int:
        """N from the armed fault file (removed as it is read); 0 when none is armed."""
        if self.faults is None or not writes:
            return 0
        path = self.faults / KILL_AFTER
        try:
            text = path.read_text()
            path.unlink()
        except OSError:
            return 0
        try:
            return max(0, int(text.strip() or 0))
        except ValueError:
            log.warning("fault file %s does not hold a number: %r", path, text[:40])
            return 0

    def apply(self, request: gitops_pb2.ApplyCommitRequest) -> gitops_pb2.ApplyCommitResponse:
        new = _dict(request.source)
        source = new.get("id", "")
        if not source or not request.commit:
            raise invalid("gitops.apply_invalid", "ApplyCommit needs source.id and commit",
                          "send the source (repo#branch:path) and the commit to put in force")
        kill_after = self._kill_after(len(request.services) + len(request.prune))
        done: list[gitops_pb2.GitOpsAppliedService] = []
        now = time.time()
        writes = 0

        def wrote() -> None:
            nonlocal writes
            writes += 1
            if kill_after and writes >= kill_after:
                log.warning("fault injection: SIGKILL inside ApplyCommit after %d service(s) "
                            "of commit %s", writes, request.commit[:12])
                os.kill(os.getpid(), signal.SIGKILL)

        with self.store.transaction():
            for w in request.services:
                try:
                    done.append(self._write(w, source))
                except ModelportError as err:
                    raise self._refuse(w.name, err) from None
                wrote()
            for name in request.prune:
                try:
                    pruned = self._prune(name, source)
                except ModelportError as err:
                    raise self._refuse(name, err) from None
                if pruned is not None:
                    done.append(pruned)
                wrote()
            for e in request.events:
                self.store.add_event(EventRecord(now, e.service, e.service, 0,
                                                 "Warning" if e.warning else "Normal",
                                                 e.reason, e.message))
            rows = [{**_dict(st), "source": source, "updated_at": now}
                    for st in request.statuses]
            self.store.replace_gitops_services(source, rows)
            old = next((s for s in self.store.list_gitops_sources() if s["id"] == source), {})
            sync = _dict(request.sync) if request.HasField("sync") else None
            rec = gitops_state.in_force(new, old, request.commit, sync, now)
            self.store.put_gitops_source(rec)
        if any(d.action != "unchanged" for d in done):
            self.trigger()
        return gitops_pb2.ApplyCommitResponse(source=gitops_state.to_proto(rec), services=done)
