"""Unary predictions between gateway and runtime as frames on a unix socket, not gRPC.

A unary grpc.aio call costs about 0.6 ms and ~0.5 ms of CPU on each side here, more than
everything else a request does; the data plane's hot path therefore speaks the worker
protocol's framing (``modelport/worker/protocol.py``: a JSON header plus raw binary
parts) over one long-lived unix socket per runtime, multiplexed by request id. gRPC
stays for everything else (streams, control calls, runtimes on other hosts).

The runtime listens on ``data_socket_path(its gRPC address)``; messages:

gateway -> runtime
    predict  {id, service, version, inputs, timeout_s?, tensor_outputs?, trace?}
             (``inputs`` exactly as the worker protocol encodes them, so JSON and binary
             inputs cross both hops as the bytes the gateway received)
    cancel   {id}                  the caller went away: stop the request
runtime -> gateway
    answer   {id, result, version, replica_id, duration_ms, worker_ms?}
    failed   {id, error}           ``error`` is ModelportError.to_dict()
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelport.errors import ModelportError
from modelport.v1 import inference_pb2
from modelport.worker import protocol as p
from modelport.worker.frames import encode_frame
from modelport.worker.values import Result, Value, decode_inputs, encode_result

PREDICT = "predict"
CANCEL = "cancel"
ANSWER = "answer"
FAILED = "failed"

#: appended to the runtime's unix socket path for its data socket
SUFFIX = ".data"


def data_socket_path(address: str) -> Path | None:
    """The data socket of a runtime at gRPC ``address``; None for TCP (other hosts)."""
    if address.startswith("unix://"):
        return Path(address[len("unix://"):] + SUFFIX)
    if address.startswith("unix:"):
        return Path(address[len("unix:"):] + SUFFIX)
    return None


def to_values(inputs: Iterable[inference_pb2.InputValue]) -> dict[str, Value]:
    """Wire inputs as worker Values; JSON and binary payloads are not copied or decoded."""
    out: dict[str, Value] = {}
    for i in inputs:
        which = i.WhichOneof("value")
        if which == "text":
            out[i.name] = Value.of_text(i.text)
        elif which == "data":
            out[i.name] = Value("bytes", i.data, i.filename or None)
        elif which == "tensor":
            out[i.name] = Value.of_tensor(i.tensor.datatype, i.tensor.shape, i.tensor.raw)
        else:
            out[i.name] = Value.of_raw_json(i.json or b"null")
    return out


def to_output(result: Result) -> inference_pb2.Output:
    """A worker Result as the inference API's Output message."""
    if result.kind == "json":
        return inference_pb2.Output(json=bytes(result.data))
    if result.kind == "tensors":
        out = inference_pb2.Output()  # built in place: nested constructors re-encode (upb)
        for t in result.tensors:
            if t.datatype is None:
                out.tensors.tensors.add(name=t.name, json=bytes(t.data))
            else:
                out.tensors.tensors.add(name=t.name, datatype=t.datatype, shape=t.shape,
                                        raw=bytes(t.data))
        return out
    return inference_pb2.Output(data=bytes(result.data))


def predict(request_id: str, service: str, version: int, inputs: dict[str, Value],
            timeout_s: float | None, tensor_outputs: bool = False,
            trace: dict[str, str] | None = None) -> list[bytes]:
    header, parts = p.predict(request_id, inputs, timeout_s, None, tensor_outputs)
    header["service"] = service
    header["version"] = version
    if trace:
        header["trace"] = trace
    return encode_frame(header, parts)


def cancel(request_id: str) -> list[bytes]:
    return encode_frame({"kind": CANCEL, "id": request_id})


def answer(request_id: str, result: Result, version: int, replica_id: str,
           duration_ms: float) -> list[bytes]:
    parts: list[bytes] = []
    header: dict[str, Any] = {"kind": ANSWER, "id": request_id,
                              "result": encode_result(result, parts), "version": version,
                              "replica_id": replica_id, "duration_ms": duration_ms}
    return encode_frame(header, parts)


def relayed(request_id: str, result: dict[str, Any], parts: list[Any], version: int,
            replica_id: str, duration_ms: float) -> list[bytes]:
    """``answer`` for a worker's result handed on as it came (the worker's ``result``
    header and its parts, neither decoded nor copied: their indexes stay valid)."""
    return encode_frame({"kind": ANSWER, "id": request_id, "result": result,
                           "version": version, "replica_id": replica_id,
                           "duration_ms": duration_ms}, parts)


def check_inputs(inputs: Any, parts: list[Any]) -> None:
    """Raise ProtocolError where ``protocol.decode_inputs`` would, without building
    Values for the usual encodings (the runtime relays ``inputs`` to the worker as is)."""
    if type(inputs) is dict:
        n = len(parts)
        for spec in inputs.values():
            if type(spec) is not dict or len(spec) != 1:
                break
            ((tag, val),) = spec.items()
            if tag == "json_part" or tag == "part":
                if type(val) is int and 0 <= val < n:
                    continue
                break
            if tag == "json" or (tag == "text" and type(val) is str):
                continue
            break
        else:
            return
    decode_inputs(inputs, parts)  # the full check says what is wrong (or accepts it)


def failed(request_id: str, error: ModelportError) -> list[bytes]:
    return encode_frame({"kind": FAILED, "id": request_id, "error": error.to_dict()})
