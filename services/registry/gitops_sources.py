"""gRPC face of the GitOps sync state: watchers report and apply, the gateway reads and
nudges.

The registry is the source of truth, so what a watcher found (per service: sync status,
commit, file and line, error) lives here and survives restarts of the watcher. A commit
goes in force only through `ApplyCommit` (gitops_apply.py: one transaction); `Report`
records a commit that cannot be applied, or the intent to apply one (gitops_state.py).
Webhooks bump a source's `sync_requests` counter; a watcher blocks in `WaitSync` until it
moves, so a push reaches the watcher without the watcher polling.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlparse

import grpc
from google.protobuf.json_format import MessageToDict, ParseDict

from modelport.v1 import gitops_pb2, gitops_pb2_grpc
from services.registry import gitops_state
from services.registry.gitops_apply import CommitApplier
from services.registry.store.base import EventRecord, Store
from services.rpc.errors import translate_errors


def _dict(msg: object) -> dict:
    return MessageToDict(msg, preserving_proto_field_name=True)  # type: ignore[arg-type]


def repo_keys(repo: str) -> set[str]:
    """Comparable identities of a repository: `https://host/o/r.git`, `git@host:o/r`, `o/r`.

    Push events name a repository several ways (clone URL, SSH URL, web URL, full name);
    a watcher source matches when any of them reduces to the same key.
    """
    repo = repo.strip().rstrip("/")
    if not repo:
        return set()
    keys = {repo}
    path = repo
    if "://" in repo:
        path = urlparse(repo).path
    elif ":" in repo and "@" in repo.split(":", 1)[0]:  # scp-like git@host:owner/name
        path = repo.split(":", 1)[1]
    path = path.rstrip("/")
    if path.endswith(".git"):
        path = path[:-4]
    keys.add(path)
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2:
        keys.add("/".join(parts[-2:]))
    return keys


class GitOpsServicer(gitops_pb2_grpc.GitOpsServicer):
    def __init__(self, store: Store, applier: CommitApplier) -> None:
        self.store = store
        self.applier = applier
        self._changed = asyncio.Condition()

    def _source(self, source_id: str) -> dict:
        for s in self.store.list_gitops_sources():
            if s["id"] == source_id:
                return s
        return {"id": source_id}

    @translate_errors
    async def Report(self, request: gitops_pb2.ReportGitOpsRequest,
                     context: grpc.aio.ServicerContext) -> gitops_pb2.GitOpsSource:
        now = time.time()
        new = _dict(request.source)
        old = self._source(new["id"])
        if request.applying:  # intent only: statuses, history and events stay as they are
            rec = gitops_state.applying(new, old, request.applying, now)
            self.store.put_gitops_source(rec)
            return gitops_state.to_proto(rec)
        sync = _dict(request.sync) if request.HasField("sync") else None
        rec = gitops_state.reported(new, old, sync, now)
        rows = [{**_dict(st), "source": new["id"], "updated_at": now}
                for st in request.services]
        with self.store.transaction():
            self.store.put_gitops_source(rec)
            self.store.replace_gitops_services(new["id"], rows)
            for e in request.events:
                self.store.add_event(EventRecord(now, e.service, e.service, 0,
                                                 "Warning" if e.warning else "Normal",
                                                 e.reason, e.message))
        return gitops_state.to_proto(rec)

    @translate_errors
    async def ApplyCommit(self, request: gitops_pb2.ApplyCommitRequest,
                          context: grpc.aio.ServicerContext) -> gitops_pb2.ApplyCommitResponse:
        return self.applier.apply(request)

    @translate_errors
    async def Get(self, request: gitops_pb2.GetGitOpsRequest,
                  context: grpc.aio.ServicerContext) -> gitops_pb2.GitOpsState:
        sources = [s for s in self.store.list_gitops_sources()
                   if not request.source or s["id"] == request.source]
        services = self.store.list_gitops_services(request.source)
        return gitops_pb2.GitOpsState(
            sources=[gitops_state.to_proto(s) for s in sources],
            services=[ParseDict(s, gitops_pb2.GitOpsServiceStatus(), ignore_unknown_fields=True)
                      for s in services])

    @translate_errors
    async def RequestSync(self, request: gitops_pb2.RequestSyncRequest,
                          context: grpc.aio.ServicerContext) -> gitops_pb2.RequestSyncResponse:
        wanted: set[str] = set()
        for r in request.repos:
            wanted |= repo_keys(r)
        matched = []
        for s in self.store.list_gitops_sources():
            if request.branch and s.get("branch") and s["branch"] != request.branch:
                continue
            if wanted and not (repo_keys(s.get("repo", "")) & wanted):
                continue
            s["sync_requests"] = int(s.get("sync_requests", 0)) + 1
            self.store.put_gitops_source(s)
            matched.append(s["id"])
        if matched:
            async with self._changed:
                self._changed.notify_all()
        return gitops_pb2.RequestSyncResponse(sources=matched)

    @translate_errors
    async def WaitSync(self, request: gitops_pb2.WaitSyncRequest,
                       context: grpc.aio.ServicerContext) -> gitops_pb2.WaitSyncResponse:
        def count() -> int:
            return int(self._source(request.source).get("sync_requests", 0))

        timeout = min(max(request.timeout_s, 0.0), 60.0)
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: count() > request.after),
                                       timeout)
            except TimeoutError:
                pass
        return gitops_pb2.WaitSyncResponse(sync_requests=count())
