"""The committed stubs in modelport/v1 are exactly what protos/ compiles to."""

from __future__ import annotations

from pathlib import Path

from modelport.protos_build import ROOT, compile_protos


def test_generated_stubs_are_current(tmp_path: Path) -> None:
    generated = compile_protos(tmp_path)
    committed = ROOT / "modelport" / "v1"
    names = sorted(p.name for p in generated)
    assert names == sorted(p.name for p in committed.iterdir() if p.is_file()
                           and p.suffix in (".py", ".pyi")), "run `make protos` and commit"
    for p in generated:
        assert p.read_bytes() == (committed / p.name).read_bytes(), (
            f"modelport/v1/{p.name} is stale: run `make protos` and commit")
