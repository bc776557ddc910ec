"""GitOps under /api/v1/gitops: sync status for people, reports and webhooks for machines.

- `GET  /api/v1/gitops`            sources and per-service sync status joined with health
- `POST /api/v1/gitops/webhook`    a push event from a git host: the matching watchers sync now
- `POST /api/v1/gitops/reports`    what a watcher found, or the commit it is about to apply
- `POST /api/v1/gitops/packages`   stage a package (stored by content digest; changes no service)
- `POST /api/v1/gitops/apply`      a whole commit, applied in one registry transaction
- `GET  /api/v1/gitops/wait`       long poll a watcher uses to hear about webhooks

The state lives in the registry (modelport.v1.GitOps); this module only translates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import orjson
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport.errors import ModelportError, invalid, not_found
from modelport.v1 import gitops_pb2, gitops_pb2_grpc, registry_pb2, registry_pb2_grpc
from services.gateway.rest.management import ManagementApi
from services.gateway.rest.params import INT64_MAX, finite_number, parse_json, query_int
from services.rpc.errors import from_rpc_error
from services.rpc.server import channel

#: service phase -> health, the second axis next to sync status (as in Argo CD)
HEALTH = {"running": "Healthy", "pending": "Progressing", "deploying": "Progressing",
          "concerning": "Degraded", "failed": "Degraded", "stopped": "Suspended"}


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _dict(msg: Any) -> dict[str, Any]:
    return MessageToDict(msg, preserving_proto_field_name=True,
                         always_print_fields_with_no_presence=True)


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else ``{}``: a payload of another shape is read
    as one that says nothing, never indexed as if it were right."""
    return value if isinstance(value, dict) else {}


def push_event(body: dict[str, Any]) -> tuple[list[str], str] | None:
    """(repository identities, branch) of a push event; None when it is not a branch push.

    Understands GitHub, Gitea/Forgejo/Gogs, GitLab and Bitbucket Cloud push payloads, and
    a plain `{"repo": ..., "branch": ...}` (both optional) for scripts.
    """
    repos: list[str] = []

    def add(*values: Any) -> None:
        repos.extend(v for v in values if isinstance(v, str) and v)

    if isinstance(body.get("push"), dict):  # Bitbucket Cloud
        repo = _object(body.get("repository"))
        add(repo.get("full_name"), _object(_object(repo.get("links")).get("html")).get("href"))
        changes = body["push"].get("changes")
        news = [_object(_object(c).get("new")) for c in
                (changes if isinstance(changes, list) else [])]
        branches = [n["name"] for n in news
                    if n.get("type") == "branch" and isinstance(n.get("name"), str)]
        return (repos, branches[0]) if branches else None
    ref = body.get("ref")
    if isinstance(ref, str):  # GitHub, Gitea, GitLab
        if not ref.startswith("refs/heads/"):
            return None
        for key in ("repository", "project"):
            r = body.get(key) or {}
            if isinstance(r, dict):
                add(r.get("clone_url"), r.get("ssh_url"), r.get("git_url"), r.get("html_url"),
                    r.get("full_name"), r.get("git_http_url"), r.get("git_ssh_url"),
                    r.get("web_url"), r.get("path_with_namespace"), r.get("url"),
                    r.get("homepage"))
        return repos, ref[len("refs/heads/"):]
    add(body.get("repo"))
    return repos, str(body.get("branch") or "")


#: the parts of a POST /api/v1/gitops/apply body that are ApplyCommitRequest fields as they are
_APPLY_FIELDS = ("source", "commit", "prune", "statuses", "events", "sync")


class GitOpsApi:
    def __init__(self, registry_address: str, registry: registry_pb2_grpc.RegistryStub,
                 webhook_secret: str = "",
                 upload: Callable[[Request], Awaitable[registry_pb2.PackageRef]] | None = None
                 ) -> None:
        self.registry_address = registry_address
        self.registry = registry
        self.webhook_secret = webhook_secret
        #: the management API's streamed upload (its size limit included)
        self.upload = upload
        self._gitops: gitops_pb2_grpc.GitOpsStub | None = None

    @property
    def gitops(self) -> gitops_pb2_grpc.GitOpsStub:
        if self._gitops is None:  # made on first use: channels belong to the running loop
            self._gitops = gitops_pb2_grpc.GitOpsStub(channel(self.registry_address))
        return self._gitops

    async def _call(self, stub: Any, method: str, request: Any, timeout: float = 30) -> Any:
        try:
            return await getattr(stub, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, "registry") from None

    async def status(self, request: Request) -> Response:
        state = await self._call(self.gitops, "Get", gitops_pb2.GetGitOpsRequest(
            source=request.query_params.get("source", "")))
        live = await self._call(self.registry, "ListServices",
                                registry_pb2.ListServicesRequest())
        phases = {s.name: (s.status.phase, s.status.message) for s in live.services}
        services = []
        for st in state.services:
            row = _dict(st)
            phase, message = phases.get(st.service, ("", ""))
            row["health"] = HEALTH.get(phase, "Progressing") if phase else "Missing"
            row["phase"] = phase
            row["health_message"] = message
            services.append(row)
        return _json({"sources": [_dict(s) for s in state.sources], "services": services})

    async def report(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())  # no lone surrogates, NaN (params.py)
            msg = ParseDict(body, gitops_pb2.ReportGitOpsRequest())
        except (ValueError, TypeError, AttributeError, ParseError) as exc:
            raise invalid("gitops.report_invalid", f"the report is not a GitOps report: {exc}",
                          "send the JSON form of modelport.v1.ReportGitOpsRequest") from None
        if not msg.source.id:
            raise invalid("gitops.report_invalid", "the report has no source.id",
                          "name the watcher source (repo#branch:path)", path="$.source.id")
        return _json(_dict(await self._call(self.gitops, "Report", msg)))

    async def stage(self, request: Request) -> Response:
        """A package (the zip as the body) stored by its content digest; no service changes
        until an apply names the digest."""
        if self.upload is None or request.headers.get("content-type", "") not in (
                "application/zip", "application/octet-stream"):
            raise invalid("request.content_type", "stage a package as the request body",
                          "send the zip with Content-Type: application/zip")
        ref = await self.upload(request)
        return _json({"digest": ref.digest, "kind": ref.kind, "name": ref.name}, 201)

    async def apply(self, request: Request) -> Response:
        """A commit as one ApplyCommit: each service's ModelService document is validated
        and converted here, as PUT /api/v1/services/{name} does; the registry writes all
        of it in one transaction or nothing (the error's details.service names the one
        refused)."""
        try:
            body = orjson.loads(await request.body())
            if not isinstance(body, dict) or not isinstance(body.get("services", []), list):
                raise ValueError("the body must be an object with a 'services' list")
            msg = ParseDict({k: body[k] for k in _APPLY_FIELDS if k in body},
                            gitops_pb2.ApplyCommitRequest())
            writes = [(str(s["name"]), s.get("spec") or {}, str(s.get("package") or ""))
                      for s in body.get("services", [])]
        except (ValueError, TypeError, AttributeError, KeyError, ParseError) as exc:
            raise invalid("gitops.apply_invalid", f"the body is not a GitOps commit: {exc}",
                          "send {source, commit, services: [{name, spec, package}], prune, "
                          "statuses, events, sync}") from None
        if not msg.source.id or not msg.commit:
            raise invalid("gitops.apply_invalid", "the commit has no source.id or commit",
                          "name the watcher source (repo#branch:path) and the commit")
        for name, doc, digest in writes:
            try:
                spec = ManagementApi.spec_proto(json.dumps(doc), name)
            except ModelportError as err:
                err.details = {**err.details, "service": name}
                err.message = f"service {name!r}: {err.message}"
                raise
            msg.services.add(name=name, spec=spec, package_digest=digest)
        return _json(_dict(await self._call(self.gitops, "ApplyCommit", msg)))

    async def wait(self, request: Request) -> Response:
        q = request.query_params
        fix = "GET /api/v1/gitops/wait?source=ID&after=N&timeout=5"
        after = query_int(request, "after", 0, high=INT64_MAX, code="gitops.wait_invalid",
                          fix=fix)
        timeout = min(finite_number(q.get("timeout", 5), "timeout", code="gitops.wait_invalid",
                                    fix=fix), 30.0)
        resp = await self._call(self.gitops, "WaitSync", gitops_pb2.WaitSyncRequest(
            source=q.get("source", ""), after=after, timeout_s=timeout), timeout=timeout + 10)
        return _json({"sync_requests": resp.sync_requests})

    def _check_signature(self, request: Request, raw: bytes) -> None:
        if not self.webhook_secret:
            return
        secret = self.webhook_secret.encode()
        token = request.headers.get("x-gitlab-token") or request.headers.get("x-gitea-token")
        if token is not None and hmac.compare_digest(token.encode(), secret):
            return
        sig = (request.headers.get("x-hub-signature-256")
               or request.headers.get("x-gitea-signature") or "")
        want = hmac.new(secret, raw, hashlib.sha256).hexdigest()
        if sig and hmac.compare_digest(sig.removeprefix("sha256="), want):
            return
        raise invalid("gitops.webhook_signature", "the webhook signature does not match",
                      "configure the same secret on the git host as "
                      "MODELPORT_GATEWAY_GITOPS_WEBHOOK_SECRET")

    async def webhook(self, request: Request) -> Response:
        raw = await request.body()
        self._check_signature(request, raw)
        event = (request.headers.get("x-github-event") or request.headers.get("x-gitea-event")
                 or request.headers.get("x-gitlab-event") or request.headers.get("x-event-key")
                 or "")
        if event == "ping":
            return _json({"pong": True})
        body = parse_json(raw, "gitops.webhook_invalid", "the webhook body",
                          "configure the git host to send application/json") if raw.strip() else {}
        if not isinstance(body, dict):
            raise invalid("gitops.webhook_invalid", "the webhook body is not a JSON object",
                          "send a push event") from None
        push = push_event(body)
        if push is None:
            return _json({"synced": [], "ignored": "not a branch push"})
        repos, branch = push
        resp = await self._call(self.gitops, "RequestSync", gitops_pb2.RequestSyncRequest(
            repos=repos, branch=branch))
        if not resp.sources:
            raise not_found("gitops.no_source",
                            f"no watcher follows {', '.join(repos[:2]) or 'any repository'}"
                            + (f" on branch {branch!r}" if branch else ""),
                            "start one with `modelport watch --repo URL --branch B` "
                            "(or `modelport up --config PATH`)")
        return _json({"synced": list(resp.sources)}, 202)

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/gitops", self.status, methods=["GET"]),
            Route("/api/v1/gitops/webhook", self.webhook, methods=["POST"]),
            Route("/api/v1/gitops/reports", self.report, methods=["POST"]),
            Route("/api/v1/gitops/packages", self.stage, methods=["POST"]),
            Route("/api/v1/gitops/apply", self.apply, methods=["POST"]),
            Route("/api/v1/gitops/wait", self.wait, methods=["GET"]),
        ]
