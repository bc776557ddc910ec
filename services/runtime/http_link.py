"""The runtime's link to a custom image's replica: HTTP/1.1 to the container's port.

A custom image (config.json ``"model_type": "Image"``) runs its own HTTP server on
``port`` (default 8080) in a container with no network. ``HttpLink`` stands where a
process worker's ``WorkerLink`` stands for the supervisor (``closed``, ``health``,
``shutdown``, ``connection_lost``) and serves ``forward``: one request sent over a pooled
keep-alive connection made inside the container's network namespace (``netns.py``), its
response handed back as it comes (the head, then the body in pieces). HTTP framing is
h11's (uvicorn's own dependency).

Health, as ModelArts defines it (config.json ``health``): ``check_method`` ``HTTP`` (a
GET of ``url``, default ``/health``; a 2xx or 3xx passes) or ``EXEC`` (``command`` run in
the container by ``/bin/sh -c``; exit code 0 passes). Without ``health`` the check is that
the port accepts a connection. ``wait_ready`` runs the startup check until it first passes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import h11

from modelport.errors import Kind, ModelportError
from services.runtime import replica_log
from services.runtime.netns import NetnsDialer
from services.runtime.probes import Probe
from services.runtime.worker.errors import describe_exit

DEFAULT_PORT = 8080
DEFAULT_HEALTH_URL = "/health"
#: idle keep-alive connections kept per replica
POOL_SIZE = 16
READ_BYTES = 64 * 1024
#: hop-by-hop headers (RFC 9110 7.6.1) and those h11 writes itself: never forwarded
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "proxy-authenticate",
                        "proxy-authorization", "content-length", "host"})
#: answers the gateway writes itself (it would send them twice)
GATEWAY_OWN = frozenset({"date", "server"})
#: methods whose requests carry a body (a Content-Length: 0 when it is empty)
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})

#: runs ``command`` in the container, at most ``timeout_s``: (exit code, its output)
Exec = Callable[[str, float], Awaitable[tuple[int, str]]]


@dataclass(frozen=True)
class Check:
    """The replica's health check, from config.json ``health`` (validated upstream)."""

    method: str  # HTTP | EXEC | TCP (no health configured: the port accepts)
    port: int
    url: str = DEFAULT_HEALTH_URL
    command: str = ""

    @classmethod
    def of(cls, config: dict[str, Any]) -> Check:
        port = int(config.get("port") or DEFAULT_PORT)
        health = config.get("health")
        if not isinstance(health, dict):
            return cls("TCP", port)
        method = str(health.get("check_method") or "HTTP").upper()
        if method == "EXEC":
            return cls("EXEC", port, command=str(health.get("command") or ""))
        return cls("HTTP", port, url=str(health.get("url") or DEFAULT_HEALTH_URL))

    def describe(self) -> str:
        if self.method == "EXEC":
            return f"EXEC `{self.command}`"
        if self.method == "TCP":
            return f"a connection to port {self.port}"
        return f"GET {self.url} on port {self.port}"


@dataclass(frozen=True)
class Head:
    """The start of the container's response."""

    status: int
    reason: str
    headers: list[tuple[str, bytes]]


def request_headers(given: list[tuple[str, bytes]], host: str, body: bytes, method: str
                    ) -> list[tuple[bytes, bytes]]:
    """What goes to the container: the caller's end-to-end headers (hop-by-hop ones
    dropped), ``Host``, and the body's length."""
    out: list[tuple[bytes, bytes]] = [(b"host", host.encode("latin-1"))]
    for name, value in given:
        lower = name.lower()
        if lower in HOP_BY_HOP:
            continue
        out.append((lower.encode("latin-1"), value))
    if body or method in WITH_BODY:
        out.append((b"content-length", str(len(body)).encode()))
    return out


def response_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, bytes]]:
    """The container's headers as the caller gets them (framing is the gateway's)."""
    out = []
    for name, value in raw:
        lower = name.decode("latin-1").lower()
        if lower in HOP_BY_HOP - {"content-length"} or lower in GATEWAY_OWN:
            continue
        out.append((lower, value))
    return out


class _Conn:
    """One HTTP/1.1 connection into the container."""

    __slots__ = ("reader", "writer", "h11")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    async def send(self, *events: Any) -> None:
        self.writer.write(b"".join(self.h11.send(e) or b"" for e in events))
        await self.writer.drain()

    async def event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(READ_BYTES)
            self.h11.receive_data(data)  # b"": the container closed it


class _Stale(Exception):
    """A reused keep-alive connection closed before any of the answer came: the server
    dropped it while idle, so the request may go again on a new one."""


class HttpLink:
    """The supervisor's handle on a custom image's server (see the module's doc)."""

    def __init__(self, replica_id: str, dialer: NetnsDialer, check: Check,
                 run_exec: Exec, exit_future: asyncio.Future[int], log_dir: Any) -> None:
        self.replica_id = replica_id
        self.dialer = dialer
        self.check = check
        self.port = check.port
        self._exec = run_exec
        self._exit = exit_future
        self._log_dir = log_dir
        self._idle: list[_Conn] = []
        self._lost: int | None = None

    # -- what the supervisor reads --------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._lost is not None or self._exit.done()

    def connection_lost(self, status: int) -> None:
        """The container exited (its backend saw it)."""
        self._lost = status
        self._drop_idle()
        self.dialer.close()

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """Nothing to ask: the backend stops the container (SIGTERM, then SIGKILL)."""

    def close(self) -> None:
        self._drop_idle()

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- what is not served here ------------------------------------------------------------

    def _not_http(self) -> ModelportError:
        return ModelportError(Kind.INVALID, "request.http_only",
                              f"replica {self.replica_id} is a custom image, which answers "
                              "HTTP only", fix="call its paths over REST: "
                              "/v1/services/NAME/<path>")

    def call(self, *args: Any, **kwargs: Any) -> Any:
        raise self._not_http()

    def predict_stream(self, *args: Any, **kwargs: Any) -> Any:
        raise self._not_http()

    async def cancel(self, request_id: str) -> None:
        return None

    # -- health -----------------------------------------------------------------------------

    async def health(self, timeout_s: float) -> None:
        """One health check; raises ModelportError (``replica.health_failed``) saying what
        it got."""
        try:
            async with asyncio.timeout(max(0.1, timeout_s)):
                await self._check()
        except TimeoutError:
            raise self._failed(f"no answer within {timeout_s:g}s") from None
        except OSError as exc:
            raise self._failed(_socket_error(exc, self.port)) from None
        except h11.ProtocolError as exc:
            raise self._failed(f"the answer is not HTTP/1.1 ({exc})") from None

    def _failed(self, what: str) -> ModelportError:
        return ModelportError(Kind.UNAVAILABLE, "replica.health_failed",
                              f"{self.check.describe()}: {what}",
                              fix="make the image answer its health check (config.json "
                                  "health), or see its log: `modelport logs NAME`")

    async def _check(self) -> None:
        if self.check.method == "EXEC":
            code, output = await self._exec(self.check.command, 3600)
            if code != 0:
                last = output.strip().splitlines()[-1:] if output.strip() else []
                raise self._failed(f"exited with code {code}"
                                   + (f" ({last[0][:200]})" if last else ""))
            return
        reader, writer = await self.dialer.connect(self.port)
        conn = _Conn(reader, writer)
        try:
            if self.check.method == "TCP":
                return
            await conn.send(h11.Request(method="GET", target=self.check.url, headers=[
                (b"host", f"127.0.0.1:{self.port}".encode()), (b"connection", b"close"),
                (b"user-agent", b"modelport-health")]), h11.EndOfMessage())
            while True:
                event = await conn.event()
                if isinstance(event, h11.InformationalResponse):
                    continue
                if isinstance(event, h11.Response):
                    if not 200 <= event.status_code < 400:
                        reason = event.reason.decode("latin-1", "replace")
                        raise self._failed(f"answered {event.status_code} {reason}".rstrip())
                    return
                if isinstance(event, h11.ConnectionClosed):
                    raise self._failed("the connection closed before an answer")
        finally:
            conn.close()

    async def wait_ready(self, probe: Probe) -> None:
        """Until the health check first passes: after ``initial_delay_s``, every
        ``period_s``, for at most ``budget_s``; raises ``replica.health_never_passed``
        with the last failure, or ``replica.exited_on_start`` if the container exits."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + probe.budget_s
        await self._sleep(probe.initial_delay_s)
        last: ModelportError | None = None
        while True:
            try:
                await self.health(probe.timeout_s or 1.0)
                return
            except ModelportError as err:
                last = err
            await self._sleep(0)
            if loop.time() + probe.period_s > deadline:
                raise ModelportError(
                    Kind.UNAVAILABLE, "replica.health_never_passed",
                    f"the health check did not pass within {loop.time() - began:.0f}s of the "
                    f"container's start ({last.message})",
                    fix="make the image serve its health check on its port, or allow it "
                        "longer: config.json health.initial_delay_seconds or "
                        "health.startup (see the replica log)")
            await self._sleep(probe.period_s)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, or raise at once when the container exits meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._exit), seconds)
        if self._exit.done():
            code = self._exit.result()
            last = replica_log.tail(self._log_dir / "replica.log")
            raise ModelportError(
                Kind.UNAVAILABLE, "replica.exited_on_start",
                f"the container {describe_exit(code)} before its health check passed"
                + (f"; last lines of replica.log:\n{last}" if last else ""),
                fix="see the replica log; the image's CMD must start its HTTP server and "
                    "keep running", details={"exit_code": code})

    # -- requests ---------------------------------------------------------------------------

    async def _take(self) -> tuple[_Conn, bool]:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn, True
            conn.close()
        if self.closed:
            raise self._gone()
        reader, writer = await self.dialer.connect(self.port)
        return _Conn(reader, writer), False

    def _give_back(self, conn: _Conn, reusable: bool = True) -> None:
        if (reusable and conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE
                and not self.closed and len(self._idle) < POOL_SIZE and conn.usable()):
            conn.h11.start_next_cycle()
            self._idle.append(conn)
        else:
            conn.close()

    def _gone(self) -> ModelportError:
        why = describe_exit(self._lost) if self._lost is not None else "stopped"
        return ModelportError(Kind.UNAVAILABLE, "replica.exited",
                              f"the container of replica {self.replica_id} {why}",
                              fix="retry; the replica is restarted")

    async def forward(self, method: str, target: str, headers: list[tuple[str, bytes]],
                      body: bytes, deadline: float) -> AsyncIterator[Head | bytes]:
        """Send one request; yield its response's ``Head``, then the body's pieces.
        ``deadline`` (the loop's clock) bounds each step; raises ModelportError."""
        host = next((v.decode("latin-1") for k, v in headers if k == "host"),
                    f"127.0.0.1:{self.port}")
        request = h11.Request(method=method, target=target,
                              headers=request_headers(headers, host, body, method))
        for attempt in (0, 1):
            try:
                async with asyncio.timeout_at(deadline):
                    conn, reused = await self._take()
            except TimeoutError:
                raise _timeout(deadline) from None
            except OSError as exc:
                raise self._unreachable(exc) from None
            try:
                async for part in self._exchange(conn, reused, request, body, deadline):
                    yield part
                return
            except _Stale:
                if attempt:
                    raise self._unreachable(ConnectionResetError()) from None

    async def _exchange(self, conn: _Conn, reused: bool, request: h11.Request, body: bytes,
                        deadline: float) -> AsyncIterator[Head | bytes]:
        done = False
        started = False
        # an error answer to a request with a body may have come before the server read
        # the body (http.server does that): what is left of it would be read as the next
        # request, so that connection is not used again
        reusable = True
        try:
            async with asyncio.timeout_at(deadline):
                await conn.send(request, *([h11.Data(data=body)] if body else []),
                                h11.EndOfMessage())
                while True:
                    event = await conn.event()
                    if isinstance(event, h11.InformationalResponse):
                        continue
                    break
            if isinstance(event, h11.ConnectionClosed):
                if reused:
                    raise _Stale()
                raise self._closed_early()
            assert isinstance(event, h11.Response)
            started = True
            reusable = event.status_code < 400 or not body
            yield Head(event.status_code, event.reason.decode("latin-1", "replace"),
                       response_headers(event.headers))
            while True:
                async with asyncio.timeout_at(deadline):
                    event = await conn.event()
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    done = True
                    return
                else:  # closed mid-body
                    raise self._closed_early(started)
        except TimeoutError:
            raise _timeout(deadline) from None
        except (ConnectionError, OSError) as exc:
            if reused and not started:
                raise _Stale() from None
            raise (self._closed_early(True) if started else self._unreachable(exc)) from None
        except h11.ProtocolError as exc:
            if reused and not started and isinstance(exc, h11.RemoteProtocolError):
                raise _Stale() from None
            raise ModelportError(Kind.MODEL, "replica.http_invalid",
                                 f"the container's answer is not valid HTTP/1.1: {exc}",
                                 fix="fix the image's HTTP server") from None
        finally:
            if done:
                self._give_back(conn, reusable)
            else:
                conn.close()

    def _unreachable(self, exc: OSError) -> ModelportError:
        if self.closed:
            return self._gone()
        return ModelportError(Kind.UNAVAILABLE, "replica.http_unreachable",
                              f"the container of replica {self.replica_id}: "
                              f"{_socket_error(exc, self.port)}",
                              fix=f"serve HTTP on port {self.port} inside the image (config.json "
                                  "\"port\"), or see its log: `modelport logs NAME`")

    def _closed_early(self, started: bool = False) -> ModelportError:
        if self.closed:
            return self._gone()
        part = "in the middle of its answer" if started else "before answering"
        return ModelportError(Kind.UNAVAILABLE, "replica.http_closed",
                              f"the container closed the connection {part}",
                              fix="see the replica log: `modelport logs NAME`")


def _timeout(deadline: float) -> ModelportError:
    return ModelportError(Kind.DEADLINE, "request.timeout",
                          "the container did not answer within the request's timeout",
                          fix="raise timeout_s in config.json or the service spec")


def _socket_error(exc: OSError, port: int) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing listens on port {port} (connection refused)"
    if isinstance(exc, ConnectionResetError):
        return f"the connection to port {port} was reset"
    return f"port {port}: {exc.strerror or exc}"
