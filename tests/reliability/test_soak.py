"""Load and slow clients (issue 18 §6), on a real platform, measured with psutil:

- a soak: 4 clients calling a model back to back and one polling the management API, for
  ``SOAK_SECONDS`` (60 by default; `make chaos` runs 10 minutes): the RSS of every
  component and of the worker after a warm-up and at the end differ by at most
  max(25 MB, 20 %), printed as a table;
- slow and vanishing clients: SSE and WebSocket streams of an endless model and large
  answers, each read a little, then not read at all, then left with a TCP reset (some
  while still queued): while they hang the models stop making items and the RSS of the
  gateway and the runtime stays bounded; afterwards the gateway's connections, the
  runtime's streams and queues and the models' generators all go back to what they were,
  round after round, with the RSS flat across rounds.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

import modelport
from tests.conftest import (
    AUTH_HEADERS,
    RunningPlatform,
    component_pid,
    open_to_workers,
    start_platform,
)
from tests.lifecycle.test_lifecycle import runtime_loads
from tests.reliability.faults import Steady, answering_pid, package
from tests.rollout.load import wait_until
from tests.streaming.conftest import TICKER, model_log, ticker_inputs

COMPONENTS = ("builder", "runtime", "registry", "gateway")
MB = 1024 * 1024
SOAK_S = float(os.environ.get("SOAK_SECONDS", "60"))
WARMUP_S = 15.0
#: allowed growth from the warm-up to the end: this many bytes or this share, the larger
GROWTH_BYTES, GROWTH_SHARE = 25 * MB, 0.20
#: slow-client rounds, endless streams per protocol (on REPLICAS replicas: the rest wait
#: in the queue), stalled readers of 4 MB answers, and how much a round may add at its peak
ROUNDS, STREAMS, REPLICAS, BIG_READERS = int(os.environ.get("SLOW_ROUNDS", "3")), 4, 3, 6
PEAK_BYTES = 100 * MB

BIG = """
class Predictor:
    def predict(self, text):
        return {"blob": "x" * (4 * 1024 * 1024)}
"""


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def component_pids(plat: RunningPlatform) -> dict[str, int]:
    pids = {name: component_pid(plat.proc.pid, name) for name in COMPONENTS}
    assert all(pids.values()), pids
    return pids  # type: ignore[return-value]


def growth_ok(before: int, after: int) -> bool:
    return after - before <= max(GROWTH_BYTES, GROWTH_SHARE * before)


def table(rows: dict[str, list[int]], times: list[float]) -> str:
    head = "process    " + "".join(f"{t:>8.0f}s" for t in times)
    return "\n".join([head, *(f"{name:<11}" + "".join(f"{v / MB:>8.1f}M" for v in values)
                              for name, values in rows.items())])


@pytest.mark.slow
def test_a_soak_under_steady_load_keeps_every_process_flat(tmp_path: Path) -> None:
    home = tmp_path / "home"
    plat = start_platform(home)
    try:
        with modelport.Client(plat.url, home=home) as c:
            url = c.create(package(tmp_path / "steady", "steady"), name="steady")["url"]
        worker = answering_pid(url)
        assert worker
        pids = {**component_pids(plat), "worker": worker}
        stop = threading.Event()
        polls: list[int] = []

        def manage() -> None:  # the registry and the management API under light use
            with httpx.Client(base_url=plat.url, headers=AUTH_HEADERS, timeout=60) as http:
                while not stop.is_set():
                    for path in ("/api/v1/services", "/api/v1/services/steady",
                                 "/api/v1/stats", "/api/v1/services/steady/events"):
                        polls.append(http.get(path).status_code)
                    time.sleep(0.2)

        poller = threading.Thread(target=manage, daemon=True)
        rows: dict[str, list[int]] = {name: [] for name in pids}
        times: list[float] = []
        with Steady(url, {"text": "soak"}) as load:
            poller.start()
            began = time.monotonic()
            time.sleep(WARMUP_S)
            while True:
                now = time.monotonic() - began
                times.append(now)
                for name, pid in pids.items():
                    rows[name].append(rss(pid))
                if now >= WARMUP_S + SOAK_S:
                    break
                time.sleep(min(5.0, WARMUP_S + SOAK_S - now))
            stop.set()
        poller.join(60)
        outcomes = load.snapshot()
        print(f"\nsoak: {len(outcomes)} requests in {times[-1]:.0f}s, {len(polls)} management "
              f"calls; RSS from the warm-up ({WARMUP_S:g}s) to the end:\n" + table(rows, times))
        assert component_pids(plat) == {n: p for n, p in pids.items() if n != "worker"}, \
            "a component restarted during the soak"
        assert answering_pid(url) == worker, "the worker was replaced during the soak"
    finally:
        plat.stop()
    failed = [(o.status, o.code) for o in outcomes if o.status != 200]
    assert not failed, f"{len(failed)} of {len(outcomes)} failed: {failed[:5]}"
    assert set(polls) == {200}, sorted(set(polls))
    grown = {name: (v[0] / MB, v[-1] / MB) for name, v in rows.items()
             if not growth_ok(v[0], v[-1])}
    assert not grown, f"RSS grew (MB, warm-up -> end): {grown}"


def small_socket(host: str, port: int) -> socket.socket:
    """A connection whose receive buffer is small, so a reader that stops reading stops
    the sender soon (the kernel would otherwise take megabytes on loopback)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    return s


def raw_request(host: str, port: int, path: str, body: dict, headers: dict[str, str]
                ) -> socket.socket:
    """A connection with a small receive buffer that sent one POST and reads nothing yet."""
    s = small_socket(host, port)
    data = json.dumps(body).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(data)}\r\n{head}\r\n".encode() + data)
    return s


def raw_websocket(host: str, port: int, path: str, text: str) -> socket.socket:
    """A WebSocket (RFC 6455 by hand: a client library reads on in a thread of its own)
    that sent one text message and reads nothing yet."""
    s = small_socket(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
              "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    s.settimeout(30)
    while b"\r\n\r\n" not in head:
        byte = s.recv(1)
        assert byte, f"the gateway closed the handshake: {head!r}"
        head += byte
    assert head.startswith(b"HTTP/1.1 101"), head
    data, mask = text.encode(), os.urandom(4)
    length = bytes([0x80 | len(data)]) if len(data) < 126 else \
        bytes([0x80 | 126]) + struct.pack("!H", len(data))
    s.sendall(bytes([0x81]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
    return s


def read_some(s: socket.socket, want: int, within: float) -> int:
    """Read up to ``want`` bytes within ``within`` seconds (less if the answer is queued)."""
    got, deadline = 0, time.monotonic() + within
    while got < want and (left := deadline - time.monotonic()) > 0:
        s.settimeout(left)
        try:
            chunk = s.recv(min(4096, want - got))
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        got += len(chunk)
    return got


def reset(s: socket.socket) -> None:
    """Leave without a goodbye: a TCP RST (SO_LINGER 0), as a client that crashed."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        s.close()


def gateway_connections(gateway: int, port: int) -> int:
    """The gateway's TCP connections on its HTTP port (the listening socket left out)."""
    return sum(1 for c in psutil.Process(gateway).connections(kind="tcp")
               if c.laddr and c.laddr.port == port and c.status != psutil.CONN_LISTEN)


def mb(values: dict[str, int]) -> dict[str, float]:
    return {k: round(v / MB, 1) for k, v in values.items()}


def test_slow_and_vanishing_clients_cost_bounded_memory_and_are_cleaned_up(
        tmp_path: Path) -> None:
    open_to_workers(tmp_path)
    home = tmp_path / "home"
    plat = start_platform(home)
    try:
        with modelport.Client(plat.url, home=home) as c:
            c.create(TICKER, name="ticker", spec=json.dumps({"replicas": REPLICAS}))
            c.create(package(tmp_path / "big", "big", BIG), name="big")
        host, port = plat.url.removeprefix("http://").rsplit(":", 1)
        port_n = int(port)
        pids = component_pids(plat)
        watched = {name: pids[name] for name in ("gateway", "runtime")}
        assert httpx.post(f"{plat.url}/v1/services/big/infer", json={"text": "x"},
                          timeout=60).status_code == 200

        def idle() -> bool:
            loads = [*runtime_loads(plat, "ticker").loads, *runtime_loads(plat, "big").loads]
            return gateway_connections(pids["gateway"], port_n) == 0 and \
                all(ld.in_flight == 0 and ld.queued == 0 for ld in loads)

        wait_until(idle, 30, "the platform to be idle before the first round")
        base = {name: rss(pid) for name, pid in watched.items()}
        settled: list[dict[str, int]] = []
        peaks: list[dict[str, int]] = []
        for rnd in range(ROUNDS):
            logs = [tmp_path / f"r{rnd}-{kind}-{i}.log" for kind in ("sse", "ws")
                    for i in range(STREAMS)]
            release = threading.Event()
            clients: list[Callable[[], socket.socket]] = []
            for log in logs:
                body = ticker_inputs(1_000_000, size=64 * 1024, log=str(log))  # endless
                if "-sse-" in log.name:
                    clients.append(lambda b=body: raw_request(
                        host, port_n, "/v1/services/ticker/infer", b,
                        {"Accept": "text/event-stream"}))
                else:
                    clients.append(lambda b=body: raw_websocket(
                        host, port_n, "/v1/services/ticker/ws", json.dumps(b)))
            clients += [lambda: raw_request(host, port_n, "/v1/services/big/infer",
                                            {"text": "b"}, {})] * BIG_READERS

            def stall(open_one: Callable[[], socket.socket],
                      release: threading.Event = release) -> None:
                s = open_one()
                read_some(s, 8192, 1.5)  # a little of the answer (nothing while queued)
                release.wait(60)  # then it reads no more ...
                reset(s)  # ... and vanishes

            threads = [threading.Thread(target=stall, args=(fn,), daemon=True)
                       for fn in clients]
            for t in threads:
                t.start()
            began = time.monotonic()
            peak = dict.fromkeys(watched, 0)
            counts: list[dict[str, int]] = []
            for at in (2.5, 4.0):  # the readers stalled: the models must be stalled too
                while time.monotonic() - began < at:
                    peak = {n: max(peak[n], rss(pid)) for n, pid in watched.items()}
                    time.sleep(0.1)
                counts.append({log.name: len(model_log(log)) for log in logs})
            release.set()
            for t in threads:
                t.join(60)
            peaks.append(peak)
            streaming = [n for n, made in counts[0].items() if made]
            assert len(streaming) >= REPLICAS - 1, f"streams did not reach the model: {counts}"
            assert {n: counts[1][n] for n in streaming} == {n: counts[0][n] for n in streaming}, \
                f"a model ran on while its reader stalled: {counts}"
            # all of it cleaned up: connections, streams, queues and the models' generators
            wait_until(idle, 60, f"connections and streams to end after round {rnd}")
            started = [log for log in logs if model_log(log)]
            wait_until(lambda s=started: all("closed" in model_log(log) for log in s), 30,
                       "every started generator to be closed")
            assert not any("finished" in model_log(log) for log in started)
            time.sleep(1.0)
            settled.append({name: rss(pid) for name, pid in watched.items()})
        print(f"\nRSS (MB), idle {mb(base)}; per round peak {[mb(p) for p in peaks]}, after "
              f"{[mb(s) for s in settled]}")
        assert httpx.post(f"{plat.url}/v1/services/big/infer", json={"text": "x"},
                          timeout=60).status_code == 200
        with httpx.stream("POST", f"{plat.url}/v1/services/ticker/infer", timeout=60,
                          json=ticker_inputs(3), headers={"Accept": "text/event-stream"}) as r:
            assert r.status_code == 200 and "event: done" in r.read().decode()
        assert component_pids(plat) == pids, "a component restarted"
    finally:
        plat.stop()
    # endless streams and 4 MB answers held by readers that stalled: bounded (nothing
    # buffered per item the models could have made), and not growing round after round
    for name in watched:
        assert max(p[name] for p in peaks) - base[name] <= PEAK_BYTES, (name, base, peaks)
        assert growth_ok(settled[0][name], settled[-1][name]), (name, settled)
