"""The Python SDK: `modelport.Client()` over the gateway's management and inference API.

With no URL it finds the platform itself, and its credential too (modelport/discovery.py).

`create`, `get` and `update` return the service view, which includes at least
`{"call", "url", "name"}` as in the call_tool contract users already know.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from modelport import discovery
from modelport.errors import Kind, ModelportError


class DeployFailed(Exception):
    """A create/update whose build or start failed; carries the reason and the build log tail."""

    def __init__(self, name: str, reason: str, version: int = 0, build_log_tail: str = "",
                 removed: bool = False) -> None:
        self.name, self.reason, self.version = name, reason, version
        self.build_log_tail, self.removed = build_log_tail, removed
        super().__init__(f"service {name!r} failed: {reason}")


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        body = resp.json()
        err = body.get("error", {})
        rid = body.get("metadata", {}).get("request_id", "")
    except ValueError:
        err, rid = {}, ""
    exc = ModelportError.from_dict(err) if err else ModelportError(
        Kind.INTERNAL, f"http.{resp.status_code}", resp.text[:500] or resp.reason_phrase)
    exc.details.setdefault("status", resp.status_code)
    if rid:
        exc.details.setdefault("request_id", rid)
    raise exc


class Client:
    """``url``, ``home`` and ``token``: see ``discovery.find`` and ``discovery.find_token``
    (``platform`` and ``token_source`` say what was found); ``access_key``/``secret_key``
    (or MODELPORT_ACCESS_KEY/MODELPORT_SECRET_KEY) sign every request instead
    (modelport/signing.py)."""

    def __init__(self, url: str | None = None, timeout: float = 120.0, *,
                 token: str | None = None, home: str | os.PathLike[str] | None = None,
                 access_key: str | None = None, secret_key: str | None = None) -> None:
        self.platform = discovery.find(url, home)
        self.url = self.platform.url
        self.token_source = "none"
        access_key = access_key or os.environ.get("MODELPORT_ACCESS_KEY")
        secret_key = secret_key or os.environ.get("MODELPORT_SECRET_KEY")
        headers, auth = {}, None
        if access_key and secret_key:
            from modelport.signing import httpx_auth

            auth = httpx_auth(access_key, secret_key)
            self.token_source = "an AK/SK signature"
        else:
            credential, self.token_source = discovery.find_token(self.platform, token)
            if credential:
                headers["Authorization"] = f"Bearer {credential}"
        self.http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers, auth=auth)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.http.request(method, path, **kw)
        _raise_for(resp)
        return resp.json()

    # packages ---------------------------------------------------------------------------
    @staticmethod
    def _zip(path: str | Path) -> tuple[Path, bool]:
        """A zip to upload: the file itself, or a deterministic zip of a directory (temporary)."""
        path = Path(path)
        if path.is_dir():
            from modelport.package import zip_directory

            fd, tmp = tempfile.mkstemp(suffix=".zip", prefix="modelport-")
            os.close(fd)
            zip_directory(path, Path(tmp))
            return Path(tmp), True
        if not path.exists():
            raise ModelportError(Kind.INVALID, "package.path_missing", f"{path} does not exist",
                                 "pass a model zip or a directory with config.json")
        return path, False

    def _upload(self, method: str, path: str, package: str | Path | None,
                fields: dict[str, str]) -> dict[str, Any]:
        if package is None:
            return self._json(method, path, data=fields)
        zpath, temporary = self._zip(package)
        try:
            with zpath.open("rb") as f:
                return self._json(method, path, data=fields,
                                  files={"package": (zpath.name, f, "application/zip")})
        finally:
            if temporary:
                zpath.unlink(missing_ok=True)

    # management -------------------------------------------------------------------------
    def create(self, path: str | Path, name: str | None = None, wait: bool = True,
               timeout: float = 900, spec: str | None = None,
               progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        fields = {k: v for k, v in {"name": name or "", "spec": spec or ""}.items() if v}
        svc = self._upload("POST", "/api/v1/services", path, fields)
        if not wait:
            return svc
        try:
            return self.wait(svc["name"], svc["generation"], timeout, progress)
        except DeployFailed as exc:
            self.delete(svc["name"])
            exc.removed = True
            raise

    def apply(self, name: str, spec: str, package: str | Path | None = None, wait: bool = True,
              timeout: float = 900,
              progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        svc = self._upload("PUT", f"/api/v1/services/{name}", package, {"spec": spec})
        return self.wait(name, svc["generation"], timeout, progress) if wait else svc

    def update(self, name: str, path: str | Path, wait: bool = True, timeout: float = 900,
               progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        svc = self._upload("PUT", f"/api/v1/services/{name}/package", path, {})
        if svc.get("unchanged") or not wait:  # the same package: no new version to wait for
            return svc
        return self.wait(name, svc["generation"], timeout, progress)

    def get(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/services/{name}")

    def list(self) -> dict[str, Any]:
        services = self._json("GET", "/api/v1/services")["services"]
        return {"message": [s["name"] for s in services], "services": services}

    def delete(self, name: str) -> dict[str, Any]:
        return self._json("DELETE", f"/api/v1/services/{name}")

    # lifecycle (docs/serving.md): stop keeps the service and its URL; calls get 503
    def stop(self, name: str, reason: str = "") -> dict[str, Any]:
        return self._json("POST", f"/api/v1/services/{name}/stop", params={"reason": reason})

    def start(self, name: str, wait: bool = True, timeout: float = 900,
              reason: str = "") -> dict[str, Any]:
        svc = self._json("POST", f"/api/v1/services/{name}/start", params={"reason": reason})
        return self.wait_settled(name, svc["generation"], timeout) if wait else svc

    def restart(self, name: str, wait: bool = True, timeout: float = 900,
                reason: str = "") -> dict[str, Any]:
        """Rolling restart: new replicas take over once ready, the old ones drain."""
        svc = self._json("POST", f"/api/v1/services/{name}/restart", params={"reason": reason})
        return self.wait_settled(name, svc["generation"], timeout) if wait else svc

    def wait_settled(self, name: str, generation: int, timeout: float = 900) -> dict[str, Any]:
        """Until the service runs generation ``generation`` with no rollout under way."""
        deadline = time.monotonic() + timeout
        while True:
            svc = self.get(name)
            rolling = any(c["type"] == "Progressing" and c["status"] and
                          c["reason"] == "RollingOut" for c in svc["conditions"])
            if svc["observed_generation"] >= generation and not rolling:
                if svc["phase"] == "running":
                    return svc
                if svc["phase"] == "failed" or any(c["type"] == "Stalled" and c["status"]
                                                   for c in svc["conditions"]):
                    raise DeployFailed(name, svc["message"], svc["target_version"])
            if time.monotonic() > deadline:
                raise DeployFailed(name, f"timed out after {timeout:g}s; last status: "
                                   f"{svc['phase']}: {svc['message']}", svc["target_version"])
            time.sleep(0.25)

    def versions(self, name: str) -> list[dict[str, Any]]:
        return self._json("GET", f"/api/v1/services/{name}/versions")["versions"]

    def build_log(self, model: str, version: int = 0) -> str:
        if not version:
            version = self._json("GET", f"/api/v1/models/{model}/versions")["versions"][-1][
                "number"]
        resp = self.http.get(f"/api/v1/models/{model}/versions/{version}/build-log")
        _raise_for(resp)
        return resp.text

    def events(self, name: str, limit: int = 100, version: int = 0) -> list[dict[str, Any]]:
        params = {"limit": limit, **({"version": version} if version else {})}
        return self._json("GET", f"/api/v1/services/{name}/events", params=params)["events"]

    # observability ------------------------------------------------------------------------
    def stats(self, name: str | None = None) -> dict[str, Any]:
        """Calls, failures, RPS and latency percentiles over 1/5/15 minutes (all services
        when ``name`` is None: ``{"services": [...]}``)."""
        return self._json("GET", f"/api/v1/services/{name}/stats" if name else "/api/v1/stats")

    def metrics(self) -> str:
        """The gateway's /metrics text (Prometheus exposition format)."""
        resp = self.http.get("/metrics")
        _raise_for(resp)
        return resp.text

    def logs(self, name: str, replica: str | None = None, since: str | None = None,
             tail: int | None = None, follow: bool = False, kind: str = "app",
             as_json: bool = False) -> Iterator[str]:
        """Log lines of a service, oldest first; with ``follow``, new ones until closed."""
        params: dict[str, Any] = {"kind": kind, "format": "json" if as_json else "text"}
        for key, value in (("replica", replica), ("since", since), ("tail", tail)):
            if value not in (None, ""):
                params[key] = value
        if follow:
            params["follow"] = "true"
        with self.http.stream("GET", f"/api/v1/services/{name}/logs", params=params,
                              timeout=None if follow else self.http.timeout) as resp:
            if resp.status_code >= 400:
                resp.read()
                _raise_for(resp)
            yield from resp.iter_lines()

    def wait(self, name: str, generation: int = 0, timeout: float = 900,
             progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Until the service serves its target version; DeployFailed when it cannot."""
        deadline = time.monotonic() + timeout
        while True:
            svc = self.get(name)
            if progress:
                progress(svc)
            if svc["observed_generation"] >= generation:
                stalled = [c for c in svc["conditions"] if c["type"] == "Stalled" and c["status"]]
                target = svc["target_version"]
                if svc["phase"] == "running" and target and svc["serving_version"] == target:
                    return svc
                if svc["phase"] == "failed" or stalled:
                    reason = svc["message"]
                    tail = ""
                    try:
                        log = self.build_log(svc["spec"]["model"] or name, target)
                        tail = "\n".join(log.splitlines()[-20:])
                    except ModelportError:
                        pass
                    raise DeployFailed(name, reason, target, tail)
            if time.monotonic() > deadline:
                raise DeployFailed(name, f"timed out after {timeout:g}s; last status: "
                                   f"{svc['phase']}: {svc['message']}", svc["target_version"])
            time.sleep(0.25)

    # inference ---------------------------------------------------------------------------
    def predict(self, name: str, **inputs: Any) -> dict[str, Any]:
        """Bytes inputs go as multipart files; everything else as JSON (or form fields)."""
        path = f"/v1/services/{name}/infer"
        if any(isinstance(v, (bytes, bytearray)) for v in inputs.values()):
            import json

            files = {k: (k, bytes(v)) for k, v in inputs.items() if isinstance(v, (bytes,
                                                                                  bytearray))}
            data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in inputs.items()
                    if k not in files}
            return self._json("POST", path, files=files, data=data)
        return self._json("POST", path, json=inputs)

    def predict_form(self, name: str, values: dict[str, str | bytes]) -> dict[str, Any]:
        """Inputs as form fields (str) and files (bytes); the gateway converts by input type."""
        files = {k: (k, v) for k, v in values.items() if isinstance(v, bytes)}
        data = {k: v for k, v in values.items() if not isinstance(v, bytes)}
        return self._json("POST", f"/v1/services/{name}/infer", data=data, files=files or None)

    # security (docs/security.md) -----------------------------------------------------------
    def login(self, username: str, password: str, name: str = "") -> dict[str, Any]:
        """A login token for this user (``{"token", "user", "role", "expires_at", ...}``);
        the client uses it from then on."""
        out = self._json("POST", "/api/v1/auth/token",
                         json={"username": username, "password": password, "name": name})
        self.http.headers["Authorization"] = f"Bearer {out['token']}"
        return out

    def whoami(self) -> dict[str, Any]:
        return self._json("GET", "/api/v1/auth/whoami")

    def create_key(self, scopes: list[str], name: str = "", ttl_s: float = 0,
                   rate_limit: float = 0, user: str = "") -> dict[str, Any]:
        """A new API key: ``token`` (Bearer/apikey), ``access_key``/``secret_key`` (AK/SK),
        shown this once."""
        body: dict[str, Any] = {"scopes": scopes, "name": name, "ttl_s": ttl_s,
                                "rate_limit": rate_limit}
        if user:
            body["user"] = user
        return self._json("POST", "/api/v1/keys", json=body)

    def keys(self, all_users: bool = False, revoked: bool = False) -> list[dict[str, Any]]:
        params = {k: "true" for k, on in (("all", all_users), ("revoked", revoked)) if on}
        return self._json("GET", "/api/v1/keys", params=params)["keys"]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/api/v1/keys/{key_id}")

    def users(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/v1/users")["users"]

    def create_user(self, username: str, password: str, role: str = "member"
                    ) -> dict[str, Any]:
        return self._json("POST", "/api/v1/users",
                          json={"username": username, "password": password, "role": role})

    def delete_user(self, username: str) -> dict[str, Any]:
        return self._json("DELETE", f"/api/v1/users/{username}")

    def set_password(self, username: str, password: str) -> dict[str, Any]:
        return self._json("PUT", f"/api/v1/users/{username}/password",
                          json={"password": password})

    def audit(self, limit: int = 100, user: str = "") -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, **({"user": user} if user else {})}
        return self._json("GET", "/api/v1/audit", params=params)["entries"]

    # batch jobs (docs/batch.md) -------------------------------------------------------------
    def batch_create(self, service: str, path: str | Path, concurrency: int = 1
                     ) -> dict[str, Any]:
        """A job over a folder, a .manifest, a .csv or a .jsonl (modelport/batch_input.py),
        uploaded now: it runs on the platform whether or not this client stays."""
        from modelport.batch_input import pack

        packed = pack(Path(path), self.get(service)["inputs"])
        return self._json("POST", "/api/v1/batches", content=packed.data,
                          params={"service": service, "concurrency": concurrency,
                                  "input_kind": packed.kind},
                          headers={"Content-Type": "application/zip"})

    def batch(self, batch_id: str) -> dict[str, Any]:
        return self._json("GET", f"/api/v1/batches/{batch_id}")

    def batches(self, service: str = "", limit: int = 50) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, **({"service": service} if service else {})}
        return self._json("GET", "/api/v1/batches", params=params)["batches"]

    def batch_cancel(self, batch_id: str) -> dict[str, Any]:
        return self._json("POST", f"/api/v1/batches/{batch_id}/cancel")

    def batch_log(self, batch_id: str) -> str:
        resp = self.http.get(f"/api/v1/batches/{batch_id}/logs")
        _raise_for(resp)
        return resp.text

    def batch_wait(self, batch_id: str, timeout: float = 3600,
                   progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Until the job finishes (succeeded, failed or cancelled); returns its last state."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.batch(batch_id)
            if progress:
                progress(job)
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            if time.monotonic() > deadline:
                raise ModelportError(Kind.UNAVAILABLE, "batch.wait_timeout",
                                     f"batch job {batch_id} is still {job['status']} after "
                                     f"{timeout:g}s", "wait again, or check `modelport batch "
                                     f"logs {batch_id}`")
            time.sleep(0.5)

    def batch_results(self, batch_id: str, output: str | Path) -> Path:
        """The finished job's output in ModelArts' layout, extracted under ``output``;
        returns the manifest's path."""
        import io
        import zipfile

        resp = self.http.get(f"/api/v1/batches/{batch_id}/results")
        _raise_for(resp)
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(resp.content)) as z:
            z.extractall(out)  # our own archive: names are infer-result-<id>[/...]
        return out / f"infer-result-{batch_id}.manifest"
