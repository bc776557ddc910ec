from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

from modelport.package import ArchiveLimits, content_digest, extract_zip

from .conftest import write_tree

FILES = {"config.json": '{"name": "m"}', "predict.py": "print(1)\n", "w/weights.bin": b"\1\2\3"}


def _zip(
    path: Path, files: dict[str, str | bytes], *, reverse: bool, when: tuple[int, ...], method: int
) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name in sorted(files, reverse=reverse):
            zf.writestr(zipfile.ZipInfo(name, date_time=when), files[name])
    return path


def test_digest_has_sha256_prefix(tmp_path: Path) -> None:
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", content_digest(write_tree(tmp_path, FILES)))


def test_same_content_zipped_twice_gives_same_digest(tmp_path: Path) -> None:
    a = _zip(
        tmp_path / "a.zip",
        FILES,
        reverse=False,
        when=(1999, 1, 1, 0, 0, 0),
        method=zipfile.ZIP_STORED,
    )
    b = _zip(
        tmp_path / "b.zip",
        FILES,
        reverse=True,
        when=(2024, 6, 1, 12, 30, 0),
        method=zipfile.ZIP_DEFLATED,
    )
    assert a.read_bytes() != b.read_bytes()
    extract_zip(a, tmp_path / "a", ArchiveLimits())
    extract_zip(b, tmp_path / "b", ArchiveLimits())
    assert content_digest(tmp_path / "a") == content_digest(tmp_path / "b")


def test_content_change_changes_digest(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", FILES)
    before = content_digest(root)
    (root / "w" / "weights.bin").write_bytes(b"\1\2\4")
    assert content_digest(root) != before


def test_rename_changes_digest(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", FILES)
    before = content_digest(root)
    (root / "predict.py").rename(root / "predictor.py")
    assert content_digest(root) != before


def test_executable_bit_changes_digest_but_other_mode_bits_do_not(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", FILES)
    (root / "predict.py").chmod(0o644)
    before = content_digest(root)
    (root / "predict.py").chmod(0o600)
    assert content_digest(root) == before
    (root / "predict.py").chmod(0o755)
    assert content_digest(root) != before


def test_timestamps_empty_dirs_and_caches_do_not_count(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", FILES)
    before = content_digest(root)
    os.utime(root / "config.json", (1, 1))
    (root / "empty").mkdir()
    write_tree(root, {"__pycache__/predict.cpython-311.pyc": b"\0", "x.pyc": b"\0"})
    assert content_digest(root) == before


def test_path_and_content_boundaries_are_framed(tmp_path: Path) -> None:
    one = write_tree(tmp_path / "one", {"a": "bc"})
    two = write_tree(tmp_path / "two", {"ab": "c"})
    assert content_digest(one) != content_digest(two)
