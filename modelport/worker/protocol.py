"""The wire between the runtime and a worker: framed JSON headers plus raw binary parts.

A frame is::

    uint32 big-endian  header length
    header             UTF-8 JSON object: {"kind": ..., ..., "parts": [len0, len1, ...]}
    part 0 .. part N   raw bytes, lengths as listed in header["parts"]

Binary never travels as base64, and a JSON result travels as the raw bytes the worker
encoded once, so the runtime can hand them on without decoding.

Message kinds, by direction (every header has "kind"; requests carry "id"):

runtime -> worker
    setup      {config?}               load the package, then answer ready | setup_failed
    predict    {id, inputs, timeout_s?, window?, tensor_outputs?}
    predict_batch {items: [{id, inputs, timeout_s?, tensor_outputs?}, ...], timeout_s?,
               tensor_outputs?}   several requests, one call of the model (see Batches)
    credit     {id, n}                 the runtime took n more chunks of a windowed stream
    cancel     {id}
    health     {id}                    answered at once, even while a predict runs
    shutdown   {}                      finish the running request, then exit 0

worker -> runtime
    hello        {protocol, pid, python, implementation}   first frame after connect
    ready        {package_kind, streaming}
    setup_failed {error}
    log          {level, message, id?}
    output       {id, result, duration_ms, final?, timings?}  the one result of a request
    chunk        {id, result}                              one item of a streamed result
    done         {id, error?, duration_ms, timings?}       always the last frame of a request
                 (an ``output`` with ``final: true`` is also the request's ``done``: one frame,
                 one parse, for the common unary answer)
    health       {id, state, busy, queued}

Inputs: ``{name: {"text": str} | {"json": value} | {"part": i} | {"json_part": i}}``
(``part``: bytes; ``json_part``: raw UTF-8 JSON bytes the runtime did not decode); a
``part`` may also carry ``"filename"`` (a multipart upload's file name).

Flow control: a predict with ``window: W`` may have at most W chunks sent and not yet
credited; the worker (and so the model's generator) waits for ``credit`` beyond that,
so a slow client holds the model back instead of filling the runtime's memory.
Tensors (Open Inference Protocol): an input ``{"tensor": {"datatype", "shape", "part": i}}``
(part i: the raw little-endian bytes); a predict with ``tensor_outputs: true`` may be
answered with ``{"tensors": [{"name", "datatype", "shape", "part": i} | {"name",
"json_part": i}]}`` (a dict of numpy arrays; non-array values travel as JSON).
Timings (``done``, always last): ``{"t0": unix seconds the predict arrived, "phases":
[[name, offset ms, duration ms], ...]}`` with ``queue`` (waiting in the worker), then
what the kind adapter measured (``preprocess``, ``predict``, ``postprocess``; ``stream``
for a streamed result); the runtime turns them into trace spans and metrics.
Results: ``{"json": i}`` (part i holds raw UTF-8 JSON) or ``{"bytes": i}``.
Batches (adaptive batching, ``services/runtime/dataplane/batching.py``): a ``predict_batch`` frame
carries several requests whose inputs index into the frame's one list of parts; an item's
``timeout_s``/``tensor_outputs`` override the frame's. The worker runs them as one call
of the model's ``predict_batch`` and answers every item on its own, exactly like a
``predict`` with that id (``output`` then ``done``, or ``done`` with an error), so one
item may fail while the others succeed; ``cancel`` names one item. Each item's timings
carry ``"batch": n``, the number of requests the model was called with. A worker that
predates this kind logs it as unknown and answers nothing: the runtime only batches
models whose config.json declares ``batching``, with the shim it installed itself.
Errors: ``{"type", "message", "traceback", "code"?}``; ``code`` is set only for
failures the shim itself detects (see ``ErrorCode``), never for user exceptions.

Stdlib only, Python >= 3.8: this module is copied into the user's environment.
"""

from __future__ import annotations

from typing import Any

from .values import Result, Value, encode_inputs, encode_result

PROTOCOL_VERSION = 1

# runtime -> worker
SETUP = "setup"
PREDICT = "predict"
PREDICT_BATCH = "predict_batch"
CREDIT = "credit"
CANCEL = "cancel"
HEALTH = "health"
SHUTDOWN = "shutdown"
# worker -> runtime
HELLO = "hello"
READY = "ready"
SETUP_FAILED = "setup_failed"
LOG = "log"
OUTPUT = "output"
CHUNK = "chunk"
DONE = "done"
# HEALTH is also the reply's kind

TO_WORKER = (SETUP, PREDICT, PREDICT_BATCH, CREDIT, CANCEL, HEALTH, SHUTDOWN)
TO_RUNTIME = (HELLO, READY, SETUP_FAILED, LOG, OUTPUT, CHUNK, DONE, HEALTH)


class ErrorCode:
    """Codes the shim puts on errors it detects itself (user exceptions carry none)."""

    INVALID_INPUT = "input.invalid"
    TIMEOUT = "request.timeout"
    CANCELLED = "request.cancelled"
    SHUTTING_DOWN = "worker.shutting_down"
    OUTPUT_INVALID = "output.invalid"
    OUTPUT_TOO_LARGE = "output.too_large"
    ENTRYPOINT_FAILED = "entrypoint.failed"
    DUPLICATE_ID = "request.duplicate_id"
    NOT_READY = "worker.not_ready"
    #: predict_batch did not return one result per input (a list of the right length)
    BATCH_INVALID = "output.batch_invalid"


# ---------------------------------------------------------------------------- message builders
# Each returns (header, parts), ready for SocketChannel.send / write_frame.


def hello(pid: int, python: str, implementation: str) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": HELLO, "protocol": PROTOCOL_VERSION, "pid": pid, "python": python,
            "implementation": implementation}, []


def setup(config: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[bytes]]:
    header: dict[str, Any] = {"kind": SETUP}
    if config is not None:
        header["config"] = config
    return header, []


def ready(package_kind: str, streaming: bool = False) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": READY, "package_kind": package_kind, "streaming": streaming}, []


def setup_failed(error: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": SETUP_FAILED, "error": error}, []


def predict(request_id: str, inputs: dict[str, Value], timeout_s: float | None = None,
            window: int | None = None,
            tensor_outputs: bool = False) -> tuple[dict[str, Any], list[bytes]]:
    parts: list[bytes] = []
    return predict_header(request_id, encode_inputs(inputs, parts), timeout_s, window,
                          tensor_outputs), parts


def predict_header(request_id: str, inputs: Any, timeout_s: float | None = None,
                   window: int | None = None, tensor_outputs: bool = False
                   ) -> dict[str, Any]:
    """A predict's header around inputs already in the header form (``encode_inputs``):
    what the runtime sends for a request relayed from the gateway as it came."""
    header: dict[str, Any] = {"kind": PREDICT, "id": request_id, "inputs": inputs}
    if timeout_s is not None:
        header["timeout_s"] = timeout_s
    if tensor_outputs:
        header["tensor_outputs"] = True
    if window is not None:
        header["window"] = window
    return header


def predict_batch(items: Any, timeout_s: float | None = None,
                  tensor_outputs: bool = False) -> tuple[dict[str, Any], list[bytes]]:
    """Several requests in one frame (``items``: BatchItems); their binary inputs share
    the frame's parts. Frame-level ``timeout_s``/``tensor_outputs`` are defaults that an
    item's own values override (only differing values are written per item)."""
    parts: list[bytes] = []
    encoded = []
    for item in items:
        entry: dict[str, Any] = {"id": item.id, "inputs": encode_inputs(item.inputs, parts)}
        if item.timeout_s is not None and item.timeout_s != timeout_s:
            entry["timeout_s"] = item.timeout_s
        if bool(item.tensor_outputs) != bool(tensor_outputs):
            entry["tensor_outputs"] = bool(item.tensor_outputs)
        encoded.append(entry)
    header: dict[str, Any] = {"kind": PREDICT_BATCH, "items": encoded}
    if timeout_s is not None:
        header["timeout_s"] = timeout_s
    if tensor_outputs:
        header["tensor_outputs"] = True
    return header, parts


def credit(request_id: str, n: int) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": CREDIT, "id": request_id, "n": n}, []


def cancel(request_id: str) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": CANCEL, "id": request_id}, []


def health(probe_id: str) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": HEALTH, "id": probe_id}, []


def health_reply(probe_id: str, state: str, busy: str | None,
                 queued: int) -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": HEALTH, "id": probe_id, "state": state, "busy": busy, "queued": queued}, []


def shutdown() -> tuple[dict[str, Any], list[bytes]]:
    return {"kind": SHUTDOWN}, []


def log(level: str, message: str,
        request_id: str | None = None) -> tuple[dict[str, Any], list[bytes]]:
    header: dict[str, Any] = {"kind": LOG, "level": level, "message": message}
    if request_id is not None:
        header["id"] = request_id
    return header, []


def output(request_id: str, result: Result, duration_ms: float | None = None,
           final: bool = False, timings: dict[str, Any] | None = None
           ) -> tuple[dict[str, Any], list[bytes]]:
    """The result; ``final``: also the request's ``done`` (with ``timings``), so no
    ``done`` frame follows."""
    parts: list[bytes] = []
    header: dict[str, Any] = {"kind": OUTPUT, "id": request_id,
                              "result": encode_result(result, parts)}
    if duration_ms is not None:
        header["duration_ms"] = duration_ms
    if final:
        header.update(final=True, **({} if timings is None else {"timings": timings}))
    return header, parts


def chunk(request_id: str, result: Result) -> tuple[dict[str, Any], list[bytes]]:
    parts: list[bytes] = []
    return {"kind": CHUNK, "id": request_id, "result": encode_result(result, parts)}, parts


def done(request_id: str, error: dict[str, Any] | None = None,
         duration_ms: float | None = None,
         timings: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[bytes]]:
    header: dict[str, Any] = {"kind": DONE, "id": request_id}
    if error is not None:
        header["error"] = error
    if duration_ms is not None:
        header["duration_ms"] = duration_ms
    if timings is not None:
        header["timings"] = timings
    return header, []


def error_dict(type_name: str, message: str, traceback: str = "",
               code: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"type": type_name, "message": message, "traceback": traceback}
    if code is not None:
        err["code"] = code
    return err
