"""Compile protos/ into modelport/v1 (the committed stubs), or into another dir to check staleness.

`make protos` runs this; tests/test_protos.py compiles into a temp dir and compares.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"


def proto_files() -> list[Path]:
    return sorted((PROTO_DIR / "modelport" / "v1").glob("*.proto"))


def compile_protos(out_dir: Path) -> list[Path]:
    """Generate *_pb2.py, *_pb2.pyi and *_pb2_grpc.py for every proto under out_dir."""
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(p.relative_to(PROTO_DIR)) for p in proto_files()],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    gen = out_dir / "modelport" / "v1"
    (gen / "__init__.py").write_text('"""Generated from protos/ by `make protos`; never edit."""\n')
    return sorted(gen.iterdir())


def main() -> None:
    compile_protos(ROOT)
    print("generated", ", ".join(p.name for p in proto_files()), file=sys.stderr)


if __name__ == "__main__":
    main()
