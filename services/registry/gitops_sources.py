"""gRPC face of the GitOps sync state: watchers report, the gateway reads and nudges.

The registry is the source of truth, so what a watcher found (per service: sync status,
commit, file and line, error) lives here and survives restarts of the watcher. Webhooks
bump a source's `sync_requests` counter; a watcher blocks in `WaitSync` until it moves,
so a push reaches the watcher without the watcher polling.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlparse

import grpc
from google.protobuf.json_format import MessageToDict, ParseDict

from modelport.v1 import gitops_pb2, gitops_pb2_grpc
from services.registry.store.base import EventRecord, Store
from services.rpc.errors import translate_errors

HISTORY = 20


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
    def __init__(self, store: Store) -> None:
        self.store = store
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
        # the webhook counter belongs to the registry, the history grows here
        new["sync_requests"] = int(old.get("sync_requests", 0))
        history = list(old.get("history", []))
        if request.HasField("sync"):
            rec = _dict(request.sync)
            rec.setdefault("ts", now)
            history = (history + [rec])[-HISTORY:]
        new["history"] = history
        new["heartbeat"] = now
        self.store.put_gitops_source(new)
        rows = []
        for st in request.services:
            row = _dict(st)
            row["source"] = new["id"]
            row["updated_at"] = now
            rows.append(row)
        self.store.replace_gitops_services(new["id"], rows)
        for e in request.events:
            self.store.add_event(EventRecord(now, e.service, e.service, 0,
                                             "Warning" if e.warning else "Normal", e.reason,
                                             e.message))
        return ParseDict(new, gitops_pb2.GitOpsSource(), ignore_unknown_fields=True)

    @translate_errors
    async def Get(self, request: gitops_pb2.GetGitOpsRequest,
                  context: grpc.aio.ServicerContext) -> gitops_pb2.GitOpsState:
        sources = [s for s in self.store.list_gitops_sources()
                   if not request.source or s["id"] == request.source]
        services = self.store.list_gitops_services(request.source)
        return gitops_pb2.GitOpsState(
            sources=[ParseDict(s, gitops_pb2.GitOpsSource(), ignore_unknown_fields=True)
                     for s in sources],
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
