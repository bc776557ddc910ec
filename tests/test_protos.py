"""The committed stubs (modelport/v1, modelport/inference) are exactly what protos/ compiles to."""

from __future__ import annotations

from pathlib import Path

from modelport.protos_build import GENERATED_DIRS, ROOT, compile_protos


def test_generated_stubs_are_current(tmp_path: Path) -> None:
    generated = compile_protos(tmp_path)
    for rel in GENERATED_DIRS:
        committed = ROOT / rel
        names = sorted(p.name for p in generated if p.parent == tmp_path / rel)
        assert names, f"nothing generated into {rel}"
        assert names == sorted(p.name for p in committed.iterdir() if p.is_file()
                               and p.suffix in (".py", ".pyi")), "run `make protos` and commit"
    for p in generated:
        rel = p.relative_to(tmp_path)
        assert p.read_bytes() == (ROOT / rel).read_bytes(), (
            f"{rel} is stale: run `make protos` and commit")
