"""Kind adapters in process: input conversion, output encoding, the file-contract copy."""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelport.worker import kinds
from modelport.worker.kinds import file_contract, predictor
from modelport.worker.kinds.base import ConfigError, RequestContext, ShimError, to_result
from modelport.worker.protocol import ErrorCode
from modelport.worker.values import Result, Value

np = pytest.importorskip("numpy")


def spec(**raw: Any) -> predictor.InputSpec:
    return predictor.InputSpec(0, {"name": "x", **raw})


# ---------------------------------------------------------------------- predictor inputs


@pytest.mark.parametrize("value, expected", [
    (Value.of_text("7"), 7),
    (Value.of_text(" -2.5 "), -2.5),
    (Value.of_json(3), 3),
    (Value.of_json(0.25), 0.25),
    (Value.of_raw_json(b"12"), 12),
    (Value.of_bytes(b"1e3"), 1000.0),
])
def test_number_inputs_become_int_or_float(value: Value, expected: Any) -> None:
    out = predictor.convert(spec(type="number"), value)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("value", [Value.of_json(True), Value.of_text("seven"),
                                   Value.of_json([1])])
def test_non_numbers_are_invalid_input(value: Value) -> None:
    with pytest.raises(ShimError) as err:
        predictor.convert(spec(type="number"), value)
    assert err.value.code == ErrorCode.INVALID_INPUT and "'x'" in err.value.message


def test_text_inputs() -> None:
    assert predictor.convert(spec(type="text"), Value.of_bytes("é".encode())) == "é"
    assert predictor.convert(spec(type="text"), Value.of_raw_json(b'"hi"')) == "hi"
    with pytest.raises(ShimError, match="not UTF-8"):
        predictor.convert(spec(type="text"), Value.of_bytes(b"\xff"))
    with pytest.raises(ShimError, match="is text, not a JSON dict"):
        predictor.convert(spec(type="text"), Value.of_json({"a": 1}))


def test_image_and_file_inputs_are_bytes_and_accept_base64_text() -> None:
    png = b"\x89PNG\r\n"
    b64 = base64.b64encode(png).decode()
    assert predictor.convert(spec(type="image"), Value.of_bytes(png)) == png
    assert predictor.convert(spec(type="image"), Value.of_text(b64)) == png
    data_url = Value.of_text(f"data:image/png;base64,{b64}")
    assert predictor.convert(spec(type="file"), data_url) == png
    with pytest.raises(ShimError, match="base64"):
        predictor.convert(spec(type="image"), Value.of_text("not base64!"))


def test_json_inputs() -> None:
    assert predictor.convert(spec(type="json"), Value.of_json({"a": 1})) == {"a": 1}
    assert predictor.convert(spec(type="json"), Value.of_raw_json(b"[1,2]")) == [1, 2]
    assert predictor.convert(spec(type="json"), Value.of_text('{"b": 2}')) == {"b": 2}
    with pytest.raises(ShimError, match="must be JSON"):
        predictor.convert(spec(type="json"), Value.of_text("{oops"))


def test_tensor_inputs_become_numpy_arrays_with_dtype_and_shape() -> None:
    s = spec(type="tensor", dtype="FP32", shape=[-1, 3])
    out = predictor.convert(s, Value.of_json([[1, 2, 3], [4, 5, 6]]))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (2, 3)
    raw = np.arange(6, dtype=np.float32).tobytes()
    assert predictor.convert(s, Value.of_bytes(raw)).tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ShimError, match=r"has shape \[3\], but config.json declares \[-1, 3\]"):
        predictor.convert(s, Value.of_json([1, 2, 3]))
    with pytest.raises(ShimError, match="do not make a float32 tensor"):
        predictor.convert(s, Value.of_bytes(b"\x00" * 5))


def _adapter(tmp_path: Path, config: dict[str, Any], code: str) -> Any:
    """An adapter for ``code`` saved as the module named in ``config["predictor"]``
    (each test uses its own module name: this process imports them all)."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / (config["predictor"].split(":")[0] + ".py")).write_text(code)
    adapter = kinds.load_adapter(str(tmp_path))
    adapter.setup()
    return adapter


def test_declared_inputs_are_checked_and_predict_defaults_make_them_optional(
        tmp_path: Path) -> None:
    adapter = _adapter(tmp_path, {
        "predictor": "model_code1:M",
        "input": [{"name": "a", "type": "number"}, {"name": "b", "type": "text"},
                  {"name": "c", "type": "text"}],
    }, "class M:\n    def predict(self, a, b='z', c='none'):\n        return [a, b, c]\n")
    ctx = RequestContext("r")
    assert adapter.predict({"a": Value.of_text("1")}, ctx).decoded() == [1, "z", "none"]
    assert adapter.predict({"a": Value.of_json(2), "c": Value.of_text("y")}, ctx).decoded() == [
        2, "z", "y"]
    with pytest.raises(ShimError, match="missing input 'a' .* this model takes: a, b, c"):
        adapter.predict({}, ctx)
    with pytest.raises(ShimError, match="unexpected input 'zzz'"):
        adapter.predict({"a": Value.of_json(1), "zzz": Value.of_json(1)}, ctx)


def test_undeclared_inputs_pass_through_as_sent(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path, {"predictor": "model_code2:predict"},
                       "def predict(**kw):\n"
                       "    return {k: type(v).__name__ for k, v in kw.items()}\n")
    out = adapter.predict({"t": Value.of_text("x"), "b": Value.of_bytes(b"x"),
                           "j": Value.of_raw_json(b"{}")}, RequestContext("r"))
    assert out.decoded() == {"t": "str", "b": "bytes", "j": "dict"}


def test_generators_stream_results(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path, {"predictor": "model_code3:M"},
                       "class M:\n    def predict(self):\n        yield 1\n        yield b'x'\n")
    assert adapter.streaming
    assert list(adapter.predict({}, RequestContext("r"))) == [Result("json", b"1"),
                                                              Result("bytes", b"x")]


def test_async_predict_and_async_generators(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path, {"predictor": "model_code4:M"},
                       "class M:\n"
                       "    async def predict(self, n):\n"
                       "        return n * 2\n")
    assert adapter.predict({"n": Value.of_json(4)}, RequestContext("r")).decoded() == 8
    (tmp_path / "gen_code.py").write_text(
        "async def predict():\n    for i in range(3):\n        yield i\n")
    agen = kinds.load_adapter(str(tmp_path), {"predictor": "gen_code:predict"})
    agen.setup()
    assert agen.streaming
    assert [r.decoded() for r in agen.predict({}, RequestContext("r"))] == [0, 1, 2]


# ---------------------------------------------------------------------- outputs


def test_numpy_outputs_are_converted_without_the_adapter_importing_numpy() -> None:
    out = to_result({"a": np.arange(3, dtype=np.int64), "s": np.float32(0.5),
                     "nan": np.float64("nan"), "nested": [np.array([[1.5]])]})
    assert out.decoded() == {"a": [0, 1, 2], "s": 0.5, "nan": None, "nested": [[[1.5]]]}


def test_bytes_outputs_stay_bytes() -> None:
    assert to_result(bytearray(b"\x00\x01")) == Result("bytes", b"\x00\x01")


def test_unserialisable_outputs_are_a_clear_error() -> None:
    with pytest.raises(ShimError) as err:
        to_result({"f": object()})
    assert err.value.code == ErrorCode.OUTPUT_INVALID
    assert "cannot be sent as JSON: object is not JSON-serialisable" in err.value.message


# ---------------------------------------------------------------------- kinds table


def test_kind_detection_is_table_driven(tmp_path: Path) -> None:
    assert kinds.kind_names() == ["modelarts", "predictor", "file_contract"]
    assert kinds.detect_kind({"predictor": "a:B"}) == "predictor"
    assert kinds.detect_kind({"model_type": "PyTorch", "model_algorithm": "x"}) == "modelarts"
    assert kinds.detect_kind({"entrypoint": "python x.py", "input": [], "output": []}) == (
        "file_contract")
    with pytest.raises(ConfigError, match="matches no package kind"):
        kinds.detect_kind({"name": "x"})
    with pytest.raises(ConfigError, match="unknown package kind 'docker'"):
        kinds.load_adapter(str(tmp_path), {"predictor": "a:B"}, kind="docker")


def test_config_json_is_found_under_model(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"predictor": "m:M"}')
    root, config = kinds.find_config(str(tmp_path))
    assert root == str(tmp_path / "model") and config == {"predictor": "m:M"}


def test_config_json_is_found_in_a_single_top_level_folder(tmp_path: Path) -> None:
    (tmp_path / "mnist").mkdir()
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "mnist" / "config.json").write_text('{"predictor": "m:M"}')
    assert kinds.find_config(str(tmp_path))[0] == str(tmp_path / "mnist")
    assert kinds.config_root(str(tmp_path)) == str(tmp_path / "mnist")


def test_bad_config_json_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config.json"):
        kinds.find_config(str(tmp_path))
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(ConfigError, match="config.json is not valid JSON"):
        kinds.find_config(str(tmp_path))


def test_predictor_reference_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="module:Class"):
        kinds.load_adapter(str(tmp_path), {"predictor": "nocolon"})
    (tmp_path / "m.py").write_text("X = 1\n")
    adapter = kinds.load_adapter(str(tmp_path), {"predictor": "m:Missing"})
    with pytest.raises(ConfigError, match="module 'm' has no 'Missing'"):
        adapter.setup()


# ---------------------------------------------------------------------- file contract


@pytest.fixture
def fc(package: Callable[[str], Path]) -> Callable[..., Any]:
    def make(name: str, **overrides: Any) -> Any:
        root = package(name)
        config = json.loads((root / "config.json").read_text())
        config.update(overrides)
        adapter = kinds.load_adapter(str(root), config)
        adapter.setup()
        return adapter

    return make


def test_file_contract_round_trip(fc: Callable[..., Any]) -> None:
    adapter = fc("file_contract_echo")
    result = adapter.predict({"image": Value.of_bytes(b"\xff\xd8jpeg"),
                              "2.txt": Value.of_text("hello")}, RequestContext("r"))
    out = result.decoded()
    assert out["image_bytes"] == 6 and out["text"] == "hello"
    assert out["python"].startswith(os.path.dirname(sys.executable))
    assert out["cwd"] != adapter.root and not os.path.exists(out["cwd"])  # copy removed


def test_file_contract_never_modifies_the_package(fc: Callable[..., Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_contract, "LINK_MIN_BYTES", 0)  # hard-link every file
    adapter = fc("file_contract_echo")
    root = Path(adapter.root)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    adapter.predict({"image": Value.of_bytes(b"new image"), "2.txt": Value.of_text("new")},
                    RequestContext("r"))
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_copy_tree_hard_links_large_files(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_contract, "LINK_MIN_BYTES", 4)
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    (src / "d" / "weights.bin").write_bytes(b"0123456789")
    (src / "small.txt").write_bytes(b"ab")
    dst.mkdir()
    file_contract.copy_tree(str(src), str(dst))
    assert os.path.samefile(src / "d" / "weights.bin", dst / "d" / "weights.bin")
    assert not os.path.samefile(src / "small.txt", dst / "small.txt")
    file_contract.write_fresh(str(dst / "d" / "weights.bin"), b"changed")
    assert (src / "d" / "weights.bin").read_bytes() == b"0123456789"


def test_file_contract_inputs_are_named_by_name_or_path(fc: Callable[..., Any]) -> None:
    adapter = fc("file_contract_echo")
    with pytest.raises(ShimError, match="missing input '2.txt'; this model takes: image, 2.txt"):
        adapter.predict({"image": Value.of_bytes(b"x")}, RequestContext("r"))


def test_file_contract_images_sent_as_base64_text_are_decoded(fc: Callable[..., Any]) -> None:
    adapter = fc("file_contract_echo")
    out = adapter.predict({"image": Value.of_text(base64.b64encode(b"abc").decode()),
                           "2.txt": Value.of_text("t")}, RequestContext("r")).decoded()
    assert out["image_bytes"] == 3


def test_failing_entrypoint_reports_exit_code_and_stderr_tail(fc: Callable[..., Any]) -> None:
    adapter = fc("file_contract_fails")
    with pytest.raises(ShimError) as err:
        adapter.predict({"text": Value.of_text("x")}, RequestContext("r"))
    assert err.value.code == ErrorCode.ENTRYPOINT_FAILED
    assert "exited with code 3" in err.value.message
    assert "CUDA out of memory (pretend)" in err.value.message


def test_missing_output_is_a_clear_error(fc: Callable[..., Any]) -> None:
    adapter = fc("file_contract_no_output")
    with pytest.raises(ShimError, match="did not write output/output.json"):
        adapter.predict({"text": Value.of_text("x")}, RequestContext("r"))


def test_invalid_output_json_is_a_clear_error(fc: Callable[..., Any]) -> None:
    adapter = fc("file_contract_no_output",
                 entrypoint="python -c \"import os; os.makedirs('output'); "
                            "open('output/output.json', 'w').write('{bad')\"")
    with pytest.raises(ShimError, match="output/output.json is not valid JSON"):
        adapter.predict({"text": Value.of_text("x")}, RequestContext("r"))


def test_entrypoint_timeout_and_cancel(fc: Callable[..., Any]) -> None:
    adapter = fc("file_contract_no_output", entrypoint="python -c \"import time; time.sleep(60)\"",
                 timeout_s=0.3)
    with pytest.raises(ShimError) as err:
        adapter.predict({"text": Value.of_text("x")}, RequestContext("r"))
    assert err.value.code == ErrorCode.TIMEOUT and "within 0.3s" in err.value.message
    ctx = RequestContext("r2")
    threading.Timer(0.2, ctx.cancelled.set).start()
    adapter.timeout_s = 60
    with pytest.raises(ShimError) as err:
        adapter.predict({"text": Value.of_text("x")}, ctx)
    assert err.value.code == ErrorCode.CANCELLED


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/passwd", "."])
def test_file_contract_paths_must_stay_inside(tmp_path: Path, path: str) -> None:
    with pytest.raises(ConfigError, match="path"):
        kinds.load_adapter(str(tmp_path), {"entrypoint": "python x.py",
                                           "input": [{"path": path, "type": "text"}],
                                           "output": [{"path": "o.json", "type": "json"}]})
