from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from modelport.errors import Kind, ModelportError
from modelport.package import ArchiveLimits, content_digest, extract_zip, zip_directory
from modelport.package.archive import _check_entries, _declared_entry_count, _write_entries

from .conftest import make_zip, write_tree


def _reject(src: Path, dest: Path, limits: ArchiveLimits | None = None) -> ModelportError:
    with pytest.raises(ModelportError) as info:
        extract_zip(src, dest, limits or ArchiveLimits())
    assert not dest.exists()
    leftovers = [p.name for p in dest.parent.iterdir() if p.name.endswith(".partial")]
    assert leftovers == []
    return info.value


def test_extracts_files_dirs_and_executable_bit(tmp_path: Path) -> None:
    src = tmp_path / "p.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("sub/", "")
        run = zipfile.ZipInfo("bin/run.sh")
        run.create_system = 3
        run.external_attr = 0o100755 << 16
        zf.writestr(run, "#!/bin/sh\n")
    dest = tmp_path / "out" / "pkg"
    extract_zip(src, dest, ArchiveLimits())
    assert (dest / "config.json").read_text() == "{}"
    assert (dest / "sub").is_dir()
    assert os.access(dest / "bin" / "run.sh", os.X_OK)
    assert not os.access(dest / "config.json", os.X_OK)


def test_keeps_single_top_level_folder(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "p.zip", {"mymodel/config.json": "{}", "mymodel/a.py": ""})
    extract_zip(src, tmp_path / "x", ArchiveLimits())
    assert (tmp_path / "x" / "mymodel" / "config.json").is_file()


def test_backslash_separators_become_folders(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "p.zip", {"model\\config.json": "{}"})
    extract_zip(src, tmp_path / "x", ArchiveLimits())
    assert (tmp_path / "x" / "model" / "config.json").read_text() == "{}"


def test_rejects_bytes_that_are_not_a_zip(tmp_path: Path) -> None:
    src = tmp_path / "p.zip"
    src.write_bytes(b"this is a text file, not an archive\n")
    err = _reject(src, tmp_path / "x")
    assert (err.kind, err.code) == (Kind.INVALID, "package.not_a_zip")
    assert "not a readable zip" in err.message and err.fix


def test_rejects_upload_over_limit(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "p.zip", {"config.json": "x" * 5000})
    err = _reject(src, tmp_path / "x", ArchiveLimits(max_upload_bytes=100))
    assert (err.kind, err.code) == (Kind.TOO_LARGE, "package.upload_too_large")
    assert "100 bytes limit" in err.message


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil", "'..'"),
        ("ok/../../evil", "'..'"),
        ("..\\evil", "'..'"),
        ("/etc/passwd", "absolute"),
        ("\\windows\\evil", "absolute"),
        ("C:\\evil.txt", "absolute"),
        ("c:/evil.txt", "absolute"),
    ],
)
def test_rejects_entries_that_escape(tmp_path: Path, name: str, why: str) -> None:
    src = make_zip(tmp_path / "p.zip", {"config.json": "{}", name: "pwned"})
    err = _reject(src, tmp_path / "out")
    assert (err.kind, err.code) == (Kind.INVALID, "package.zip_slip")
    assert name in err.message and why in err.message
    assert not (tmp_path / "evil").exists()


def test_rejects_symlink_entry(tmp_path: Path) -> None:
    src = tmp_path / "p.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("config.json", "{}")
        link = zipfile.ZipInfo("weights.bin")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/shadow")
    err = _reject(src, tmp_path / "x")
    assert err.code == "package.symlink"
    assert "weights.bin" in err.message and "symbolic link" in err.message


def test_rejects_more_entries_than_default_limit(tmp_path: Path) -> None:
    src = tmp_path / "p.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_STORED) as zf:
        for i in range(10_001):
            zf.writestr(f"f/{i}", b"")
    err = _reject(src, tmp_path / "x")
    assert (err.kind, err.code) == (Kind.TOO_LARGE, "package.too_many_entries")
    assert "10001 entries" in err.message and "10000" in err.message


def test_rejects_more_entries_than_configured_limit(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "p.zip", {f"{i}.txt": "" for i in range(4)})
    err = _reject(src, tmp_path / "x", ArchiveLimits(max_entries=3))
    assert err.code == "package.too_many_entries"


def test_entry_count_is_checked_even_when_end_record_lies(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "p.zip", {f"{i}.txt": "" for i in range(4)})
    data = bytearray(src.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = (1).to_bytes(2, "little") * 2  # claim a single entry
    src.write_bytes(bytes(data))
    err = _reject(src, tmp_path / "x", ArchiveLimits(max_entries=3))
    assert err.code == "package.too_many_entries" and "4 entries" in err.message


def test_entry_count_read_from_zip64_end_record(tmp_path: Path) -> None:
    src = tmp_path / "p.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_STORED) as zf:
        for i in range(70_000):  # more than a classic end record can count
            zf.writestr(f"{i}", b"")
    with src.open("rb") as fh:
        assert _declared_entry_count(fh) == 70_000  # known before the directory is parsed
    err = _reject(src, tmp_path / "x")
    assert "70000 entries" in err.message


def test_rejects_declared_uncompressed_size_over_limit(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "p.zip", {"a.bin": b"\0" * 600, "b.bin": b"\0" * 600})
    err = _reject(src, tmp_path / "x", ArchiveLimits(max_uncompressed_bytes=1000))
    assert (err.kind, err.code) == (Kind.TOO_LARGE, "package.too_large")
    assert "1000 bytes limit" in err.message


def _lie_about_sizes(path: Path, name: str, claimed: int) -> None:
    """Rewrite the local and central headers of ``name`` to claim ``claimed`` bytes."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
        real = info.file_size
    data = bytearray(path.read_bytes())
    enc = name.encode()
    old, new = real.to_bytes(4, "little"), claimed.to_bytes(4, "little")
    # local header: uncompressed size at offset 22; central header: at offset 24
    for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(sig)
        while at >= 0:
            name_at = at + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(enc)] == enc:
                assert data[at + size_at : at + size_at + 4] == old
                data[at + size_at : at + size_at + 4] = new
            at = data.find(sig, at + 4)
    path.write_bytes(bytes(data))


def test_lying_header_does_not_get_past_the_limit(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "p.zip", {"ok.txt": "fine", "bomb.bin": b"\0" * 1_000_000})
    _lie_about_sizes(src, "bomb.bin", 10)
    with zipfile.ZipFile(src) as zf:
        assert sum(i.file_size for i in zf.infolist()) < 1000  # the header check passes
    err = _reject(src, tmp_path / "x", ArchiveLimits(max_uncompressed_bytes=1000))
    # zipfile stops at the declared size, so the lie surfaces as a checksum mismatch
    assert err.code == "package.corrupt_zip"
    assert "bomb.bin" in err.message


def test_streaming_guard_counts_real_bytes(tmp_path: Path) -> None:
    """If a header check were fooled, the bytes actually written still hit the limit."""
    src = make_zip(tmp_path / "p.zip", {"a.bin": b"\0" * 5000})
    out = tmp_path / "out"
    out.mkdir()
    with zipfile.ZipFile(src) as zf:
        entries = _check_entries(zf.infolist(), ArchiveLimits())
        with pytest.raises(ModelportError) as info:
            _write_entries(zf, entries, out, ArchiveLimits(max_uncompressed_bytes=1000))
    assert info.value.code == "package.too_large"
    assert (out / "a.bin").stat().st_size <= 1000


def test_rejects_duplicate_entries(tmp_path: Path) -> None:
    src = tmp_path / "p.zip"
    with zipfile.ZipFile(src, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("config.json", "{}")
        zf.writestr("config.json", '{"evil": true}')
    err = _reject(src, tmp_path / "x")
    assert err.code == "package.duplicate_entry" and "config.json" in err.message


def test_rejects_file_clashing_with_folder(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "p.zip", {"model": "x", "model/config.json": "{}"})
    err = _reject(src, tmp_path / "x")
    assert err.code == "package.duplicate_entry"


def test_corrupt_entry_leaves_nothing(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "p.zip", {"a.txt": "first", "b.txt": "second" * 100})
    data = bytearray(src.read_bytes())
    at = data.find(b"PK\x03\x04", 4)  # second local header; flip bytes in its data
    data[at + 40 : at + 44] = b"\xff\xff\xff\xff"
    src.write_bytes(bytes(data))
    err = _reject(src, tmp_path / "x")
    assert err.code == "package.corrupt_zip" and "b.txt" in err.message


def test_refuses_existing_destination(tmp_path: Path) -> None:
    src = make_zip(tmp_path / "p.zip", {"a": "1"})
    (tmp_path / "x").mkdir()
    with pytest.raises(FileExistsError):
        extract_zip(src, tmp_path / "x", ArchiveLimits())


def test_zip_directory_is_deterministic_and_skips_caches(tmp_path: Path) -> None:
    src = write_tree(
        tmp_path / "src",
        {
            "config.json": "{}",
            "predict.py": "x = 1\n",
            "run.sh": "#!/bin/sh\n",
            "__pycache__/predict.cpython-311.pyc": b"\0",
            "lib/old.pyc": b"\0",
            ".git/HEAD": "ref: main\n",
            "weights/w.bin": b"\1" * 4096,
        },
    )
    (src / "run.sh").chmod(0o755)
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    zip_directory(src, first)
    for p in src.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000))
    zip_directory(src, second)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert names == ["config.json", "predict.py", "run.sh", "weights/w.bin"]
        assert stat.S_IMODE(zf.getinfo("run.sh").external_attr >> 16) == 0o755
    extract_zip(first, tmp_path / "out", ArchiveLimits())
    assert os.access(tmp_path / "out" / "run.sh", os.X_OK)
    assert content_digest(tmp_path / "out") == content_digest(src)


def test_zip_directory_can_write_into_the_folder_it_zips(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"config.json": "{}"})
    zip_directory(src, src / "pkg.zip")
    zip_directory(src, src / "pkg.zip")  # the previous zip must not be zipped into the new one
    with zipfile.ZipFile(src / "pkg.zip") as zf:
        assert zf.namelist() == ["config.json"]


def test_zip_directory_refuses_linked_folder(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"config.json": "{}"})
    (src / "loop").symlink_to(src)
    with pytest.raises(ModelportError) as info:
        zip_directory(src, tmp_path / "p.zip")
    assert info.value.code == "package.symlink" and "loop" in info.value.message
    assert not (tmp_path / "p.zip").exists()
