"""``GET /openapi.json``: an OpenAPI 3.0 description of this gateway, built per request.

It holds, for every deployed service, its own operations with schemas made from the
service's declared interface (the predictor's ``input`` list, the file contract's input
files, a ModelArts ``apis`` request schema when the package has one): the native infer
URL (JSON and multipart bodies), the Open Inference Protocol URLs and KServe v1 predict.
Then the management API under /api/v1 and the rest of the routes (``openapi_routes.py``);
a route described nowhere is still listed (tagged ``other``, without schemas), so generated
clients and API fuzzers see all of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import grpc
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelport import __version__
from modelport.v1 import registry_pb2, registry_pb2_grpc
from services.gateway.rest import openapi_routes
from services.rpc.errors import from_rpc_error

REF = "#/components/schemas/"
#: OIP datatype -> JSON schema of one element
_ELEMENT = {
    "BOOL": {"type": "boolean"},
    "UINT8": {"type": "integer", "minimum": 0, "maximum": 255},
    "UINT16": {"type": "integer", "minimum": 0, "maximum": 65535},
    "UINT32": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    "UINT64": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    "INT8": {"type": "integer", "minimum": -128, "maximum": 127},
    "INT16": {"type": "integer", "minimum": -32768, "maximum": 32767},
    "INT32": {"type": "integer", "minimum": -2**31, "maximum": 2**31 - 1},
    "INT64": {"type": "integer", "minimum": -2**63, "maximum": 2**63 - 1},
    "FP16": {"type": "number", "minimum": -65504, "maximum": 65504},
    "FP32": {"type": "number", "minimum": -3.4e38, "maximum": 3.4e38},
    "FP64": {"type": "number"},
    "BYTES": {"type": "string"},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def tensor_schema(dtype: str | None, shape: list[int] | None) -> dict[str, Any]:
    """Nested arrays matching a declared tensor (a -1 dimension: any size >= 1)."""
    element = dict(_ELEMENT.get(dtype or "FP64", {"type": "number"}))
    if shape is None:
        return {"type": "array", "items": {}, "minItems": 1,
                "description": "a tensor as nested JSON arrays"}
    schema = element
    for dim in reversed(shape):
        schema = {"type": "array", "items": schema, "minItems": 1 if dim < 0 else dim}
        if dim >= 0:
            schema["maxItems"] = dim
    return schema


def input_schema(entry: dict[str, Any], multipart: bool = False) -> dict[str, Any]:
    """The JSON schema of one declared input, as a JSON field or a multipart part."""
    type_ = entry.get("type", "json")
    if type_ in ("image", "file"):
        schema: dict[str, Any] = ({"type": "string", "format": "binary"} if multipart else
                                  {"type": "string", "format": "byte",
                                   "description": "base64 (a data: URL is accepted too)"})
    elif type_ == "text":
        schema = {"type": "string"}
    elif type_ == "number":
        schema = {"type": "number"}
    elif type_ == "tensor":
        schema = tensor_schema(entry.get("dtype"), entry.get("shape"))
    else:
        schema = {"description": "any JSON value"}
    if entry.get("description"):
        schema["description"] = entry["description"]
    if entry.get("example") is not None and not multipart:
        schema["example"] = entry["example"]
    return schema


def _modelarts_schema(schema: Any, multipart: bool) -> dict[str, Any] | None:
    """A ModelArts ``apis`` request/response schema as OpenAPI (its ``file`` type becomes
    a binary string)."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError:
            return None
    if not isinstance(schema, dict):
        return None

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: fix(v) for k, v in node.items()}
            if out.get("type") == "file":
                out = {"type": "string", "format": "binary" if multipart else "byte"}
            return out
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    return fix(schema)


def request_bodies(iface: dict[str, Any]) -> dict[str, Any]:
    """The native infer URL's request body: JSON always, multipart when it takes files."""
    inputs = iface.get("inputs", [])
    content: dict[str, Any] = {}
    raw = iface.get("request_schema")
    multipart = str(iface.get("content_type", "")).startswith("multipart")
    if raw is not None:
        schema = _modelarts_schema(raw, multipart)
        if schema is not None:
            content["multipart/form-data" if multipart else "application/json"] = {
                "schema": schema}
            return {"required": True, "content": content}
    required = [i["name"] for i in inputs if not i.get("optional")]
    body = {"type": "object", "additionalProperties": False,
            "properties": {i["name"]: input_schema(i) for i in inputs}}
    if required:
        body["required"] = required
    content["application/json"] = {"schema": body}
    if any(i.get("type") in ("image", "file") for i in inputs):
        form = {"type": "object", "additionalProperties": False,
                "properties": {i["name"]: input_schema(i, multipart=True) for i in inputs}}
        if required:
            form["required"] = required
        content["multipart/form-data"] = {"schema": form}
    return {"required": True, "content": content}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "bad request", 404: "not found", 409: "conflict", 413: "body too large",
            422: "invalid input: the error says what to send", 429: "busy, retry later",
            503: "not ready (Retry-After)", 504: "the model did not answer in time"}
    return {str(c): {"description": text[c], "content": {"application/json": {
        "schema": _ref("Error")}}} for c in codes}


def service_paths(svc: registry_pb2.Service) -> dict[str, Any]:
    """The operations of one deployed service, from its declared interface."""
    iface = json.loads(svc.interface_json or "{}")
    name = svc.name
    tag = f"service:{name}"
    ok_infer: dict[str, Any] = {"description": "the model's answer", "content": {
        "application/json": {"schema": _ref("InferResult")}}}
    if iface.get("response_schema") is not None:
        data = _modelarts_schema(iface["response_schema"], False)
        if data is not None:
            ok_infer["content"]["application/json"]["schema"] = {
                "allOf": [_ref("InferResult"), {"type": "object", "properties": {"data": data}}]}
    errors = _errors(404, 413, 422, 503, 504)
    return {
        f"/v1/services/{name}/infer": {"post": {
            "tags": [tag], "operationId": f"infer_{_ident(name)}",
            "summary": f"Call {name}" + (f" ({iface['kind']})" if iface.get("kind") else ""),
            "requestBody": request_bodies(iface),
            "responses": {"200": ok_infer, **errors}}},
        f"/v2/models/{name}": {"get": {
            "tags": [tag], "operationId": f"oip_metadata_{_ident(name)}",
            "summary": f"Open Inference Protocol metadata of {name}",
            "responses": {"200": {"description": "inputs and outputs as tensors", "content": {
                "application/json": {"schema": _ref("OipModelMetadata")}}},
                **_errors(404, 503)}}},
        f"/v2/models/{name}/ready": {"get": {
            "tags": [tag], "operationId": f"oip_ready_{_ident(name)}",
            "responses": {"200": {"description": "ready"}, **_errors(404, 503)}}},
        f"/v2/models/{name}/infer": {"post": {
            "tags": [tag], "operationId": f"oip_infer_{_ident(name)}",
            "summary": f"Open Inference Protocol v2 infer on {name}",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _oip_request(iface.get("inputs", []))}}},
            "responses": {"200": {"description": "output tensors", "content": {
                "application/json": {"schema": _ref("OipInferResponse")}}}, **errors}}},
        f"/v1/models/{name}:predict": {"post": {
            "tags": [tag], "operationId": f"kserve_v1_predict_{_ident(name)}",
            "summary": f"KServe v1 predict on {name}",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["instances"],
                "properties": {"instances": {"type": "array", "items": {}}}}}}},
            "responses": {"200": {"description": "one prediction per instance", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "predictions": {"type": "array", "items": {}}}}}}}, **errors}}},
    }


def _oip_request(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    names = [i["name"] for i in inputs]
    tensor = {"type": "object", "required": ["name", "datatype", "shape", "data"],
              "properties": {
                  "name": {"type": "string", **({"enum": names} if names else {})},
                  "datatype": {"type": "string", "enum": list(_ELEMENT)},
                  "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                  "parameters": {"type": "object"},
                  "data": {"type": "array", "items": {}}}}
    return {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"}, "parameters": {"type": "object"},
        "inputs": {"type": "array", "items": tensor},
        "outputs": {"type": "array", "items": {"type": "object", "required": ["name"],
                                               "properties": {"name": {"type": "string"},
                                                              "parameters": {"type": "object"}}}}}}


def _ident(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _name_param(name: str = "name", what: str = "service name") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": what,
            "schema": {"type": "string"}}


def _json_ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def management_paths() -> dict[str, Any]:
    """The management API (``rest/management.py``), for the CLI, SDK and console."""
    upload = {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "package": {"type": "string", "format": "binary",
                        "description": "the package as a zip"},
            "name": {"type": "string", "description": "service name (default: from config)"},
            "spec": {"type": "string", "description": "a ModelService document, JSON or YAML"},
        }}},
        "application/zip": {"schema": {"type": "string", "format": "binary"}}}}
    tags = ["management"]
    view = _ref("Service")
    return {
        "/api/v1/services": {
            "post": {"tags": tags, "operationId": "create_service",
                     "summary": "Upload a package and deploy it as a service",
                     "requestBody": upload,
                     "responses": {"201": _json_ok(view, "created"),
                                   **_errors(404, 409, 413, 422)}},
            "get": {"tags": tags, "operationId": "list_services",
                    "responses": {"200": _json_ok({"type": "object", "properties": {
                        "services": {"type": "array", "items": view}}})}}},
        "/api/v1/services/{name}": {
            "parameters": [_name_param()],
            "get": {"tags": tags, "operationId": "get_service",
                    "summary": "A service: URL, status, inputs and call examples",
                    "responses": {"200": _json_ok(view), **_errors(404)}},
            "put": {"tags": tags, "operationId": "apply_service",
                    "summary": "Create or update a service to match a spec (and package)",
                    "requestBody": upload,
                    "responses": {"200": _json_ok(view), "201": _json_ok(view, "created"),
                                  **_errors(404, 409, 413, 422)}},
            "delete": {"tags": tags, "operationId": "delete_service",
                       "responses": {"200": _json_ok({"type": "object", "properties": {
                           "deleted": {"type": "string"}}}), **_errors(404)}}},
        "/api/v1/services/{name}/package": {
            "parameters": [_name_param()],
            "put": {"tags": tags, "operationId": "update_service_package",
                    "summary": "A new version from a package, behind the same URL",
                    "requestBody": upload,
                    "responses": {"200": _json_ok(view), **_errors(404, 409, 413, 422)}}},
        "/api/v1/services/{name}/versions": {
            "parameters": [_name_param()],
            "get": {"tags": tags, "operationId": "list_service_versions",
                    "responses": {"200": _json_ok(_versions()), **_errors(404)}}},
        "/api/v1/services/{name}/events": {
            "parameters": [_name_param(), {"name": "limit", "in": "query", "required": False,
                                           "schema": {"type": "integer", "minimum": 1,
                                                      "maximum": 2**31 - 1}}],
            "get": {"tags": tags, "operationId": "list_service_events",
                    "responses": {"200": _json_ok({"type": "object", "properties": {
                        "events": {"type": "array", "items": {"type": "object"}}}}),
                        **_errors(404, 422)}}},
        "/api/v1/models/{model}/versions": {
            "parameters": [_name_param("model", "model name")],
            "get": {"tags": tags, "operationId": "list_model_versions",
                    "responses": {"200": _json_ok(_versions()), **_errors(404)}}},
        "/api/v1/models/{model}/versions/{number}/build-log": {
            "parameters": [_name_param("model", "model name"),
                           {"name": "number", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1,
                                       "maximum": 2**31 - 1}}],
            "get": {"tags": tags, "operationId": "get_build_log",
                    "responses": {"200": {"description": "the build log", "content": {
                        "text/plain": {"schema": {"type": "string"}}}}, **_errors(404)}}},
    }


def _versions() -> dict[str, Any]:
    return {"type": "object", "properties": {"versions": {"type": "array", "items": {
        "type": "object", "properties": {k: {"type": t} for k, t in (
            ("model", "string"), ("number", "integer"), ("digest", "string"),
            ("kind", "string"), ("state", "string"), ("error", "string"))}}}}}


def platform_paths() -> dict[str, Any]:
    ok = {"200": {"description": "OK", "content": {"application/json": {
        "schema": {"type": "object"}}}}}
    return {
        "/health": {"get": {"tags": ["platform"], "operationId": "health", "responses": ok}},
        "/v2": {"get": {"tags": ["oip"], "operationId": "oip_server_metadata",
                        "responses": ok}},
        "/v2/health/live": {"get": {"tags": ["oip"], "operationId": "oip_server_live",
                                    "responses": ok}},
        "/v2/health/ready": {"get": {"tags": ["oip"], "operationId": "oip_server_ready",
                                     "responses": {**ok, **_errors(503)}}},
    }


def components() -> dict[str, Any]:
    tensor = {"type": "object", "properties": {
        "name": {"type": "string"}, "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "parameters": {"type": "object"}, "data": {"type": "array", "items": {}}}}
    meta = {"type": "object", "properties": {"name": {"type": "string"},
                                             "datatype": {"type": "string"},
                                             "shape": {"type": "array",
                                                       "items": {"type": "integer"}}}}
    return {"schemas": {
        "Error": {"type": "object", "properties": {
            "result": {"type": "boolean"},
            "error": {"description": "an object {kind, code, message, fix, path?, problems?} "
                      "on modelport's URLs; a string on the OIP/KServe URLs"},
            "metadata": {"type": "object", "properties": {"request_id": {"type": "string"}}},
        }},
        "InferResult": {"type": "object", "required": ["result", "data", "metadata"],
                        "properties": {
                            "result": {"type": "boolean"},
                            "data": {"description": "what the model returned"},
                            "metadata": {"type": "object", "properties": {
                                "duration": {"type": "number"},
                                "worker_duration": {"type": "number"},
                                "request_id": {"type": "string"},
                                "version": {"type": "integer"},
                                "content_type": {"type": "string"}}}}},
        "Service": {"type": "object", "properties": {
            "name": {"type": "string"}, "url": {"type": "string"},
            "call": {"type": "string", "description": "a runnable Python call example"},
            "examples": {"type": "object", "additionalProperties": {"type": "string"}},
            "phase": {"type": "string"}, "message": {"type": "string"},
            "serving_version": {"type": "integer"}, "target_version": {"type": "integer"},
            "ready_replicas": {"type": "integer"}, "kind": {"type": "string"},
            "inputs": {"type": "array", "items": {"type": "object"}},
            "outputs": {"type": "array", "items": {"type": "object"}}}},
        "OipModelMetadata": {"type": "object", "properties": {
            "name": {"type": "string"}, "versions": {"type": "array",
                                                     "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": meta},
            "outputs": {"type": "array", "items": meta}}},
        "OipInferResponse": {"type": "object", "properties": {
            "model_name": {"type": "string"}, "model_version": {"type": "string"},
            "id": {"type": "string"}, "outputs": {"type": "array", "items": tensor}}},
    }}


def _openapi_path(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def _signature(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def other_paths(routes: Iterable[BaseRoute], described: dict[str, Any]) -> dict[str, Any]:
    """Routes served but not described above: listed (tag ``other``) with no body schema."""
    known = {_signature(p) for p in described}
    out: dict[str, Any] = {}
    for route in routes:
        if not isinstance(route, Route) or route.path == "/openapi.json":
            continue
        path = _openapi_path(route.path)
        if _signature(path) in known:
            continue
        ops = out.setdefault(path, {})
        params = [_name_param(p, p) for p in re.findall(r"\{(\w+)\}", path)]
        if params:
            ops["parameters"] = params
        for method in sorted((route.methods or set()) - {"HEAD"}):
            ops[method.lower()] = {"tags": ["other"], "summary": route.name,
                                   "responses": {"default": {"description": "see docs/api.md"}}}
    return out


def generic_paths() -> dict[str, Any]:
    """The per-service URLs with the service as a parameter (for services deployed after
    this document was read); each service's own entries carry its input schemas."""
    out: dict[str, Any] = {}
    for path, ops in service_paths(registry_pb2.Service(name="{name}")).items():
        (method, op), = ops.items()
        op = {**op, "tags": ["inference"],
              "operationId": op["operationId"].replace("__name_", ""),
              "summary": op.get("summary", "").replace("{name}", "a service by name")}
        if path == "/v1/services/{name}/infer":
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"type": "object", "description": "inputs keyed by name; see the "
                           "service's own entry"}}}}
        out[path] = {"parameters": [_name_param()], method: op}
    versioned = "/v2/models/{name}/versions/{version}"
    for suffix, op_path in (("", "/v2/models/{name}"), ("/ready", "/v2/models/{name}/ready"),
                            ("/infer", "/v2/models/{name}/infer")):
        (method, op), = ((k, v) for k, v in out[op_path].items() if k != "parameters")
        out[versioned + suffix] = {
            "parameters": [_name_param(), _name_param("version", "version number")],
            method: {**op, "operationId": op["operationId"] + "_version"}}
    out["/v1/models/{name}"] = {"parameters": [_name_param()], "get": {
        "tags": ["inference"], "operationId": "kserve_v1_model_ready",
        "responses": {"200": {"description": "ready"}, **_errors(404, 503)}}}
    return out


class OpenApi:
    def __init__(self, registry: registry_pb2_grpc.RegistryStub,
                 routes: Callable[[], Iterable[BaseRoute]]) -> None:
        self.registry = registry
        self.routes = routes

    async def document(self, base_url: str) -> dict[str, Any]:
        try:
            resp = await self.registry.ListServices(registry_pb2.ListServicesRequest(),
                                                    timeout=10)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, "registry") from None
        paths: dict[str, Any] = {**platform_paths(), **management_paths(), **generic_paths(),
                                 **openapi_routes.route_paths()}
        for svc in sorted(resp.services, key=lambda s: s.name):
            paths.update(service_paths(svc))
        paths.update(other_paths(self.routes(), paths))
        return {
            "openapi": "3.0.3",
            "info": {"title": "modelport", "version": __version__,
                     "description": "Deployed model services, the Open Inference Protocol v2, "
                     "KServe v1 predict and the management API."},
            "servers": [{"url": base_url}],
            "paths": paths,
            "components": {"schemas": {**components()["schemas"],
                                       **openapi_routes.route_schemas()}},
        }

    async def handle(self, request: Request) -> Response:
        doc = await self.document(str(request.base_url).rstrip("/"))
        return Response(orjson.dumps(doc), media_type="application/json")
