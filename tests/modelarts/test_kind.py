"""The ModelArts kind in a real worker process: base classes importable under their
ModelArts names, the constructor call, the pipeline, and the data shapes of the manual."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelport.worker import protocol as p
from modelport.worker.values import Value
from tests.worker.support import ShimProcess, install_copy

PACKAGES = Path(__file__).parent / "packages"


@pytest.fixture
def start(tmp_path: Path):  # noqa: ANN201
    shims: list[ShimProcess] = []

    def run(package: Path) -> ShimProcess:
        shim = ShimProcess(install_copy(tmp_path / f"shim{len(shims)}"), package,
                           tmp_path / f"worker{len(shims)}.log", kind="modelarts")
        shims.append(shim)
        ready = shim.setup()
        assert ready.kind == p.READY, shim.log_text()
        assert ready.header["package_kind"] == "modelarts"
        return shim

    yield run
    for shim in shims:
        shim.close()


def predict(shim: ShimProcess, inputs: dict[str, Value]) -> dict:
    shim.send(p.predict("r1", inputs))
    frames = shim.recv_until(p.DONE, "r1")
    assert "error" not in frames[-1].header, frames[-1].header
    out = next(f for f in frames if f.kind == p.OUTPUT)
    return json.loads(out.parts[0])


def test_multipart_shape_and_paths(start) -> None:  # noqa: ANN001
    shim = start(PACKAGES / "echo_service")
    out = predict(shim, {"images": Value("bytes", b"PNGDATA", "cat.jpg"),
                         "note": Value.of_text("hello")})
    assert out["seen"] == {
        "images": {"cat.jpg": {"type": "UploadedFile", "read": "PNGDATA", "name": "cat.jpg"}},
        "note": {"value": "hello", "type": "str"}}
    assert out["postprocessed"] is True  # _preprocess -> _inference -> _postprocess
    assert out["model_name"] == "echo_shapes"
    assert out["model_file"] == "weights.pth" and out["model_dir_ok"] is True
    assert "loaded echo_shapes" in shim.log_text()  # top-level `import log` works


def test_json_body_is_the_parsed_dict(start) -> None:  # noqa: ANN001
    shim = start(PACKAGES / "echo_service")
    out = predict(shim, {"images": Value.of_raw_json(b'"aGk="'),
                         "meta": Value.of_raw_json(b'{"k": [1, 2]}')})
    assert out["seen"] == {"images": {"value": "aGk=", "type": "str"},
                           "meta": {"value": {"k": [1, 2]}, "type": "dict"}}


def test_ml_service_gets_json_text_and_one_argument_init(start, tmp_path: Path) -> None:  # noqa: ANN001
    pkg = tmp_path / "ml"
    shutil.copytree(PACKAGES / "echo_service", pkg)
    (pkg / "model" / "weights.pth").unlink()
    (pkg / "model" / "tree.m").write_text("model")
    (pkg / "model" / "customize_service.py").write_text(
        "import collections, json\n"
        "from model_service.python_model_service import XgSkIServingBaseService\n"
        "class Svc(XgSkIServingBaseService):\n"
        "    def __init__(self, model_path):\n"
        "        self.model_path = model_path\n"
        "    def _preprocess(self, data):\n"
        "        parsed = json.loads(data, object_pairs_hook=collections.OrderedDict)\n"
        "        return {'text': data, 'keys': list(parsed['data']['req_data'][0])}\n"
        "    def _inference(self, data):\n"
        "        data['model'] = self.model_path.rsplit('/', 1)[-1]\n"
        "        return data\n")
    shim = start(pkg)
    out = predict(shim, {"data": Value.of_raw_json(b'{"req_data":[{"z":1,"a":2}]}')})
    assert out == {"text": '{"data":{"req_data":[{"z":1,"a":2}]}}', "keys": ["z", "a"],
                   "model": "tree.m"}


def test_service_errors_are_the_models(start, tmp_path: Path) -> None:  # noqa: ANN001
    pkg = tmp_path / "raises"
    shutil.copytree(PACKAGES / "echo_service", pkg)
    (pkg / "model" / "customize_service.py").write_text(
        "from model_service.model_service import SingleNodeService\n"
        "class Svc(SingleNodeService):\n"
        "    def _preprocess(self, data):\n"
        "        raise ValueError('bad image')\n")
    shim = start(pkg)
    shim.send(p.predict("r1", {"images": Value("bytes", b"x", "a.png")}))
    done = shim.recv_until(p.DONE, "r1")[-1]
    assert done.header["error"]["type"] == "ValueError"
    assert done.header["error"]["message"] == "bad image"


def test_an_oserror_in_model_code_is_not_a_lost_connection(start, tmp_path: Path) -> None:  # noqa: ANN001
    """PIL's UnidentifiedImageError, FileNotFoundError...: the request fails, the worker lives."""
    pkg = tmp_path / "oserror"
    shutil.copytree(PACKAGES / "echo_service", pkg)
    (pkg / "model" / "customize_service.py").write_text(
        "from model_service.model_service import SingleNodeService\n"
        "class Svc(SingleNodeService):\n"
        "    def _preprocess(self, data):\n"
        "        return open('/nonexistent/' + data['name'])\n")
    shim = start(pkg)
    for rid in ("r1", "r2"):
        shim.send(p.predict(rid, {"name": Value.of_text("weights.bin")}))
        done = shim.recv_until(p.DONE, rid)[-1]
        assert done.header["error"]["type"] == "FileNotFoundError"
    assert shim.proc.poll() is None
