"""The wire: one golden file per frame kind, round trips, size limits, sync and async I/O."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import struct
import threading
from pathlib import Path

import pytest

from modelport.worker import frames as frames_module
from modelport.worker import protocol as p
from modelport.worker.channel import SocketChannel, read_frame, write_frame
from modelport.worker.frames import (
    MAX_HEADER_BYTES,
    MAX_PART_BYTES,
    FrameTooLarge,
    ProtocolError,
    decode_frame,
    encode_frame,
    frame_bytes,
    parse_header,
)
from modelport.worker.json_codec import dumps_json
from modelport.worker.tensors import Tensor
from modelport.worker.values import BatchItem, Result, Value, decode_inputs, decode_result

GOLDEN = Path(__file__).parent / "golden"
#: set MODELPORT_UPDATE_GOLDEN=1 to rewrite the golden files after a deliberate change
UPDATE = os.environ.get("MODELPORT_UPDATE_GOLDEN") == "1"

FRAMES = {
    # runtime -> worker
    "setup": p.setup(),
    "setup_with_config": p.setup({"name": "echo", "predictor": "predict:Echo"}),
    "predict": p.predict("req-1", {
        "text": Value.of_text("héllo"),
        "image": Value.of_bytes(b"\x89PNG\r\n\x1a\n\x00"),
        "payload": Value.of_json({"a": [1, 2.5, None], "b": True}),
        "raw": Value.of_raw_json(b'{"x":1}'),
    }, timeout_s=30.0),
    "cancel": p.cancel("req-1"),
    "credit": p.credit("req-1", 8),
    "predict_windowed": p.predict("req-1", {"text": Value.of_text("hi")}, window=16),
    "predict_tensor": p.predict("req-1", {"x": Value.of_tensor(
        "FP32", [1, 2], b"\x00\x00\x80\x3f\x00\x00\x00\x40")}, tensor_outputs=True),
    "predict_batch": p.predict_batch([
        BatchItem("req-1", {"x": Value.of_json(1)}),
        BatchItem("req-2", {"x": Value.of_raw_json(b"2"), "image": Value.of_bytes(b"\x00\x01")},
                    timeout_s=5.0),
        BatchItem("req-3", {"text": Value.of_text("hi")}, timeout_s=30.0, tensor_outputs=True),
    ], timeout_s=30.0),
    "health": p.health("h1"),
    "shutdown": p.shutdown(),
    # worker -> runtime
    "hello": p.hello(1234, "3.8.18", "CPython"),
    "ready": p.ready("predictor", streaming=True),
    "setup_failed": p.setup_failed(p.error_dict(
        "ValueError", "weights missing", "Traceback (most recent call last):\n...\n")),
    "log": p.log("info", "predictor package ready in 0.12s", "req-1"),
    "output_json": p.output("req-1", Result.of_json({"label": "positive", "score": 0.5}), 12.5),
    "output_bytes": p.output("req-1", Result.of_bytes(b"\x00\x01\x02\xff")),
    "output_tensors": p.output("req-1", Result.of_tensors([
        Tensor("INT8", (2,), b"\x01\xff", "y"), Tensor(None, (), b'"ok"', "label")])),
    "chunk": p.chunk("req-1", Result.of_json({"token": "hi"})),
    "done": p.done("req-1", duration_ms=3.25),
    "done_timings": p.done("req-1", duration_ms=3.25, timings={
        "t0": 1767225600.125, "phases": [["queue", 0.0, 0.05], ["preprocess", 0.05, 0.2],
                                         ["predict", 0.25, 2.5], ["postprocess", 2.75, 0.5]]}),
    "done_error": p.done("req-1", p.error_dict("ValueError", "bad input: 3",
                                               "Traceback ...\n")),
    "done_shim_error": p.done("req-1", p.error_dict("InvalidInput", "missing input 'text'", "",
                                                    p.ErrorCode.INVALID_INPUT)),
    "health_reply": p.health_reply("h1", "ready", "req-1", 2),
}


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_frame_matches_golden_file(name: str) -> None:
    data = frame_bytes(*FRAMES[name])
    path = GOLDEN / f"{name}.bin"
    if UPDATE:
        path.write_bytes(data)
    assert path.exists(), f"no golden file {path.name}: run with MODELPORT_UPDATE_GOLDEN=1"
    assert data == path.read_bytes(), (
        f"the {name} frame changed; if that is deliberate, rerun with MODELPORT_UPDATE_GOLDEN=1 "
        "and bump PROTOCOL_VERSION when old workers cannot read it")


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_golden_file_decodes_back(name: str) -> None:
    header, parts = FRAMES[name]
    frame = decode_frame((GOLDEN / f"{name}.bin").read_bytes())
    assert frame.header == json.loads(json.dumps(header))
    assert frame.parts == [bytes(x) for x in parts]


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_stdlib_json_writes_and_reads_the_golden_bytes(name: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A model's environment has no orjson: the shim's own encoder and decoder must give
    the same frames."""
    monkeypatch.setattr(frames_module, "fast_json", None)
    golden = (GOLDEN / f"{name}.bin").read_bytes()
    assert frame_bytes(*FRAMES[name]) == golden
    assert decode_frame(golden).header == json.loads(json.dumps(FRAMES[name][0]))


@pytest.mark.parametrize("raw", [b"", b"{", b'{"kind":"x"} trailing', b"\xff{}", b"[1,]"])
def test_stdlib_header_decoder_refuses_what_json_refuses(
        raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frames_module, "fast_json", None)
    with pytest.raises(ProtocolError, match="not UTF-8 JSON"):
        parse_header(raw)


def test_stdlib_header_decoder_allows_whitespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frames_module, "fast_json", None)
    assert parse_header(b' { "kind" : "health", "id": "h" }\n')[0] == {"kind": "health",
                                                                          "id": "h"}


def test_json_results_refuse_circular_values_with_a_value_error() -> None:
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps_json(loop)


def test_every_message_kind_has_a_golden_frame() -> None:
    covered = {decode_frame((GOLDEN / f"{n}.bin").read_bytes()).kind for n in FRAMES}
    assert set(p.TO_WORKER) | set(p.TO_RUNTIME) <= covered


def test_binary_parts_are_raw_not_base64() -> None:
    data = frame_bytes(*FRAMES["predict"])
    assert b"\x89PNG\r\n\x1a\n\x00" in data
    (n,) = struct.unpack(">I", data[:4])
    header = json.loads(data[4:4 + n])
    assert header["inputs"]["image"] == {"part": 0}
    assert header["inputs"]["raw"] == {"json_part": 1}
    assert header["parts"] == [9, 7]


def test_inputs_round_trip() -> None:
    inputs = {"t": Value.of_text("x"), "b": Value.of_bytes(b"\x00"), "j": Value.of_json([1]),
              "r": Value.of_raw_json(b"[2]")}
    header, parts = p.predict("r", inputs)
    frame = decode_frame(frame_bytes(header, parts))
    decoded = decode_inputs(frame.header["inputs"], frame.parts)
    assert decoded == inputs
    assert [v.decoded() for v in decoded.values()] == ["x", b"\x00", [1], [2]]


def test_result_json_is_encoded_once_and_passed_raw() -> None:
    header, parts = p.output("r", Result.of_json({"é": [1, 2]}))
    frame = decode_frame(frame_bytes(header, parts))
    result = decode_result(frame.header["result"], frame.parts)
    assert result == Result("json", '{"é":[1,2]}'.encode())
    assert result.decoded() == {"é": [1, 2]}


def test_nan_and_infinity_become_null_in_json_results() -> None:
    assert Result.of_json({"a": float("nan"), "b": [float("inf"), 1.0]}).data == (
        b'{"a":null,"b":[null,1.0]}')


def test_value_and_result_check_their_kinds() -> None:
    with pytest.raises(ValueError):
        Value("image", b"")
    with pytest.raises(TypeError):
        Value("text", b"bytes")
    with pytest.raises(ValueError):
        Result("text", b"")


# ---------------------------------------------------------------------- limits and bad frames


def test_a_part_over_the_limit_is_refused_before_sending() -> None:
    with pytest.raises(FrameTooLarge, match="binary part 0 is 11 bytes, over the 10-byte"):
        encode_frame({"kind": "x"}, [b"x" * 11], max_part=10)


def test_a_header_over_the_limit_is_refused_before_sending() -> None:
    with pytest.raises(FrameTooLarge, match="frame header is .* over the 100-byte limit"):
        encode_frame({"kind": "x", "big": "y" * 200}, max_header=100)


def test_a_declared_header_over_the_limit_is_refused_before_reading_it() -> None:
    data = struct.pack(">I", MAX_HEADER_BYTES + 1)
    with pytest.raises(FrameTooLarge, match="frame header is"):
        decode_frame(data)


def test_a_declared_part_over_the_limit_is_refused() -> None:
    raw = json.dumps({"kind": "x", "parts": [MAX_PART_BYTES + 1]}).encode()
    with pytest.raises(FrameTooLarge, match="binary part 0"):
        decode_frame(struct.pack(">I", len(raw)) + raw)


@pytest.mark.parametrize("header, message", [
    (b"not json", "not UTF-8 JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"id": 1}', "no string 'kind'"),
    (b'{"kind": "x", "parts": [-1]}', "is not a size"),
    (b'{"kind": "x", "parts": "3"}', "must be a list"),
])
def test_malformed_headers_are_protocol_errors(header: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_frame(struct.pack(">I", len(header)) + header)


def test_truncated_frames_are_protocol_errors() -> None:
    data = frame_bytes(*FRAMES["output_bytes"])
    with pytest.raises(ProtocolError, match="truncated"):
        decode_frame(data[:-1])


def test_an_input_pointing_at_a_missing_part_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="refers to part 3"):
        decode_inputs({"image": {"part": 3}}, [])
    with pytest.raises(ProtocolError, match="unknown encoding"):
        decode_inputs({"image": {"base64": "AA=="}}, [])


# ---------------------------------------------------------------------- sync and async I/O


def test_socket_channel_round_trip_with_a_large_part() -> None:
    a, b = socket.socketpair()
    left, right = SocketChannel(a), SocketChannel(b)
    blob = os.urandom(3 * 1024 * 1024)
    sender = threading.Thread(target=lambda: [left.send(*p.output("r", Result.of_bytes(blob))),
                                              left.send(*p.done("r"))])
    sender.start()
    first, second = right.recv(), right.recv()
    sender.join()
    assert first is not None and second is not None
    assert first.kind == "output" and first.parts == [blob]
    assert second.kind == "done"
    left.close()
    assert right.recv() is None  # clean EOF between frames
    right.close()


def test_socket_channel_reports_eof_inside_a_frame() -> None:
    a, b = socket.socketpair()
    a.sendall(frame_bytes(*FRAMES["predict"])[:10])
    a.close()
    with pytest.raises(ProtocolError, match="middle of a frame"):
        SocketChannel(b).recv()
    b.close()


def test_asyncio_helpers_round_trip() -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        ra, wa = await asyncio.open_unix_connection(sock=a)
        rb, wb = await asyncio.open_unix_connection(sock=b)
        header, parts = FRAMES["predict"]
        await write_frame(wa, header, parts)
        frame = await read_frame(rb)
        assert frame is not None
        assert frame.kind == "predict" and frame.id == "req-1"
        assert decode_inputs(frame.header["inputs"], frame.parts)["image"].payload == (
            b"\x89PNG\r\n\x1a\n\x00")
        wa.write(frame_bytes(*FRAMES["done"])[:7])
        wa.close()
        with pytest.raises(ProtocolError, match="middle of a frame"):
            await read_frame(rb)
        wb.close()

    asyncio.run(main())


def _send_in_pieces(sock: socket.socket, data: bytes, seed: int) -> None:
    """Write ``data`` in random-sized pieces, so frames straddle the receiver's reads."""
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):
        n = rng.choice([1, 3, 4, 5, 100, 4096, 70000, 300000])
        sock.sendall(data[pos:pos + n])
        pos += n
    sock.close()


def test_socket_channel_cuts_frames_from_any_split_of_the_stream() -> None:
    rng = random.Random(7)
    messages = []
    for i in range(120):
        parts = [os.urandom(rng.choice([0, 1, 50, 5000, 70000, 200000]))
                 for _ in range(rng.randrange(4))]
        header = {"kind": "predict", "id": f"r{i}", "pad": "é" * rng.choice([0, 10, 3000])}
        messages.append((header, parts))
    # one header larger than the receive buffer: the buffer grows for it, then shrinks
    messages.append(({"kind": "predict", "id": "huge", "pad": "x" * 600_000}, [b"tail"]))
    messages.append(({"kind": "done", "id": "last"}, []))
    data = b"".join(frame_bytes(h, parts) for h, parts in messages)
    a, b = socket.socketpair()
    sender = threading.Thread(target=_send_in_pieces, args=(a, data, 3))
    sender.start()
    channel = SocketChannel(b)
    got = []
    while (frame := channel.recv()) is not None:
        got.append(frame)
    sender.join()
    assert [f.header for f in got] == [h for h, _ in messages]
    assert [[bytes(x) for x in f.parts] for f in got] == [parts for _, parts in messages]
    assert all(isinstance(x, bytearray) for f in got for x in f.parts)  # writable inputs
    channel.close()


def test_socket_channel_next_frame_never_blocks() -> None:
    a, b = socket.socketpair()
    channel = SocketChannel(b)
    data = frame_bytes(*p.output("r", Result.of_bytes(b"x" * 100_000)))
    a.sendall(data[:50_000])
    assert channel.fill()
    assert channel.next_frame() is None and channel.partial()
    a.sendall(data[50_000:])
    while (frame := channel.next_frame()) is None:
        assert channel.fill()
    assert frame.kind == "output" and bytes(frame.parts[0]) == b"x" * 100_000
    assert not channel.partial()
    a.close()
    assert not channel.fill()
    channel.close()
