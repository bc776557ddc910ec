"""Open Inference Protocol v2 over REST, under /v2 (the KServe / Triton HTTP protocol).

JSON tensors and the binary-data extension: with ``Inference-Header-Content-Length: N``
the first N body bytes are the JSON header and the rest are the raw tensors, in input
order, each sized by its ``parameters.binary_data_size``. Binary outputs (an output's
``parameters.binary_data``, or the request's ``binary_data_output``) come back the same
way, as separate body chunks after the JSON, never joined or re-encoded. Errors are
``{"error": message}`` as the protocol says, plus modelport's code and fix.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from modelport.errors import Kind, ModelportError, invalid, too_large
from services.component.lazy_imports import lazy_module
from services.gateway.oip.models import OipModels
from services.gateway.rest.infer import _read_limited

tz = lazy_module("services.gateway.oip.tensors")  # numpy (10 MB) with the first OIP request

HEADER_LENGTH = "inference-header-content-length"
_SHAPE_FIX = 'send {"inputs": [{"name", "datatype", "shape", "data"}]}'


class PartsResponse(Response):
    """A response sent as several body chunks (JSON header, then raw tensors) with one
    Content-Length, so large tensors are written out without being joined first."""

    def __init__(self, parts: list[bytes | memoryview], headers: dict[str, str],
                 media_type: str) -> None:
        self.parts = parts
        super().__init__(b"", headers=headers, media_type=media_type)
        self.headers["content-length"] = str(sum(memoryview(p).nbytes for p in parts))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        for i, part in enumerate(self.parts):
            await send({"type": "http.response.body", "body": part,
                        "more_body": i < len(self.parts) - 1})


def error_response(err: ModelportError, request_id: str) -> Response:
    """``{"error": "..."}`` (what OIP clients read) with modelport's code, fix and details."""
    if err.kind is Kind.INTERNAL:
        body: dict[str, Any] = {"error": f"internal error; quote request id {request_id}",
                                "code": "internal"}
    else:
        body = {"error": err.message, "code": err.code}
        if err.fix:
            body["fix"] = err.fix
        if err.details:
            body["details"] = err.details
    body["request_id"] = request_id
    headers = {"X-Request-ID": request_id}
    if err.kind in (Kind.EXHAUSTED, Kind.UNAVAILABLE):
        headers["Retry-After"] = "1"
    return Response(orjson.dumps(body), status_code=err.http_status, headers=headers,
                    media_type="application/json")


def param(params: Any, key: str, default: Any = None) -> Any:
    """A parameter's value, whether sent plainly (``{"k": 5}``) or typed as in the gRPC form
    (``{"k": {"int64_param": 5}}``)."""
    if not isinstance(params, dict) or key not in params:
        return default
    value = params[key]
    if isinstance(value, dict) and len(value) == 1:
        (tag, inner), = value.items()
        if tag.endswith("_param"):
            return inner
    return value


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise invalid("oip.content_encoding", f"unsupported Content-Encoding {encoding!r}",
                      "send gzip, deflate or uncompressed bodies")
    d = zlib.decompressobj(31 if encoding == "gzip" else 15)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise invalid("oip.content_encoding", f"the {encoding} body does not decompress: "
                      f"{exc}", "send a valid compressed body") from None
    if len(out) > limit:
        raise too_large("request.too_large", f"the decompressed body exceeds the {limit}-byte "
                        "limit", "send a smaller input or use an async task")
    return out


def parse_request(body: bytes, header_length: str | None
                  ) -> tuple[dict[str, Any], list[tz.Tensor]]:
    """The JSON header and the input tensors (binary parts sliced, not copied)."""
    view = memoryview(body)
    if header_length is not None:
        if not (header_length.isascii() and header_length.isdigit()) or int(
                header_length) > len(body):  # ASCII: "²".isdigit(), but int("²") fails
            raise invalid("oip.header_length", f"Inference-Header-Content-Length is "
                          f"{header_length!r} but the body is {len(body)} bytes",
                          "set it to the byte length of the JSON part")
        n = int(header_length)
        head, rest = view[:n], view[n:]
    else:
        head, rest = view, view[len(view):]
    try:
        doc = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        raise invalid("oip.invalid_json", f"the inference request is not valid JSON: {exc}",
                      _SHAPE_FIX) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise invalid("oip.no_inputs", "the inference request has no \"inputs\" list",
                      _SHAPE_FIX)
    inputs, pos = [], 0
    for i, raw in enumerate(doc["inputs"]):
        if not isinstance(raw, dict):
            raise invalid("oip.tensor", f"inputs[{i}] is not an object",
                          "send {\"name\", \"datatype\", \"shape\", \"data\"}")
        name, datatype, shape = tz.check_header(raw.get("name"), raw.get("datatype"),
                                                raw.get("shape"))
        size = param(raw.get("parameters"), "binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or pos + size > len(rest):
                raise invalid("oip.binary_data_size", f"input {name!r} says binary_data_size "
                              f"{size!r}, but {len(rest) - pos} binary bytes are left",
                              "send Inference-Header-Content-Length and each input's raw bytes "
                              "in order")
            inputs.append(tz.from_raw(name, datatype, shape, rest[pos:pos + size]))
            pos += size
        elif "data" in raw:
            inputs.append(tz.from_data(name, datatype, shape, raw["data"]))
        else:
            raise invalid("oip.tensor", f"input tensor {name!r} has no \"data\" and no "
                          "binary_data_size", "send its data as JSON or as a binary part")
    if pos != len(rest):
        raise invalid("oip.binary_data_size", f"{len(rest) - pos} binary bytes follow the JSON "
                      "that no input claims", "give each binary input its binary_data_size")
    return doc, inputs


def requested_outputs(doc: dict[str, Any]) -> tuple[list[str] | None, dict[str, bool]]:
    """Requested output names (None: all) and which of them want binary data."""
    raw = doc.get("outputs")
    if raw is None:
        return None, {}
    if not isinstance(raw, list) or not all(isinstance(o, dict) and isinstance(
            o.get("name"), str) for o in raw):
        raise invalid("oip.outputs", "\"outputs\" must be a list of {\"name\": ...}",
                      "name the outputs you want, or leave \"outputs\" out for all")
    binary = {o["name"]: bool(param(o.get("parameters"), "binary_data"))
              for o in raw if param(o.get("parameters"), "binary_data") is not None}
    return [o["name"] for o in raw] or None, binary


async def _about_model(request: Request,
                       answer: Callable[[str, str], Awaitable[Response]]) -> Response:
    """``answer(model, version)`` for the model the path names, or the error envelope."""
    name, version = _model(request)
    try:
        return await answer(name, version)
    except ModelportError as err:
        return error_response(err, request.headers.get("x-request-id") or uuid.uuid4().hex)


class OipRestApi:
    def __init__(self, models: OipModels, max_body: int) -> None:
        self.models = models
        self.max_body = max_body

    # ---------------------------------------------------------------- health, metadata

    async def live(self, request: Request) -> Response:
        return Response(orjson.dumps({"live": True}), media_type="application/json")

    async def ready(self, request: Request) -> Response:
        ok = await self.models.server_ready()
        return Response(orjson.dumps({"ready": ok}), status_code=200 if ok else 503,
                        media_type="application/json")

    async def server_metadata(self, request: Request) -> Response:
        return Response(orjson.dumps(self.models.server_metadata()),
                        media_type="application/json")

    async def model_ready(self, request: Request) -> Response:
        async def answer(name: str, version: str) -> Response:
            ok = await self.models.model_ready(name, version)
            return Response(orjson.dumps({"name": name, "ready": ok}),
                            status_code=200 if ok else 503, media_type="application/json")

        return await _about_model(request, answer)

    async def model_metadata(self, request: Request) -> Response:
        async def answer(name: str, version: str) -> Response:
            meta = await self.models.model_metadata(name, version)
            return Response(orjson.dumps(meta), media_type="application/json")

        return await _about_model(request, answer)

    # ---------------------------------------------------------------- infer

    async def infer(self, request: Request) -> Response:
        name, version = _model(request)
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        try:
            declared = int(request.headers.get("content-length") or 0)
            if declared > self.max_body:
                raise too_large("request.too_large", f"request body is {declared} bytes; the "
                                f"limit is {self.max_body}", "send a smaller input or use an "
                                "async task")
            body = await _read_limited(request, self.max_body)
            body = _decompress(body, request.headers.get("content-encoding", "").lower(),
                               self.max_body)
            doc, inputs = parse_request(body, request.headers.get(HEADER_LENGTH))
            requested, binary = requested_outputs(doc)
            done = await self.models.infer(name, version, inputs, requested, rid)
        except ModelportError as err:
            return error_response(err, rid)
        default_binary = bool(param(doc.get("parameters"), "binary_data_output", False))
        outputs, parts = [], []
        for t in done.outputs:
            entry: dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": t.shape}
            if binary.get(t.name, default_binary):
                raw = t.to_raw()
                entry["parameters"] = {"binary_data_size": memoryview(raw).nbytes}
                parts.append(raw)
            else:
                entry["data"] = tz.json_data(t)
            outputs.append(entry)
        head = tz.dumps({"model_name": done.route.service,
                         "model_version": str(done.result.version),
                         "id": doc.get("id") if isinstance(doc.get("id"), str) else rid,
                         "outputs": outputs})
        headers = {"X-Request-ID": rid, "X-Model-Version": str(done.result.version)}
        if not parts:
            return Response(head, headers=headers, media_type="application/json")
        headers["Inference-Header-Content-Length"] = str(len(head))
        return PartsResponse([head, *parts], headers, "application/octet-stream")

    def routes(self) -> list[Route]:
        out = [
            Route("/v2", self.server_metadata, methods=["GET"]),
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ready, methods=["GET"]),
        ]
        for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
            out += [Route(base, self.model_metadata, methods=["GET"]),
                    Route(base + "/ready", self.model_ready, methods=["GET"]),
                    Route(base + "/infer", self.infer, methods=["POST"])]
        return out


def _model(request: Request) -> tuple[str, str]:
    return request.path_params["name"], request.path_params.get("version", "")
