"""`POST /v1/infers/{name}`: ModelArts' own URL shape, for clients written against it.

The answer is the package's response body as ModelArts returns it (what `_postprocess`,
`predict` or the file contract's output produced), with no modelport envelope; errors use
the Huawei Cloud shape `{"error_code", "error_msg"}` those clients parse. A finer path
after the name (a ModelArts `apis` url such as `/predictions/poetry`) reaches the same
model. `/v1/services/{name}/infer` keeps the envelope. A custom image's service gets the
request at its own path, as ModelArts sends it: `/v1/infers/{name}` -> `/`,
`/v1/infers/{name}/predictions/poetry` -> `/predictions/poetry` (rest/forward.py).
"""

from __future__ import annotations

import orjson
from starlette.responses import Response
from starlette.routing import Route

from modelport.errors import Kind, ModelportError
from services.gateway.dataplane import InferenceResult
from services.gateway.rest.errors import error_response
from services.gateway.rest.infer import InferEndpoint


def raw_body(res: InferenceResult, accept: str | None) -> tuple[bytes, str]:
    """The model's JSON as it wrote it, or its bytes as they are."""
    if res.output.HasField("json"):
        return res.output.json, "application/json"
    return res.output.data, "application/octet-stream"


def modelarts_error(err: ModelportError, request_id: str) -> Response:
    """The status and headers of modelport's error answer, the body in ModelArts' shape;
    the message carries the fix, since these clients read only `error_msg`."""
    plain = error_response(err, request_id)
    message = err.message if err.kind is not Kind.INTERNAL else (
        f"internal error; quote request id {request_id}")
    if err.fix and err.kind is not Kind.INTERNAL:
        message = f"{message} ({err.fix})"
    body = orjson.dumps({"error_code": err.code, "error_msg": message})
    headers = {k: v for k, v in plain.headers.items() if k.lower() not in (
        "content-length", "content-type")}
    return Response(body, status_code=plain.status_code, headers=headers,
                    media_type="application/json")


def routes(endpoint: InferEndpoint) -> list[Route]:
    raw = InferEndpoint(endpoint.dataplane, endpoint.max_body, endpoint.tasks,
                        answer=raw_body, fail=modelarts_error, forward=endpoint.forward)
    return [Route("/v1/infers/{name}", raw.handle, methods=["POST"]),
            Route("/v1/infers/{name}/{path:path}", raw.handle, methods=["POST"])]
