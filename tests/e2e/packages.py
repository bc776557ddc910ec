"""Small packages built on the fly for end-to-end scenarios (one per behaviour)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from modelport.package import zip_directory

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def zipped(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    zip_directory(src, dest)
    return dest


def iris_variant(tmp: Path, labels: list[str]) -> Path:
    """The iris example answering with other label names (a package that 'answers differently')."""
    dst = tmp / "iris-variant"
    shutil.copytree(EXAMPLES / "predictor-iris", dst,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (dst / "labels.json").write_text(json.dumps(labels))
    return dst


def color_variant(tmp: Path) -> Path:
    """The colour example whose answer is upper-cased by a wrapper around its entrypoint."""
    dst = tmp / "color-variant"
    shutil.copytree(EXAMPLES / "file-contract-color", dst,
                    ignore=shutil.ignore_patterns("__pycache__", "input", "output", "2.txt"))
    (dst / "inference.py").rename(dst / "inference_v1.py")
    (dst / "inference.py").write_text(
        "import json, runpy, sys\n"
        "try:\n    runpy.run_path('inference_v1.py', run_name='__main__')\n"
        "except SystemExit as e:\n    if e.code:\n        raise\n"
        "out = json.load(open('output/output.json'))\n"
        "out['label'] = out['label'].upper()\nout['variant'] = 2\n"
        "json.dump(out, open('output/output.json', 'w'))\n")
    return dst


def predictor(tmp: Path, name: str, code: str, inputs: list[dict] | None = None,
              requirements: str = "") -> Path:
    """A predictor package from source text: `code` defines class Predictor."""
    dst = tmp / name
    dst.mkdir(parents=True)
    (dst / "config.json").write_text(json.dumps({
        "name": name, "predictor": "predict:Predictor",
        "input": inputs or [{"name": "text", "type": "text"}]}))
    (dst / "predict.py").write_text(code)
    if requirements:
        (dst / "requirements.txt").write_text(requirements)
    return dst
