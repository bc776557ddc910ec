"""One replica served over HTTP on its own: the entry point of a pod outside the platform.

Run as ``<venv python> -m modelport_worker.http_front --package DIR [--port 8080]``. A
Kubernetes Deployment rendered by ``modelport export kubernetes`` runs this in the version's
image (``/opt/modelport/venv`` + ``/opt/modelport/package``): there is no runtime or gateway
in a pod, so the shim's own adapters answer the gateway's REST call shape directly:

- ``POST /v1/services/{name}/infer`` (also ``/predict`` and ``/infer``): JSON keyed by
  input name (image/file inputs base64), or one raw body for a single-input package;
  the answer is the gateway's ``{"result": true, "data", "metadata"}``;
- ``GET /health`` (ModelArts' check: ``{"status": "OK"}``), ``/health/live``,
  ``/health/ready`` and ``/v2/health/ready``: live once the process answers, ready once the
  package's setup has finished (the readiness probe), 503 with the reason before.

Setup runs once, in a thread, so probes answer during a long model load. Requests run one
at a time (the platform's default ``concurrency: 1``: most models are not thread-safe).
Streaming packages are refused with a clear error; the platform serves those.

Stdlib only, Python >= 3.8: this module is copied into the user's environment.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .kinds import find_config, load_adapter
from .kinds.base import RequestContext, ShimError, json_default
from .process import enter_package
from .protocol import ErrorCode
from .tensors import to_list
from .values import Result, Value

#: bodies larger than this are refused (413) before they are read
MAX_BODY_BYTES = 64 * 1024 * 1024
#: per-request timeout when the package does not set one
DEFAULT_TIMEOUT_S = 60.0
_BINARY = ("image", "file", "bytes")


class Replica:
    """The package's adapter, set up once; ``call`` runs one request at a time."""

    def __init__(self, package_dir: str, kind: str | None = None) -> None:
        _, self.config = find_config(package_dir)
        self.adapter = load_adapter(package_dir, kind=kind)
        self.inputs = [(str(i.get("name")), str(i.get("type") or "json"))
                       for i in (self.config.get("input") or []) if isinstance(i, dict)]
        self.timeout_s = float(self.config.get("timeout_s") or DEFAULT_TIMEOUT_S)
        self.ready = threading.Event()
        self.failure = ""  # why setup failed, once it has
        self._lock = threading.Lock()

    def setup(self) -> None:
        try:
            self.adapter.setup()
        except BaseException as exc:  # noqa: BLE001 - any failure of model code is reported
            self.failure = f"setup failed: {type(exc).__name__}: {exc}"
            sys.stderr.write(traceback.format_exc())
            return
        if getattr(self.adapter, "streaming", False):
            self.failure = ("the package streams its output; serve it on the platform "
                            "(modelport up), whose gateway speaks SSE and WebSocket")
            return
        self.ready.set()

    def decode(self, body: bytes, content_type: str) -> dict[str, Value]:
        """The request body as the adapter's inputs (the gateway's JSON rules)."""
        if "json" not in content_type and len(self.inputs) == 1:
            name, kind = self.inputs[0]
            if kind in _BINARY:
                return {name: Value.of_bytes(body)}
            return {name: Value.of_text(body.decode("utf-8"))} if kind == "text" else \
                {name: Value.of_raw_json(body)}
        try:
            doc = json.loads(body or b"{}")
        except ValueError as exc:
            raise BadRequest(f"the body is not JSON ({exc}); send an object keyed by input "
                             "name") from None
        if not isinstance(doc, dict):
            raise BadRequest("the body must be a JSON object keyed by input name")
        doc = doc.get("inputs", doc) if isinstance(doc.get("inputs"), dict) else doc
        kinds = dict(self.inputs)
        out: dict[str, Value] = {}
        for name, raw in doc.items():
            kind = kinds.get(name, "json")
            if kind in _BINARY:
                if not isinstance(raw, str):
                    raise BadRequest(f"input {name!r} ({kind}) must be a base64 string")
                if raw.startswith("data:") and "," in raw:
                    raw = raw.split(",", 1)[1]
                try:
                    out[name] = Value.of_bytes(base64.b64decode(raw, validate=True))
                except (binascii.Error, ValueError):
                    raise BadRequest(f"input {name!r} is not valid base64") from None
            elif kind == "text" and isinstance(raw, str):
                out[name] = Value.of_text(raw)
            else:
                out[name] = Value.of_json(raw)
        return out

    def call(self, inputs: dict[str, Value]) -> tuple[Any, float]:
        """The model's answer as JSON-ready data, and the seconds it took."""
        ctx = RequestContext(uuid.uuid4().hex, self.timeout_s)
        with self._lock:
            started = time.monotonic()
            out = self.adapter.predict(inputs, ctx)
            took = time.monotonic() - started
        if not isinstance(out, Result):
            raise BadRequest("the model streamed its answer; serve it on the platform")
        if out.kind == "bytes":
            return base64.b64encode(out.data).decode("ascii"), took
        if out.kind == "tensors":
            return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape),
                     "data": to_list(t)} for t in out.tensors], took
        return out.decoded(), took


class BadRequest(Exception):
    """A request the model never saw: 400 with this message."""


def make_handler(replica: Replica, service: str) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "modelport-replica"

        def log_message(self, fmt: str, *args: Any) -> None:  # access log -> stderr, short
            sys.stderr.write(f"[http] {fmt % args}\n")

        def _send(self, status: int, doc: Any) -> None:
            data = json.dumps(doc, default=json_default).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, code: str, message: str, fix: str) -> None:
            self._send(status, {"result": False, "error": {"code": code, "message": message,
                                                           "fix": fix}})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/health/live":
                self._send(200, {"status": "live"})
            elif path in ("/health", "/health/ready", "/v2/health/ready"):
                if replica.ready.is_set():
                    self._send(200, {"status": "OK"})
                else:
                    self._send(503, {"status": "NOT_READY",
                                     "reason": replica.failure or "setup is running"})
            else:
                self._error(404, "route.not_found", f"no route GET {path}",
                            "GET /health, /health/live or /health/ready; POST "
                            f"/v1/services/{service}/infer")

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0].rstrip("/")
            routes = (f"/v1/services/{service}/infer", f"/v1/services/{service}/predict",
                      "/infer", "/predict")
            if path not in routes:
                self._error(404, "route.not_found", f"no route POST {path}",
                            f"POST /v1/services/{service}/infer")
                return
            size = int(self.headers.get("Content-Length") or 0)
            if size > MAX_BODY_BYTES:
                self.close_connection = True
                self._error(413, "request.too_large", f"the body is {size} bytes, more than "
                            f"{MAX_BODY_BYTES}", "send a smaller body")
                return
            body = self.rfile.read(size)
            if not replica.ready.is_set():
                self._error(503, "service.not_ready", replica.failure or "setup is running",
                            "wait for the readiness probe")
                return
            try:
                data, took = replica.call(replica.decode(body, self.headers.get(
                    "Content-Type", "application/json")))
            except BadRequest as exc:
                self._error(400, "request.invalid", str(exc), "see the service's inputs in "
                            "config.json")
                return
            except ShimError as exc:  # found by the shim itself: bad input, bad output
                status = 400 if exc.code == ErrorCode.INVALID_INPUT else 500
                self._error(status, exc.code, exc.message, "see the service's inputs in "
                            "config.json" if status == 400 else "see the replica's log")
                return
            except Exception as exc:  # noqa: BLE001 - the model's own error, reported
                sys.stderr.write(traceback.format_exc())
                self._error(500, "model.error", f"{type(exc).__name__}: {exc}",
                            "see the replica's log for the traceback")
                return
            self._send(200, {"result": True, "data": data,
                             "metadata": {"worker_duration": round(took * 1000, 3),
                                          "service": service}})

    return Handler


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelport_worker.http_front",
                                     description="serve one package over HTTP")
    parser.add_argument("--package", required=True, help="the package directory")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="0.0.0.0",  # noqa: S104 - a pod's own address
                        help="address to listen on (a pod's: 0.0.0.0)")
    parser.add_argument("--service", default="", help="the service name in the route")
    parser.add_argument("--kind", default=None)
    args = parser.parse_args(argv)
    package = args.package
    enter_package(package)
    replica = Replica(package, args.kind)
    service = args.service or str(replica.config.get("name") or "model")
    server = ThreadingHTTPServer((args.host, args.port), make_handler(replica, service))
    server.daemon_threads = True
    sys.stderr.write(f"[modelport-replica] {service} listening on {args.host}:"
                     f"{server.server_address[1]}\n")
    sys.stderr.flush()
    threading.Thread(target=replica.setup, name="setup", daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
