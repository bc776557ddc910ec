"""REST inference: decode JSON, multipart, text and octet-stream bodies into one request.

The envelope `{"result", "data", "metadata"}` follows the reference inference
engine. JSON the model produced is spliced into the envelope as raw bytes, never
decoded and re-encoded.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from modelport.errors import ModelportError, invalid, too_large
from modelport.v1 import inference_pb2
from services.gateway.dataplane import DataPlane, InferenceRequest, InferenceResult, Route
from services.gateway.rest.errors import error_response
from services.gateway.routing import VERSION_HEADER, pinned_version
from services.gateway.streaming import sse

BINARY_TYPES = {"image", "file"}
#: media types decoded as a JSON object of inputs ("": a Content-Type with no type)
JSON_TYPES = ("application/json", "")


def _value(name: str, type_: str, raw: Any, source: str) -> inference_pb2.InputValue:
    """One decoded value -> wire value, by the input's declared type."""
    if type_ in BINARY_TYPES:
        if isinstance(raw, bytes):
            return inference_pb2.InputValue(name=name, data=raw)
        if isinstance(raw, str):
            text = raw.split(",", 1)[1] if raw.startswith("data:") and "," in raw else raw
            try:
                return inference_pb2.InputValue(name=name, data=base64.b64decode(text,
                                                                                 validate=True))
            except (binascii.Error, ValueError):
                pass
        raise invalid("request.input_encoding", f"input {name!r} ({type_}) is not base64 in the "
                      f"{source} body", "send image/file inputs as base64 strings in JSON, or as"
                      " files in multipart/form-data", path=f"$.{name}")
    if type_ == "text":
        if isinstance(raw, bytes):
            try:
                raw = raw.decode()
            except UnicodeDecodeError:
                raise invalid("request.input_encoding", f"input {name!r} is not UTF-8 text",
                              "send text inputs as UTF-8", path=f"$.{name}") from None
        if not isinstance(raw, str):
            raise invalid("request.input_type", f"input {name!r} must be a string",
                          "send text inputs as JSON strings", path=f"$.{name}")
        return inference_pb2.InputValue(name=name, text=raw)
    # json, number, tensor: carried as JSON
    if source != "json" and isinstance(raw, (str, bytes)):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            if type_ != "json":
                raise invalid("request.input_type", f"input {name!r} ({type_}) is not valid JSON",
                              f"send a {type_} value", path=f"$.{name}") from None
    if type_ == "number" and (isinstance(raw, bool) or not isinstance(raw, (int, float))):
        raise invalid("request.input_type", f"input {name!r} must be a number",
                      "send a JSON number", path=f"$.{name}")
    return inference_pb2.InputValue(name=name, json=orjson.dumps(raw))


def _types(route: Route) -> dict[str, str]:
    return {i["name"]: i["type"] for i in route.inputs}


def content_type(value: str | None) -> str:
    """The media type of a Content-Type header, lowercased; absent means JSON."""
    return (value if value is not None else "application/json").split(";")[0].strip().lower()


def check_declared_length(value: str | None, max_body: int) -> None:
    """A Content-Length over the limit is refused before any of the body is read."""
    declared = int(value or 0)
    if declared > max_body:
        raise too_large("request.too_large", f"request body is {declared} bytes; the limit is "
                        f"{max_body}", "send a smaller input or use an async task")


def body_too_large(limit: int) -> ModelportError:
    return too_large("request.too_large", f"request body exceeds the {limit}-byte limit",
                     "send a smaller input or use an async task")


def json_object(raw: bytes | str, types: dict[str, str], what: str, must: str
                ) -> dict[str, Any]:
    """``raw`` parsed as the JSON object keyed by input name that REST bodies and WebSocket
    messages carry; ``what``/``must`` word the errors for the one it is."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid("request.invalid_json", f"{what} is not valid JSON: {exc}",
                      "send a JSON object keyed by input name") from None
    if not isinstance(doc, dict):
        raise invalid("request.not_an_object", f"{must} an object keyed by input name",
                      "send {" + ", ".join(f'"{n}": ...' for n in types) + "}")
    return doc


def decode_json(body: bytes, route: Route) -> list[inference_pb2.InputValue]:
    """A JSON body (an object keyed by input name) as wire values, by declared type."""
    types = _types(route)
    doc = json_object(body, types, "request body", "JSON body must be")
    if route.interface.get("kind") == "modelarts":  # as sent: see decode()
        return [inference_pb2.InputValue(name=k, json=orjson.dumps(v)) for k, v in doc.items()]
    return [_value(k, types.get(k, "json"), v, "json") for k, v in doc.items()]


async def decode(request: Request, route: Route, max_body: int) -> list[inference_pb2.InputValue]:
    ctype = content_type(request.headers.get("content-type"))
    check_declared_length(request.headers.get("content-length"), max_body)
    types = _types(route)
    # ModelArts code receives the request as sent (files with their names, fields as
    # text, the JSON body as parsed): its `apis` schema describes, it does not convert
    as_sent = route.interface.get("kind") == "modelarts"
    if ctype == "application/x-www-form-urlencoded":  # curl -d's type: often JSON meant
        body = await _read_limited(request, max_body)
        if _is_json_object(body):
            raise json_without_its_type(ctype)
        return [_value(key, "text" if as_sent else types.get(key, "text"), val, "multipart")
                for key, val in parse_qsl(body.decode("latin-1"), keep_blank_values=True)]
    if ctype == "multipart/form-data":
        form = await request.form(max_part_size=max_body)
        out = []
        for key, val in form.multi_items():
            if isinstance(val, UploadFile):
                value = _value(key, "file" if as_sent else types.get(key, "text"),
                               await val.read(), "multipart")
                if value.HasField("data") and val.filename:
                    value.filename = val.filename
            else:
                value = _value(key, "text" if as_sent else types.get(key, "text"), val,
                               "multipart")
            out.append(value)
        return out
    body = await _read_limited(request, max_body)
    if ctype in JSON_TYPES:
        return decode_json(body, route)
    if ctype in ("text/plain", "application/octet-stream"):
        if len(types) != 1:
            if _is_json_object(body):
                raise json_without_its_type(ctype)
            raise invalid("request.single_input_only", f"{ctype} bodies work only for services "
                          f"with one input; {route.service!r} has {len(types)}",
                          "send application/json or multipart/form-data")
        (name, type_), = types.items()
        return [_value(name, type_, body, "raw")]
    if _is_json_object(body):
        raise json_without_its_type(ctype)
    raise invalid("request.content_type", f"unsupported Content-Type {ctype!r}",
                  "use application/json, multipart/form-data, text/plain or "
                  "application/octet-stream")


def _is_json_object(body: bytes) -> bool:
    """Whether ``body`` is a JSON object: what a request meant as JSON carries."""
    if not body.lstrip().startswith(b"{"):
        return False
    try:
        return isinstance(orjson.loads(body), dict)
    except orjson.JSONDecodeError:
        return False


def json_without_its_type(ctype: str) -> ModelportError:
    """A JSON body sent under another Content-Type (``curl -d`` says form-urlencoded)."""
    return invalid("request.content_type_not_json",
                   f"the body is a JSON object but its Content-Type is {ctype!r}, so it was "
                   "not read as JSON (curl -d sends application/x-www-form-urlencoded)",
                   "send the JSON type: curl -H 'Content-Type: application/json' -d "
                   "'{...}' URL (or curl --json '{...}' URL, curl 7.82+)")


async def _read_limited(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def envelope(res: InferenceResult) -> bytes:
    is_json = res.output.HasField("json")
    meta = orjson.dumps({"duration": round(res.total_ms, 3), "worker_duration":
                         round(res.worker_ms, 3), "request_id": res.request_id,
                         "version": res.version,
                         "content_type": "json" if is_json else "bytes"})
    if is_json:
        data = res.output.json
    else:
        data = orjson.dumps(base64.b64encode(res.output.data).decode())
    return b'{"result":true,"data":' + data + b',"metadata":' + meta + b"}"


class InferEndpoint:
    """`POST /v1/services/{name}/infer`: the envelope. `answer`/`fail` render the success
    and error bodies, so the ModelArts route (rest/modelarts_infer.py) is this endpoint
    with the package's raw body and ModelArts' error shape."""

    def __init__(self, dataplane: DataPlane, max_body: int, tasks: Any = None,
                 answer: Callable[[InferenceResult, str | None], tuple[bytes, str]] | None
                 = None, fail: Callable[[ModelportError, str], Response] | None = None,
                 forward: Any = None) -> None:
        self.dataplane = dataplane
        self.max_body = max_body
        self.tasks = tasks  # rest/tasks.py TaskApi: `Prefer: respond-async` submits a task
        self.answer = answer or answer_body
        self.fail = fail or error_response
        #: rest/forward.py ForwardEndpoint: a custom image's service gets the request as
        #: HTTP at its own path (`/infer`; ModelArts' `/v1/infers/{name}/{path}`: `/path`)
        self.forward = forward

    async def handle(self, request: Request) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        name = request.path_params["name"]
        try:
            pin = pinned_version(request.headers.get(VERSION_HEADER))  # routing.py decides
            route = await self.dataplane.route(name, pin)
            if self.forward is not None and route.interface.get("kind") == "image":
                return await self.forward.respond(request, route, rid, self.fail)
            inputs = await decode(request, route, self.max_body)
            if self.tasks is not None and self.tasks.wants_async(request):
                return await self.tasks.submit(request, route, inputs, rid)
            if sse.wants_sse(request):
                return await sse.respond(self.dataplane, InferenceRequest(name, rid, inputs,
                                                                          version=pin), route)
            res = await self.dataplane.infer(InferenceRequest(name, rid, inputs, version=pin),
                                             route)
        except ModelportError as err:
            return self.fail(err, rid)
        body, media_type = self.answer(res, request.headers.get("accept"))
        return Response(body, headers={"X-Request-ID": rid, "X-Model-Version": str(res.version)},
                        media_type=media_type)


def answer_body(res: InferenceResult, accept: str | None) -> tuple[bytes, str]:
    """The success body and its media type: the envelope, or the raw bytes when the client
    accepts only ``application/octet-stream`` and the model returned bytes."""
    if accept == "application/octet-stream" and res.output.HasField("data"):
        return res.output.data, "application/octet-stream"
    return envelope(res), "application/json"
