"""KServe v1 (TensorFlow-Serving style) REST: ``POST /v1/models/{name}:predict`` with
``{"instances": [...]}`` -> ``{"predictions": [...]}``, and ``GET /v1/models/{name}``
-> ``{"name", "ready"}``.

How instances reach a service:

- one declared input of type ``json`` or ``tensor``: one call with the whole list as that
  input (a batch, as a KServe v1 model gets it). The predictions are the result when it
  is a list, else the result's first declared output when that is a list, else
  ``[result]``;
- otherwise one call per instance, run concurrently: an instance is an object keyed by
  input name, or the bare value when the service has one input.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport.errors import ModelportError, invalid, too_large
from services.gateway.dataplane import DataPlane, InferenceRequest
from services.gateway.dataplane import Route as DataRoute
from services.gateway.oip.models import OipModels
from services.gateway.rest.infer import _read_limited, _value
from services.gateway.rest.oip_routes import error_response

#: most per-instance calls one request runs at once
CONCURRENCY = 8


def _batched(route: DataRoute) -> bool:
    return len(route.inputs) == 1 and route.inputs[0]["type"] in ("json", "tensor")


class KServeV1Api:
    def __init__(self, dataplane: DataPlane, models: OipModels, max_body: int) -> None:
        self.dataplane = dataplane
        self.models = models
        self.max_body = max_body

    async def _call(self, route: DataRoute, fields: dict[str, Any]) -> Any:
        types = {i["name"]: i["type"] for i in route.inputs}
        values = [_value(k, types.get(k, "json"), v, "json") for k, v in fields.items()]
        res = await self.dataplane.infer(InferenceRequest(route.service, uuid.uuid4().hex,
                                                          values), route)
        if res.output.HasField("json"):
            return orjson.loads(res.output.json)
        return {"b64": base64.b64encode(res.output.data).decode()}

    async def predict(self, request: Request) -> Response:
        name = request.path_params["name"]
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        try:
            declared = int(request.headers.get("content-length") or 0)
            if declared > self.max_body:
                raise too_large("request.too_large", f"request body is {declared} bytes; the "
                                f"limit is {self.max_body}", "send fewer instances")
            body = await _read_limited(request, self.max_body)
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise invalid("kserve.invalid_json", f"request body is not valid JSON: {exc}",
                              "send {\"instances\": [...]}") from None
            instances = doc.get("instances") if isinstance(doc, dict) else None
            if not isinstance(instances, list):
                raise invalid("kserve.no_instances", "the body has no \"instances\" list",
                              "send {\"instances\": [instance, ...]}")
            route = await self.dataplane.route(name)
            predictions = await self._predictions(route, instances)
        except ModelportError as err:
            return error_response(err, rid)
        return Response(orjson.dumps({"predictions": predictions}),
                        headers={"X-Request-ID": rid}, media_type="application/json")

    async def _predictions(self, route: DataRoute, instances: list[Any]) -> list[Any]:
        names = [i["name"] for i in route.inputs]
        if _batched(route):
            result = await self._call(route, {names[0]: instances})
            if isinstance(result, list):
                return result
            outputs = route.interface.get("outputs", [])
            if isinstance(result, dict) and outputs and isinstance(
                    result.get(outputs[0]["name"]), list):
                return result[outputs[0]["name"]]
            return [result]
        calls = []
        for i, inst in enumerate(instances):
            if len(names) == 1 and not (isinstance(inst, dict) and set(inst) == set(names)):
                calls.append({names[0]: inst})
            elif isinstance(inst, dict):
                calls.append(inst)
            else:
                raise invalid("kserve.instance", f"instances[{i}] must be an object keyed by "
                              "input name", "send {" + ", ".join(f'"{n}": ...' for n in names)
                              + "} per instance", details={"expected": route.inputs})
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(fields: dict[str, Any]) -> Any:
            async with limit:
                return await self._call(route, fields)

        return list(await asyncio.gather(*(one(c) for c in calls)))

    async def model_ready(self, request: Request) -> Response:
        name = request.path_params["name"]
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        try:
            ok = await self.models.model_ready(name, "")
        except ModelportError as err:
            return error_response(err, rid)
        return Response(orjson.dumps({"name": name, "ready": ok}),
                        status_code=200 if ok else 503, media_type="application/json")

    def routes(self) -> list[Route]:
        return [Route("/v1/models/{name}:predict", self.predict, methods=["POST"]),
                Route("/v1/models/{name}", self.model_ready, methods=["GET"])]
