from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelport.errors import Kind, ModelportError, Problem
from modelport.package import content_digest, load_package
from modelport.package.checks import entrypoint_script

from .conftest import write_tree

# the config.json from reference/seed-000, verbatim
SEED = {
    "name": "regnet-classification",
    "input": [{"path": "input/1.jpeg", "type": "image"}, {"path": "2.txt", "type": "text"}],
    "output": [{"path": "output/output.json", "type": "json"}],
    "base_image": "pytorch/pytorch:2.0.0-cuda11.7-cudnn8-runtime",
    "entrypoint": "python inference.py",
}
PREDICTOR = {
    "name": "sentiment",
    "predictor": "predict:Predictor",
    "input": [
        {"name": "text", "type": "text"},
        {"name": "x", "type": "tensor", "dtype": "float32", "shape": [-1, 3]},
    ],
    "output": [{"name": "label", "type": "json"}],
}
PREDICT_PY = """
class Predictor:
    def setup(self):
        self.ready = True

    def predict(self, text, x):
        return {"label": "positive"}
"""
MODELARTS = {
    "model_type": "TensorFlow",
    "model_algorithm": "image_classification",
    "runtime": "tensorflow_2.1.0-cuda_10.1-py_3.7-ubuntu_18.04-x86_64",
    "metrics": {"f1": 0.3},
    "apis": [
        {
            "url": "/",
            "method": "post",
            "request": {
                "Content-type": "multipart/form-data",
                "data": {"type": "object", "properties": {"images": {"type": "file"}}},
            },
            "response": {
                "Content-type": "application/json",
                "data": {"type": "object", "properties": {"mnist_result": {"type": "array"}}},
            },
        }
    ],
    "dependencies": [
        {
            "installer": "pip",
            "packages": [
                {"restraint": "EXACT", "package_version": "1.15.0", "package_name": "numpy"},
                {"restraint": "ATLEAST", "package_version": "5.2.0", "package_name": "Pillow"},
                {"restraint": "", "package_version": "", "package_name": "requests"},
            ],
        }
    ],
}
SERVICE_PY = """
from model_service.tfserving_model_service import TfServingBaseService


class MnistService(TfServingBaseService):
    def _preprocess(self, data):
        return data

    def _postprocess(self, data):
        return {"mnist_result": 7}
"""


def _problems(root: Path) -> list[Problem]:
    with pytest.raises(ModelportError) as info:
        load_package(root)
    err = info.value
    assert (err.kind, err.code) == (Kind.INVALID, "package.invalid")
    assert err.message == f"package has {len(err.problems)} problem" + (
        "s" if len(err.problems) != 1 else ""
    )
    assert all(p.fix for p in err.problems)
    return err.problems


def _seed(root: Path, config: dict[str, Any] | None = None) -> Path:
    return write_tree(root, {"config.json": config or SEED, "inference.py": "print('hi')\n"})


# -- kinds -------------------------------------------------------------------------------


def test_seed_config_is_a_file_contract(pkg_dir: Path) -> None:
    pkg = load_package(_seed(pkg_dir))
    assert pkg.kind == "file_contract"
    assert pkg.name == "regnet-classification"
    assert [(i.name, i.type, i.path) for i in pkg.inputs] == [
        ("input/1.jpeg", "image", "input/1.jpeg"),
        ("2.txt", "text", "2.txt"),
    ]
    assert [(o.name, o.type) for o in pkg.outputs] == [("output/output.json", "json")]
    assert pkg.entrypoint == "python inference.py"
    assert pkg.base_image == SEED["base_image"]
    assert pkg.root == pkg_dir and pkg.config == SEED
    assert pkg.digest == content_digest(pkg_dir)


def test_file_contract_input_name_is_the_request_field(pkg_dir: Path) -> None:
    config = {**SEED, "input": [{"path": "input/1.jpeg", "type": "image", "name": "photo"}]}
    pkg = load_package(_seed(pkg_dir, config))
    assert (pkg.inputs[0].name, pkg.inputs[0].path) == ("photo", "input/1.jpeg")


def test_predictor_kind(pkg_dir: Path) -> None:
    write_tree(
        pkg_dir,
        {
            "config.json": {
                **PREDICTOR,
                "batching": {"max_batch_size": 8},
                "resources": {"cpu": 1, "memory": "2Gi", "gpu": 1},
                "env": {"LOG_LEVEL": "info"},
                "timeout_s": 30,
                "python": "3.11",
            },
            "predict.py": PREDICT_PY + "\n    def predict_batch(self, inputs):\n"
            "        return []\n",
            "requirements.txt": "numpy==1.26.4",
        },
    )
    pkg = load_package(pkg_dir)
    assert pkg.kind == "predictor" and pkg.predictor == "predict:Predictor"
    assert pkg.inputs[1].dtype == "FP32" and pkg.inputs[1].shape == [-1, 3]
    assert pkg.batching is not None and pkg.batching.max_batch_size == 8
    assert pkg.resources is not None and pkg.resources.memory_bytes == 2 << 30
    assert (pkg.env, pkg.timeout_s, pkg.python) == ({"LOG_LEVEL": "info"}, 30, "3.11")
    assert pkg.requirements == "numpy==1.26.4"
    iface = pkg.interface()
    assert iface["kind"] == "predictor"
    assert iface["inputs"] == [
        {"name": "text", "type": "text"},
        {"name": "x", "type": "tensor", "dtype": "FP32", "shape": [-1, 3]},
    ]
    assert iface["outputs"] == [{"name": "label", "type": "json"}]
    json.dumps(iface), json.dumps(pkg.summary())
    assert pkg.summary()["runs"] == "predict:Predictor"


def test_predictor_in_package_module_and_inherited_predict(pkg_dir: Path) -> None:
    write_tree(
        pkg_dir,
        {
            "config.json": {**PREDICTOR, "predictor": "app.model:Model"},
            "app/__init__.py": "",
            "app/model.py": "class Base:\n    def predict(self, **kw):\n        pass\n\n"
            "class Model(Base):\n    pass\n",
        },
    )
    assert load_package(pkg_dir).predictor == "app.model:Model"


def test_predict_from_imported_base_is_not_second_guessed(pkg_dir: Path) -> None:
    write_tree(
        pkg_dir,
        {
            "config.json": PREDICTOR,
            "predict.py": "from base import Base\n\nclass Predictor(Base):\n    pass\n",
        },
    )
    assert load_package(pkg_dir).kind == "predictor"


def test_user_code_is_never_imported(pkg_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    write_tree(
        pkg_dir,
        {
            "config.json": PREDICTOR,
            "predict.py": f"open({str(marker)!r}, 'w').close()\n" + PREDICT_PY,
        },
    )
    load_package(pkg_dir)
    assert not marker.exists()


def test_modelarts_kind_under_model_folder(pkg_dir: Path) -> None:
    write_tree(
        pkg_dir,
        {
            "model/config.json": MODELARTS,
            "model/customize_service.py": SERVICE_PY,
            "model/requirements.txt": "scipy\n",
            "README.md": "hi",
        },
    )
    pkg = load_package(pkg_dir)
    assert pkg.kind == "modelarts" and pkg.root == pkg_dir / "model"
    assert pkg.name == "image_classification"
    assert pkg.predictor == "customize_service:MnistService"
    assert pkg.python == "3.7"
    assert pkg.requirements == "scipy\nnumpy==1.15.0\nPillow>=5.2.0\nrequests\n"
    assert [(i.name, i.type) for i in pkg.inputs] == [("images", "file")]
    assert [(o.name, o.type) for o in pkg.outputs] == [("mnist_result", "json")]
    assert pkg.interface()["content_type"] == "multipart/form-data"


def test_config_found_in_single_top_level_folder(pkg_dir: Path) -> None:
    _seed(pkg_dir / "regnet")
    (pkg_dir / "__MACOSX").mkdir()
    pkg = load_package(pkg_dir)
    assert pkg.root == pkg_dir / "regnet"


# -- errors that stop before validation --------------------------------------------------


def test_missing_config(pkg_dir: Path) -> None:
    write_tree(pkg_dir, {"inference.py": "", "weights/w.bin": b""})
    with pytest.raises(ModelportError) as info:
        load_package(pkg_dir)
    err = info.value
    assert (err.kind, err.code) == (Kind.INVALID, "package.config_missing")
    assert "config.json" in err.message and "inference.py, weights/" in err.message
    assert err.fix


def test_invalid_json_names_line_and_column(pkg_dir: Path) -> None:
    write_tree(pkg_dir, {"config.json": '{\n  "name": "x",\n  "input": [,]\n}\n'})
    with pytest.raises(ModelportError) as info:
        load_package(pkg_dir)
    err = info.value
    assert err.code == "package.config_invalid_json"
    assert "line 3, column 13" in err.message
    assert err.details == {"line": 3, "column": 13}
    assert err.path == "config.json:3:13"


def test_config_matching_no_kind(pkg_dir: Path) -> None:
    write_tree(pkg_dir, {"config.json": {"name": "x", "version": 2}})
    [problem] = _problems(pkg_dir)
    assert problem.path == "config.json:$"
    assert problem.code == "package.unknown_kind"
    for key in ("predictor", "entrypoint", "model_type"):
        assert key in problem.fix


# -- validation reports every problem at once --------------------------------------------


def test_three_problems_reported_at_once(pkg_dir: Path) -> None:
    config = {
        **SEED,
        "input": [{"path": "input/1.jpeg", "type": "image"}, {"path": "2.txt"}],
        "entrypoint": "python missing.py",
        "timeout_s": 0,
    }
    problems = _problems(_seed(pkg_dir, config))
    assert [p.path for p in problems] == [
        "config.json:$.input[1].type",
        "config.json:$.entrypoint",
        "config.json:$.timeout_s",
    ]
    assert problems[0].message == "missing required field 'type'"


def test_missing_entrypoint_file(pkg_dir: Path) -> None:
    write_tree(pkg_dir, {"config.json": SEED})
    [problem] = _problems(pkg_dir)
    assert problem.path == "config.json:$.entrypoint"
    assert problem.code == "package.entrypoint_missing"
    assert "inference.py" in problem.message


def test_unknown_input_type(pkg_dir: Path) -> None:
    config = {**PREDICTOR, "input": [{"name": "clip", "type": "video"}]}
    write_tree(pkg_dir, {"config.json": config, "predict.py": PREDICT_PY})
    [problem] = _problems(pkg_dir)
    assert problem.path == "config.json:$.input[0].type"
    assert problem.message == "unknown input type 'video'"
    assert problem.fix == "use one of: text, image, file, json, number, tensor"


def test_file_contract_allows_only_image_and_text(pkg_dir: Path) -> None:
    config = {**SEED, "input": [{"path": "a.json", "type": "json"}]}
    [problem] = _problems(_seed(pkg_dir, config))
    assert problem.message == "unknown input type 'json'" and "image, text" in problem.fix


def test_duplicate_input_names(pkg_dir: Path) -> None:
    config = {
        **PREDICTOR,
        "input": [{"name": "text", "type": "text"}, {"name": "text", "type": "image"}],
    }
    write_tree(pkg_dir, {"config.json": config, "predict.py": PREDICT_PY})
    [problem] = _problems(pkg_dir)
    assert problem.path == "config.json:$.input[1].name"
    assert problem.code == "package.duplicate_input"


def test_input_paths_must_stay_inside(pkg_dir: Path) -> None:
    config = {
        **SEED,
        "input": [
            {"path": "../../etc/passwd", "type": "text"},
            {"path": "/tmp/x.jpeg", "type": "image"},
        ],
    }
    problems = _problems(_seed(pkg_dir, config))
    assert [(p.path, p.code) for p in problems] == [
        ("config.json:$.input[0].path", "package.path_outside"),
        ("config.json:$.input[1].path", "package.path_outside"),
    ]


def test_file_contract_needs_exactly_one_output(pkg_dir: Path) -> None:
    config = {**SEED, "output": SEED["output"] * 2}
    [problem] = _problems(_seed(pkg_dir, config))
    assert problem.path == "config.json:$.output" and "exactly one output" in problem.message


def test_typo_gets_a_suggestion(pkg_dir: Path) -> None:
    config = {k: v for k, v in SEED.items() if k != "entrypoint"}
    config["entrypiont"] = "python inference.py"
    problems = _problems(_seed(pkg_dir, config))
    assert {(p.path, p.fix) for p in problems} >= {
        ("config.json:$.entrypiont", "did you mean 'entrypoint'?")
    }
    assert any(
        p.path == "config.json:$.entrypoint" and p.code == "package.missing_field" for p in problems
    )


def test_predictor_module_class_and_method_problems(tmp_path: Path) -> None:
    missing_module = write_tree(tmp_path / "a", {"config.json": PREDICTOR})
    [p] = _problems(missing_module)
    assert p.code == "package.predictor_module_missing" and "predict.py" in p.message

    missing_class = write_tree(
        tmp_path / "b", {"config.json": PREDICTOR, "predict.py": "class Other:\n    pass\n"}
    )
    [p] = _problems(missing_class)
    assert p.code == "package.predictor_class_missing" and "Other" in p.message

    missing_predict = write_tree(
        tmp_path / "c",
        {
            "config.json": PREDICTOR,
            "predict.py": "class Predictor:\n    def setup(self):\n        pass\n",
        },
    )
    [p] = _problems(missing_predict)
    assert p.code == "package.predict_missing" and p.path == "config.json:$.predictor"

    syntax = write_tree(
        tmp_path / "d", {"config.json": PREDICTOR, "predict.py": "class Predictor(:\n"}
    )
    [p] = _problems(syntax)
    assert p.code == "package.python_syntax" and "line 1" in p.message


def test_batching_needs_predict_batch(pkg_dir: Path) -> None:
    write_tree(
        pkg_dir,
        {"config.json": {**PREDICTOR, "batching": {"max_batch_size": 4}}, "predict.py": PREDICT_PY},
    )
    [p] = _problems(pkg_dir)
    assert p.code == "package.predict_batch_missing"


def test_tensor_fields_and_common_options_are_checked(pkg_dir: Path) -> None:
    config = {
        **PREDICTOR,
        "input": [
            {"name": "x", "type": "tensor", "dtype": "FP33", "shape": [-2]},
            {"name": "t", "type": "text", "dtype": "FP32"},
            {"name": "class", "type": "text"},
        ],
        "resources": {"memory": "2GB"},
        "env": {"A": 1},
        "python": 3.1,
    }
    write_tree(pkg_dir, {"config.json": config, "predict.py": PREDICT_PY})
    problems = _problems(pkg_dir)
    assert [p.path for p in problems] == [
        "config.json:$.input[0].dtype",
        "config.json:$.input[0].shape",
        "config.json:$.input[1]",
        "config.json:$.input[2].name",
        "config.json:$.resources.memory",
        "config.json:$.env.A",
        "config.json:$.python",
    ]


def test_modelarts_problems(pkg_dir: Path) -> None:
    config = {
        **MODELARTS,
        "model_type": "Theano",
        "dependencies": [
            {"installer": "pip", "packages": [{"package_name": "numpy", "package_version": "1.0"}]}
        ],
    }
    write_tree(pkg_dir, {"model/config.json": config})
    problems = _problems(pkg_dir)
    assert [(p.path, p.code) for p in problems] == [
        ("model/config.json:$.model_type", "package.model_type"),
        ("model/config.json:$.dependencies[0].packages[0]", "package.restraint_pair"),
        ("model/customize_service.py", "package.modelarts_service_missing"),
    ]
    assert "PyTorch" in problems[0].fix


def test_modelarts_service_must_subclass_a_base(pkg_dir: Path) -> None:
    write_tree(
        pkg_dir,
        {
            "model/config.json": MODELARTS,
            "model/customize_service.py": "class Handler:\n    pass\n",
        },
    )
    [p] = _problems(pkg_dir)
    assert p.code == "package.modelarts_service_class_missing"


# -- entrypoint parsing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "script"),
    [
        ("python inference.py", "inference.py"),
        ("python3 -u src/infer.py --fast", "src/infer.py"),
        ("python -W ignore infer.py", "infer.py"),
        ("python -m pkg.main", "pkg/main.py"),
        ("bash run.sh", "run.sh"),
        ("./run.sh arg", "./run.sh"),
        ("python -c 'print(1)'", None),
        ("uvicorn app:app", None),
    ],
)
def test_entrypoint_script(command: str, script: str | None) -> None:
    assert entrypoint_script(command) == script


def test_entrypoint_module_with_main(pkg_dir: Path) -> None:
    config = {**SEED, "entrypoint": "python -m pkg"}
    write_tree(pkg_dir, {"config.json": config, "pkg/__main__.py": ""})
    assert load_package(pkg_dir).entrypoint == "python -m pkg"
