"""Observability over REST: /metrics, stats, logs and per-version events.

- ``GET /metrics``: the gateway's Prometheus metrics, then the registry's (one scrape
  sees requests, replicas desired/ready, builds and task queues; each runtime serves its
  own per-replica metrics, see services/runtime/metrics.py).
- ``GET /api/v1/services/{name}/stats`` and ``GET /api/v1/stats``: calls, successes,
  failures, RPS and p50/p90/p99 latency over the last 1, 5 and 15 minutes.
- ``GET /api/v1/services/{name}/logs``: like the reference engine's logs tab: ``kind=app``
  (default: the replicas' stdout/stderr), ``access`` (every request) or ``error`` (failed
  requests); ``replica=``, ``since=10m`` (or an ISO time or unix seconds), ``tail=N``,
  ``follow=true`` (stream new lines until the client goes away), ``format=json`` (NDJSON).
- ``GET /api/v1/models/{model}/versions/{number}/events``: one model version's events.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from modelport.errors import invalid, not_found
from modelport.v1 import registry_pb2, registry_pb2_grpc, runtime_pb2, runtime_pb2_grpc
from services.gateway.rest.params import INT32_MAX, query_int
from services.gateway.stats import GatewayStats
from services.rpc.errors import from_rpc_error
from services.telemetry import logfiles

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
KINDS = ("app", "access", "error")
DEFAULT_TAIL = 200


def parse_since(raw: str, now: float | None = None) -> float | None:
    """``10m`` / ``2h`` / ``30s`` / ``1d`` ago, an ISO-8601 time, or unix seconds."""
    raw = raw.strip()
    if not raw:
        return None
    now = time.time() if now is None else now
    if m := _DURATION.match(raw):
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if math.isfinite(seconds):  # "nan" and "inf" are floats too, but no time
        return seconds
    # "…00.²²²Z": line_time reads log lines leniently; a query is refused instead
    if not raw.isascii() or raw.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise invalid("logs.since_invalid", f"since={raw[:40]!r} is not a time",
                      "use a duration like 10m, 2h or 1d, an ISO time like "
                      "2026-01-31T12:00:00Z, or unix seconds", path="$.since")
    text = raw if raw.endswith("Z") or "+" in raw[10:] else raw + "Z"
    t = logfiles.line_time(text.replace(" ", "T", 1) + " ")
    if t is not None:
        return t
    raise invalid("logs.since_invalid", f"since={raw!r} is not a time",
                  "use a duration like 10m, 2h or 1d, an ISO time like 2026-01-31T12:00:00Z,"
                  " or unix seconds", path="$.since")


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


class ObservabilityApi:
    def __init__(self, stats: GatewayStats, registry: registry_pb2_grpc.RegistryStub,
                 runtime_address: str, logs_dir: Path,
                 flush_access_log: Callable[[], None] | None = None) -> None:
        self.stats = stats
        self.registry = registry
        self.runtime_address = runtime_address
        self.logs_dir = logs_dir
        #: writes the access log's waiting lines (it batches them), so a read sees them all
        self.flush_access_log = flush_access_log
        self._runtime: runtime_pb2_grpc.RuntimeStub | None = None

    def runtime(self) -> runtime_pb2_grpc.RuntimeStub:
        if self._runtime is None:
            from services.rpc.server import channel

            self._runtime = runtime_pb2_grpc.RuntimeStub(channel(self.runtime_address))
        return self._runtime

    async def _call(self, method: str, request: Any, timeout: float = 10) -> Any:
        try:
            return await getattr(self.registry, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, "registry") from None

    # metrics -----------------------------------------------------------------------------
    async def metrics(self, request: Request) -> Response:
        body = generate_latest(self.stats.registry)
        try:
            resp = await self.registry.Metrics(registry_pb2.MetricsRequest(), timeout=5)
            body += resp.text.encode()
        except grpc.aio.AioRpcError as err:
            body += f"# registry metrics unavailable: {err.code().name}\n".encode()
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # stats -------------------------------------------------------------------------------
    @staticmethod
    def _status(svc: registry_pb2.Service) -> dict[str, Any]:
        st = svc.status
        return {"phase": st.phase, "serving_version": st.serving_version,
                "ready_replicas": st.ready_replicas,
                "desired_replicas": svc.spec.replicas if svc.spec.HasField("replicas") else 1}

    async def service_stats(self, request: Request) -> Response:
        svc = await self._call("GetService", registry_pb2.GetServiceRequest(
            name=request.path_params["name"]))
        step = _int(request, "series", 0)  # ?series=10: a point per 10 s (the console)
        if step and not 1 <= step <= 300:
            raise invalid("request.query_invalid", "series must be a step of 1 to 300 "
                          "seconds", "send e.g. ?series=10", path="$.series")
        return _json({**self.stats.service_stats(svc.name, step), **self._status(svc)})

    async def all_stats(self, request: Request) -> Response:
        resp = await self._call("ListServices", registry_pb2.ListServicesRequest())
        return _json({"services": [{**self.stats.service_stats(s.name), **self._status(s)}
                                   for s in resp.services], "at": time.time()})

    # events of a model version -----------------------------------------------------------
    async def version_events(self, request: Request) -> Response:
        model, number = request.path_params["model"], int(request.path_params["number"])
        if not 0 < number <= INT32_MAX:  # {number:int} takes any digits; versions are int32
            raise not_found("version.not_found", f"model {model!r} has no version {number}",
                            f"list versions with GET /api/v1/models/{model}/versions")
        resp = await self._call("ListEvents", registry_pb2.ListEventsRequest(
            model=model, version=number, limit=_int(request, "limit", 100)))
        return _json({"events": [event_view(e) for e in resp.events]})

    # logs --------------------------------------------------------------------------------
    async def logs(self, request: Request) -> Response:
        name = request.path_params["name"]
        q = request.query_params
        kind = q.get("kind", "app")
        if kind not in KINDS:
            raise invalid("logs.kind_invalid", f"kind={kind!r} is not a log kind",
                          f"use one of {', '.join(KINDS)}", path="$.kind")
        since = parse_since(q.get("since", ""))
        follow = q.get("follow", "").lower() in ("1", "true", "yes")
        tail = _int(request, "tail", 0 if since is not None else DEFAULT_TAIL)
        as_json = q.get("format", "text") == "json"
        await self._call("GetService", registry_pb2.GetServiceRequest(name=name))
        if kind == "app":
            lines = self._app_lines(name, q.get("replica", ""), since, tail, follow, as_json)
        else:
            lines = self._access_lines(name, kind, since, tail, follow, as_json)
        first = await _first(lines)  # errors (unknown replica) before the 200 goes out
        media = "application/x-ndjson" if as_json else "text/plain; charset=utf-8"
        return StreamingResponse(_rest(first, lines), media_type=media,
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    async def _app_lines(self, service: str, replica: str, since: float | None, tail: int,
                         follow: bool, as_json: bool) -> AsyncIterator[bytes]:
        call = self.runtime().ReadLogs(runtime_pb2.ReadLogsRequest(
            service=service, replica_id=replica, since=since or 0.0, tail=tail, follow=follow),
            timeout=None if follow else 30)
        try:
            async for line in call:
                if as_json:
                    yield orjson.dumps({"ts": line.ts or None, "replica": line.replica_id,
                                        "version": line.version, "line": _body(line.text)}
                                       ) + b"\n"
                else:
                    stamp, _, body = line.text.partition(" ")
                    yield f"{stamp} [{line.replica_id}] {body}\n".encode() if line.ts else (
                        f"[{line.replica_id}] {line.text}\n".encode())
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, "runtime") from None
        finally:
            call.cancel()

    async def _access_lines(self, service: str, kind: str, since: float | None, tail: int,
                            follow: bool, as_json: bool) -> AsyncIterator[bytes]:
        path = self.logs_dir / ("access.log" if kind == "access" else "error-access.log")

        def mine(line: str) -> dict[str, Any] | None:
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                return None
            return entry if isinstance(entry, dict) and entry.get("service") == service else None

        def initial() -> list[dict[str, Any]]:
            found = [e for e in map(mine, logfiles.read(path, since)) if e is not None]
            return found[-tail:] if tail > 0 else found

        if self.flush_access_log is not None:
            self.flush_access_log()
        for entry in await asyncio.to_thread(initial):
            yield _access_line(entry, as_json)
        if follow:
            async for line in logfiles.follow(path):
                if (entry := mine(line)) is not None:
                    yield _access_line(entry, as_json)

    def routes(self) -> list[Route]:
        return [
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/api/v1/stats", self.all_stats, methods=["GET"]),
            Route("/api/v1/services/{name}/stats", self.service_stats, methods=["GET"]),
            Route("/api/v1/services/{name}/logs", self.logs, methods=["GET"]),
            Route("/api/v1/models/{model}/versions/{number:int}/events", self.version_events,
                  methods=["GET"]),
        ]


def event_view(e: registry_pb2.Event) -> dict[str, Any]:
    return {"ts": e.ts, "type": e.type, "reason": e.reason, "message": e.message,
            "version": e.version, "model": e.model}


def _int(request: Request, key: str, default: int) -> int:
    return query_int(request, key, default, fix=f"send {key} as a whole number, 0 or more")


def _body(text: str) -> str:
    stamp, sep, body = text.partition(" ")
    return body if sep and logfiles.line_time(text) is not None else text


def _access_line(entry: dict[str, Any], as_json: bool) -> bytes:
    if as_json:
        return orjson.dumps(entry) + b"\n"
    error = f" {entry.get('error_code')}: {entry.get('error')}" if entry.get("error_code") else ""
    return (f"{entry.get('ts')} {entry.get('status')} {entry.get('method')} {entry.get('path')}"
            f" {entry.get('duration_ms')}ms v{entry.get('version') or '-'}"
            f" request_id={entry.get('request_id')}{error}\n").encode()


#: how long the first line may take before the response starts anyway (follow, no lines)
FIRST_LINE_WAIT_S = 0.5


async def _first(lines: AsyncIterator[bytes]) -> asyncio.Future[bytes]:
    """The first line as a future: done (or failed: raised here) if it came quickly."""
    first = asyncio.ensure_future(lines.__anext__())
    await asyncio.wait({first}, timeout=FIRST_LINE_WAIT_S)
    if first.done() and not isinstance(first.exception(), StopAsyncIteration):
        first.result()  # raises a ModelportError (unknown replica ...) as a 4xx
    return first


async def _rest(first: asyncio.Future[bytes], lines: AsyncIterator[bytes]
                ) -> AsyncIterator[bytes]:
    try:
        yield await first
    except StopAsyncIteration:
        return
    async for line in lines:
        yield line
