"""Push events of common git hosts name the repository and branch a watcher follows."""

from __future__ import annotations

from services.gateway.rest.gitops_routes import push_event
from services.registry.gitops_sources import repo_keys


def test_github_and_gitea_push() -> None:
    body = {"ref": "refs/heads/main", "after": "abc",
            "repository": {"full_name": "acme/models",
                           "clone_url": "https://git.example.invalid/acme/models.git",
                           "ssh_url": "git@git.example.invalid:acme/models.git"}}
    repos, branch = push_event(body)
    assert branch == "main" and "acme/models" in repos
    assert repo_keys("git@git.example.invalid:acme/models.git") & repo_keys(repos[0])


def test_gitlab_push() -> None:
    body = {"object_kind": "push", "ref": "refs/heads/prod",
            "project": {"path_with_namespace": "acme/models",
                        "git_http_url": "https://gitlab.example.invalid/acme/models.git"}}
    repos, branch = push_event(body)
    assert branch == "prod" and "https://gitlab.example.invalid/acme/models.git" in repos


def test_bitbucket_push() -> None:
    body = {"push": {"changes": [{"new": {"type": "branch", "name": "main"}}]},
            "repository": {"full_name": "acme/models"}}
    assert push_event(body) == (["acme/models"], "main")


def test_tag_pushes_are_not_syncs() -> None:
    assert push_event({"ref": "refs/tags/v1", "repository": {"full_name": "a/b"}}) is None


def test_repo_identities_match_across_spellings() -> None:
    assert repo_keys("file:///srv/git/models.git") & repo_keys("/srv/git/models")
    assert not repo_keys("https://h/acme/models") & repo_keys("https://h/acme/other")


def test_webhook_secret_is_checked_before_anything_else(tmp_path) -> None:
    import asyncio
    import hashlib
    import hmac
    import json

    import httpx
    from starlette.applications import Starlette

    from modelport.errors import ModelportError
    from services.gateway.rest.errors import handle_modelport_error, handle_unexpected
    from services.gateway.rest.gitops_routes import GitOpsApi

    api = GitOpsApi(f"unix:{tmp_path}/no-registry.sock", None, webhook_secret="s3cret")
    app = Starlette(routes=api.routes(), exception_handlers={
        ModelportError: handle_modelport_error, Exception: handle_unexpected})
    body = json.dumps({"ref": "refs/heads/main", "repository": {"full_name": "a/b"}}).encode()
    good = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()

    async def post(headers: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                     base_url="http://gw") as http:
            return await http.post("/api/v1/gitops/webhook", content=body, headers=headers)

    async def scenario() -> list[httpx.Response]:
        return [await post({"X-Hub-Signature-256": "sha256=" + "0" * 64}),
                await post({"X-Hub-Signature-256": f"sha256={good}"}),
                await post({"X-Gitlab-Token": "s3cret"})]

    wrong, right, token = asyncio.run(scenario())
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "gitops.webhook_signature"
    assert right.status_code == 503 and token.status_code == 503  # past the check; no registry
