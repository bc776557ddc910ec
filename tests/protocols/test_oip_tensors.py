"""Tensor converters, in process: gateway (services/gateway/oip/tensors.py), the worker's
(modelport/worker/tensors.py) and the frames between them, each as a round trip."""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any

import numpy as np
import orjson
import pytest

from modelport.errors import Kind, ModelportError
from modelport.inference import grpc_predict_v2_pb2 as pb
from modelport.v1 import inference_pb2
from modelport.worker import protocol as p
from modelport.worker import tensors as wt
from modelport.worker.channel import SocketChannel
from modelport.worker.frames import decode_frame, frame_bytes
from modelport.worker.kinds import predictor
from modelport.worker.kinds.base import RequestContext, ShimError
from modelport.worker.tensors import Tensor
from modelport.worker.values import Value, decode_inputs, decode_result, to_tensor_result
from services.gateway.grpc.oip_service import request_tensors
from services.gateway.oip import tensors as tz
from services.gateway.rest.oip_routes import parse_request
from services.wire.predict_frames import to_output, to_values

NUMERIC = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
           "FP16", "FP32", "FP64"]


def sample(datatype: str, shape: tuple[int, ...] = (2, 3)) -> np.ndarray:
    n = int(np.prod(shape))
    if datatype == "BOOL":
        return (np.arange(n) % 2 == 0).reshape(shape)
    if datatype == "BYTES":
        return np.array([f"é{i}".encode() for i in range(n)], dtype=object).reshape(shape)
    values = np.arange(n) - (0 if datatype.startswith("UINT") else n // 2)
    if datatype.startswith("FP"):
        values = values * 0.5
    return values.astype(tz.DATATYPES[datatype]).reshape(shape)


# ---------------------------------------------------------------------- gateway: REST forms


@pytest.mark.parametrize("datatype", NUMERIC + ["BYTES"])
def test_json_data_and_raw_bytes_round_trip(datatype: str) -> None:
    array = sample(datatype)
    data = [x.decode() for x in array.reshape(-1)] if datatype == "BYTES" else array.tolist()
    from_json = tz.from_data("x", datatype, [2, 3], data)
    raw = bytes(from_json.to_raw())
    if datatype != "BYTES":
        assert raw == array.astype(tz.DATATYPES[datatype]).tobytes()  # little-endian layout
    back = tz.from_raw("x", datatype, [2, 3], raw).to_array()
    assert back.shape == (2, 3) and back.tolist() == array.tolist()
    # and back to the JSON a response carries: flat, BYTES as text
    flat = tz.json_data(tz.Tensor("x", datatype, [2, 3], raw=raw))
    expected = [x.decode() for x in array.reshape(-1)] if datatype == "BYTES" else (
        array.reshape(-1).tolist())
    assert orjson.loads(tz.dumps(flat)) == expected


def test_nested_and_flat_json_data_are_the_same_tensor() -> None:
    flat = tz.from_data("x", "INT32", [2, 2], [1, 2, 3, 4]).to_array()
    nested = tz.from_data("x", "INT32", [2, 2], [[1, 2], [3, 4]]).to_array()
    assert flat.tolist() == nested.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("datatype, shape, data, message", [
    ("FP32", [2, 2], [1, 2, 3], "3 elements; shape [2, 2] needs 4"),
    ("INT8", [1], [1000], "not INT8"),
    ("INT32", [1], [1.5], "non-integers"),
    ("FP32", [1], ["a"], "not FP32"),
    ("BYTES", [1], [1], "strings"),
    ("FP32", [2**62, 2**62], [], "0 elements; shape"),  # no int64 overflow to 0
])
def test_bad_json_data_is_invalid_and_names_the_tensor(datatype: str, shape: list[int],
                                                       data: Any, message: str) -> None:
    with pytest.raises(ModelportError) as err:
        tz.from_data("x", datatype, shape, data)
    assert err.value.kind is Kind.INVALID and "'x'" in err.value.message
    assert message in err.value.message


def test_raw_bytes_of_the_wrong_size_are_invalid() -> None:
    with pytest.raises(ModelportError, match="is 16 bytes, but 12 were sent"):
        tz.from_raw("x", "FP32", [2, 2], b"\0" * 12)
    with pytest.raises(ModelportError, match="BYTES element says 9 bytes"):
        tz.from_raw("s", "BYTES", [1], struct.pack("<I", 9) + b"abc")


def test_binary_extension_body_is_sliced_without_copies() -> None:
    x = np.arange(6, dtype=np.float32)
    head = orjson.dumps({"id": "r1", "inputs": [
        {"name": "x", "datatype": "FP32", "shape": [2, 3],
         "parameters": {"binary_data_size": x.nbytes}},
        {"name": "s", "datatype": "BYTES", "shape": [1], "data": ["hi"]},
        {"name": "b", "datatype": "BYTES", "shape": [1],
         "parameters": {"binary_data_size": {"int64_param": 7}}}]})
    body = head + x.tobytes() + struct.pack("<I", 3) + b"abc"
    doc, inputs = parse_request(body, str(len(head)))
    assert doc["id"] == "r1" and [t.name for t in inputs] == ["x", "s", "b"]
    assert isinstance(inputs[0].raw, memoryview)  # a view of the body, not a copy
    assert inputs[0].to_array().tolist() == [[0, 1, 2], [3, 4, 5]]
    assert inputs[2].elements() == [b"abc"]
    with pytest.raises(ModelportError, match="4 binary bytes follow"):
        parse_request(body + b"more", str(len(head)))
    with pytest.raises(ModelportError, match="Inference-Header-Content-Length"):
        parse_request(body, str(len(body) + 1))


# ---------------------------------------------------------------------- gateway: gRPC form


@pytest.mark.parametrize("datatype", [d for d in NUMERIC if d != "FP16"] + ["BYTES"])
def test_grpc_typed_contents_and_raw_contents_agree(datatype: str) -> None:
    array = sample(datatype)
    typed = pb.ModelInferRequest(inputs=[pb.ModelInferRequest.InferInputTensor(
        name="x", datatype=datatype, shape=[2, 3])])
    getattr(typed.inputs[0].contents, tz.CONTENTS_FIELD[datatype]).extend(
        array.reshape(-1).tolist())
    raw = pb.ModelInferRequest(inputs=[pb.ModelInferRequest.InferInputTensor(
        name="x", datatype=datatype, shape=[2, 3])],
        raw_input_contents=[bytes(tz.Tensor("x", datatype, [2, 3], array=array).to_raw())])
    a, b = request_tensors(typed)[0].to_array(), request_tensors(raw)[0].to_array()
    assert a.tolist() == b.tolist() == array.tolist()


def test_grpc_raw_contents_must_cover_every_input() -> None:
    req = pb.ModelInferRequest(inputs=[
        pb.ModelInferRequest.InferInputTensor(name="a", datatype="FP32", shape=[1]),
        pb.ModelInferRequest.InferInputTensor(name="b", datatype="FP32", shape=[1])],
        raw_input_contents=[b"\0" * 4])
    with pytest.raises(ModelportError, match="1 entries for 2 inputs"):
        request_tensors(req)


# ---------------------------------------------------------------------- gateway: mapping


def test_inputs_map_onto_declared_types() -> None:
    text = tz.from_data("t", "BYTES", [1], ["héllo"])
    assert tz.to_input_value(text, {"name": "t", "type": "text"}).text == "héllo"
    blob = tz.from_raw("f", "BYTES", [1], struct.pack("<I", 2) + b"\xff\x00")
    assert tz.to_input_value(blob, {"name": "f", "type": "file"}).data == b"\xff\x00"
    num = tz.from_data("n", "INT64", [1], [3])
    assert orjson.loads(tz.to_input_value(num, {"name": "n", "type": "number"}).json) == 3
    js = tz.from_data("j", "FP32", [1, 2], [0.5, 1.5])
    assert orjson.loads(tz.to_input_value(js, {"name": "j", "type": "json"}).json) == [
        [0.5, 1.5]]
    ten = tz.from_data("x", "FP32", [2], [1, 2])
    value = tz.to_input_value(ten, {"name": "x", "type": "tensor"})
    assert value.WhichOneof("value") == "tensor" and value.tensor.datatype == "FP32"
    assert list(value.tensor.shape) == [2] and value.tensor.raw == np.float32([1, 2]).tobytes()
    with pytest.raises(ModelportError, match="needs BYTES, not FP32"):
        tz.to_input_value(ten.__class__("t", "FP32", [1], array=np.float32([1])),
                          {"name": "t", "type": "text"})
    with pytest.raises(ModelportError, match="one number value, but the tensor has shape"):
        tz.to_input_value(tz.from_data("n", "FP64", [2], [1, 2]), {"name": "n",
                                                                  "type": "number"})


def _out(value: Any) -> inference_pb2.Output:
    return inference_pb2.Output(json=orjson.dumps(value))


def test_a_dict_result_gives_its_declared_outputs_only() -> None:
    declared = [{"name": "label", "type": "text"}, {"name": "score", "type": "json"}]
    outs = tz.output_tensors(_out({"score": [0.5, 0.25], "label": "cat", "x": 1}), declared)
    assert [(t.name, t.datatype, t.shape) for t in outs] == [
        ("label", "BYTES", [1]), ("score", "FP64", [2])]
    assert outs[0].elements() == [b"cat"]


def test_records_become_one_tensor_per_key_with_a_row_per_item() -> None:
    outs = tz.output_tensors(_out([{"label": "a", "p": 0.1}, {"label": "b", "p": 0.9}]), [])
    assert {t.name: (t.datatype, t.elements()) for t in outs} == {
        "label": ("BYTES", [b"a", b"b"]), "p": ("FP64", [0.1, 0.9])}


def test_other_values_are_one_output_named_after_the_first_declared() -> None:
    (t,) = tz.output_tensors(_out([[1, 2], [3, 4]]), [{"name": "y", "type": "tensor"}])
    assert (t.name, t.datatype, t.shape) == ("y", "INT64", [2, 2])
    (t,) = tz.output_tensors(inference_pb2.Output(data=b"\x00\x01"), [])
    assert (t.name, t.datatype, t.elements()) == ("output0", "BYTES", [b"\x00\x01"])
    (t,) = tz.output_tensors(_out([0.5, None]), [])  # NaN arrives as null
    assert t.datatype == "FP64" and np.isnan(t.elements()[1])
    (t,) = tz.output_tensors(_out([[1, 2], [3]]), [])  # ragged: one JSON text per row
    assert t.datatype == "BYTES" and t.elements() == [b"[1,2]", b"[3]"]
    (t,) = tz.output_tensors(_out({"nested": {"a": [1, "x"]}}), [])
    assert t.datatype == "BYTES" and orjson.loads(t.elements()[0]) == {"a": [1, "x"]}


def test_json_bytes_that_are_not_text_go_out_as_base64() -> None:
    t = tz.Tensor("b", "BYTES", [2], array=np.array([b"ok", b"\xff"], dtype=object))
    assert tz.json_data(t) == ["ok", "/w=="]


# ---------------------------------------------------------------------- the worker's side


@pytest.mark.parametrize("datatype", NUMERIC + ["BYTES"])
def test_worker_reads_gateway_bytes_as_the_same_array(datatype: str) -> None:
    array = sample(datatype)
    raw = bytes(tz.Tensor("x", datatype, [2, 3], array=array).to_raw())
    t = Tensor(datatype, (2, 3), bytearray(raw))
    assert wt.to_array(t).tolist() == array.tolist()
    as_lists = wt.to_list(t)  # stdlib path, for environments without numpy
    expected = array.tolist() if datatype != "BYTES" else [
        [x.decode() for x in row] for row in array]
    assert as_lists == expected


def test_worker_arrays_over_received_parts_are_writable_views() -> None:
    a, b = socket.socketpair()
    with a, b:
        x = np.arange(4, dtype=np.float32)
        header, parts = p.predict("r1", {"x": Value.of_tensor("FP32", [2, 2], x.tobytes())},
                                  tensor_outputs=True)
        sender = threading.Thread(target=SocketChannel(a).send, args=(header, parts))
        sender.start()
        frame = SocketChannel(b).recv()
        sender.join()
    assert frame is not None and frame.header["tensor_outputs"] is True
    value = decode_inputs(frame.header["inputs"], frame.parts)["x"]
    array = wt.to_array(value.payload)
    assert array.base is not None and array.flags.writeable
    array += 1
    assert array.tolist() == [[1, 2], [3, 4]]


def test_tensor_results_round_trip_through_a_frame() -> None:
    result = to_tensor_result({"y": np.float32([[1, 2]]), "label": "ok",
                                  "n": np.int64(3)}, None)
    assert result is not None and result.kind == "tensors"
    header, parts = p.output("r1", result, 1.5)
    frame = decode_frame(frame_bytes(header, parts))
    back = decode_result(frame.header["result"], frame.parts)
    y, label, n = back.tensors
    assert (y.name, y.datatype, list(y.shape), bytes(y.data)) == (
        "y", "FP32", [1, 2], np.float32([[1, 2]]).tobytes())
    assert (label.name, label.datatype, bytes(label.data)) == ("label", None, b'"ok"')
    assert (n.datatype, list(n.shape)) == ("INT64", [])
    # the runtime's proto, then the gateway's named tensors
    outs = tz.output_tensors(to_output(back), [])
    assert [(t.name, t.datatype, t.shape) for t in outs] == [
        ("y", "FP32", [1, 2]), ("label", "BYTES", [1]), ("n", "INT64", [1])]
    assert outs[0].to_array().tolist() == [[1, 2]]


def test_plain_results_stay_json_when_nothing_is_an_array() -> None:
    assert to_tensor_result({"a": 1}, None) is None
    lone = to_tensor_result(np.arange(3, dtype=np.int16), None)
    assert lone is not None and lone.tensors[0].datatype == "INT16"


def spec(**raw: Any) -> predictor.InputSpec:
    return predictor.InputSpec(0, {"name": "x", **raw})


def test_predictor_converts_tensor_values_by_declared_type() -> None:
    fp64 = Value.of_tensor("FP64", [2], np.float64([1, 2]).tobytes())
    out = predictor.convert(spec(type="tensor", dtype="FP32", shape=[-1]), fp64)
    assert out.dtype == np.float32 and out.tolist() == [1, 2]
    with pytest.raises(ShimError, match="cannot be cast"):
        predictor.convert(spec(type="tensor", dtype="INT32"), fp64)
    with pytest.raises(ShimError, match=r"has shape \[2\], but config.json declares"):
        predictor.convert(spec(type="tensor", shape=[-1, 2]), fp64)
    assert predictor.convert(spec(type="json"), fp64) == [1.0, 2.0]
    one = Value.of_tensor("INT32", [1], np.int32([7]).tobytes())
    assert predictor.convert(spec(type="number"), one) == 7
    word = Value.of_tensor("BYTES", [1], wt.join_bytes(["héllo"]))
    assert predictor.convert(spec(type="text"), word) == "héllo"
    assert predictor.convert(spec(type="file"), word) == "héllo".encode()
    with pytest.raises(ShimError, match="needs a BYTES tensor"):
        predictor.convert(spec(type="image"), one)


def test_gateway_to_worker_round_trip_keeps_the_bytes() -> None:
    x = np.random.default_rng(0).random((4, 8), dtype=np.float32)
    value = tz.to_input_value(tz.from_raw("x", "FP32", [4, 8], memoryview(x.tobytes())),
                              {"name": "x", "type": "tensor"})
    req = inference_pb2.PredictRequest(inputs=[value])
    wire = inference_pb2.PredictRequest.FromString(req.SerializeToString())
    header, parts = p.predict("r", to_values(list(wire.inputs)))
    frame = decode_frame(frame_bytes(header, parts))
    got = wt.to_array(decode_inputs(frame.header["inputs"], frame.parts)["x"].payload)
    assert got.dtype == np.float32 and np.array_equal(got, x)


def test_tensor_outputs_flag_reaches_the_predictor() -> None:
    adapter = predictor.Adapter("/nonexistent", {"predictor": "m:C"})
    adapter.predict_fn = lambda: {"y": np.ones(2, dtype=np.float32)}
    ctx = RequestContext("r")
    assert adapter.predict({}, ctx).kind == "json"
    ctx.tensor_outputs = True
    assert adapter.predict({}, ctx).kind == "tensors"
