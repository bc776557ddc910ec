"""Compile protos/ into the committed stubs, or into another dir to check staleness.

Two packages:

- ``protos/modelport/v1/*.proto`` -> ``modelport/v1/`` (modelport's own services);
- ``protos/inference/*.proto`` (the Open Inference Protocol, proto package ``inference``)
  -> ``modelport/inference/``. protoc derives a module's import path from its proto
  path, so these are compiled from a staged copy under ``modelport/inference/``: the
  stubs import each other as ``modelport.inference`` instead of a top-level
  ``inference`` package. The proto package (what travels on the wire) is unchanged.

`make protos` runs this; tests/test_protos.py compiles into a temp dir and compares.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
#: generated package dirs, relative to the output root
GENERATED_DIRS = (Path("modelport") / "v1", Path("modelport") / "inference")


def proto_files() -> list[Path]:
    return sorted((PROTO_DIR / "modelport" / "v1").glob("*.proto"))


def oip_proto_files() -> list[Path]:
    return sorted((PROTO_DIR / "inference").glob("*.proto"))


def _protoc(include: Path, files: list[str], out_dir: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc

    well_known = str(Path(grpc_tools.__file__).parent / "_proto")
    args = ["protoc", f"-I{include}", f"-I{well_known}", f"--python_out={out_dir}",
            f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", *files]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def compile_protos(out_dir: Path) -> list[Path]:
    """Generate *_pb2.py, *_pb2.pyi and *_pb2_grpc.py for every proto under out_dir;
    returns the generated files (paths under out_dir)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _protoc(PROTO_DIR, [str(p.relative_to(PROTO_DIR)) for p in proto_files()], out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "modelport" / "inference"
        stage.mkdir(parents=True)
        for p in oip_proto_files():
            shutil.copyfile(p, stage / p.name)
        _protoc(Path(tmp), [f"modelport/inference/{p.name}" for p in oip_proto_files()],
                out_dir)
    notes = {GENERATED_DIRS[0]: "protos/", GENERATED_DIRS[1]: "protos/inference/"}
    files: list[Path] = []
    for rel, source in notes.items():
        gen = out_dir / rel
        (gen / "__init__.py").write_text(
            f'"""Generated from {source} by `make protos`; never edit."""\n')
        files += sorted(gen.iterdir())
    return files


def main() -> None:
    compile_protos(ROOT)
    print("generated", ", ".join(p.name for p in proto_files() + oip_proto_files()),
          file=sys.stderr)


if __name__ == "__main__":
    main()
