"""Safe extraction of untrusted package zips, and deterministic zipping of directories.

An uploaded zip is hostile until proven otherwise: entry names may climb out of the
destination (``../``, ``/etc/passwd``, ``C:\\``), entries may be symlinks, and headers may
understate sizes (zip bombs). Every check fails with a ``ModelportError`` naming the
offending entry, and a rejected zip leaves nothing behind.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from modelport.errors import ModelportError, invalid, too_large
from modelport.package.tree import is_executable, iter_files

MiB = 1 << 20
GiB = 1 << 30
_CHUNK = 1 << 20
#: the earliest time a zip can store; fixed so re-zipping the same files gives the same bytes
_EPOCH = (1980, 1, 1, 0, 0, 0)
_DRIVE = re.compile(r"^[A-Za-z]:")
#: the longest file name and relative path an entry may have, in UTF-8 bytes: what Linux
#: file systems take (NAME_MAX 255), and a path that fits PATH_MAX below any home
NAME_MAX = 255
PATH_MAX = 2048
#: an entry name is quoted in errors up to this many characters
SHOWN_NAME = 120


@dataclass
class ArchiveLimits:
    """Bounds on what one upload may cost to store and unpack."""

    max_upload_bytes: int = 100 * MiB
    max_entries: int = 10_000
    max_uncompressed_bytes: int = 2 * GiB


def extract_zip(src: Path, dest: Path, limits: ArchiveLimits) -> None:
    """Unpack ``src`` into the new directory ``dest``, refusing anything unsafe.

    Work happens in a temporary directory beside ``dest`` that is renamed into place
    only when every entry is written, so ``dest`` either holds the whole package or
    does not exist. The size limit is checked against the declared sizes first and
    again against the bytes actually written, so a lying header cannot get past it.
    """
    src, dest = Path(src), Path(dest)
    if dest.exists():
        raise FileExistsError(f"extraction target already exists: {dest}")
    size = src.stat().st_size
    if size > limits.max_upload_bytes:
        raise too_large(
            "package.upload_too_large",
            f"the upload is {_human(size)}, over the {_human(limits.max_upload_bytes)} limit",
            fix="leave out files the model does not need at run time (datasets, checkpoints, "
            ".git), or ask the operator to raise max_upload_bytes",
        )
    with src.open("rb") as fh:
        declared = _declared_entry_count(fh)
        if declared is not None and declared > limits.max_entries:
            raise _too_many(declared, limits)
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
            raise invalid(
                "package.not_a_zip",
                f"the upload is not a readable zip archive ({exc})",
                fix="upload a .zip file (for example `zip -r model.zip .` inside the package "
                "folder), or pass the folder itself to `modelport create`",
            ) from None
        with zf:
            entries = _check_entries(zf.infolist(), limits)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(
                tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
            )
            try:
                _write_entries(zf, entries, tmp, limits)
                tmp.chmod(0o755)
                os.rename(tmp, dest)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise


def zip_directory(src_dir: Path, dest_zip: Path) -> None:
    """Zip a package directory so the same files always give the same zip.

    Entries are sorted, timestamps fixed and only the executable bit kept;
    ``__pycache__``, ``.git`` and ``*.pyc`` are left out. The zip is written beside
    ``dest_zip`` and renamed, so a failure never leaves a truncated archive.
    """
    src_dir, dest_zip = Path(src_dir), Path(dest_zip)
    if not src_dir.is_dir():
        raise NotADirectoryError(f"not a directory: {src_dir}")
    dest_zip.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{dest_zip.name}.", suffix=".partial", dir=dest_zip.parent
    )
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel, full in iter_files(src_dir, skip=(dest_zip, tmp)):
                info = zipfile.ZipInfo(rel, date_time=_EPOCH)
                info.create_system = 3  # unix, so external_attr carries a mode
                info.external_attr = (0o100755 if is_executable(full) else 0o100644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                info.file_size = full.stat().st_size  # lets zipfile pick zip64 for big weights
                with full.open("rb") as fin, zf.open(info, "w") as fout:
                    shutil.copyfileobj(fin, fout, _CHUNK)
        os.replace(tmp, dest_zip)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    is_dir: bool


def _check_entries(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> list[_Entry]:
    """Validate every entry before anything touches the disk."""
    if len(infos) > limits.max_entries:
        raise _too_many(len(infos), limits)
    entries: list[_Entry] = []
    files: set[tuple[str, ...]] = set()
    dirs: set[tuple[str, ...]] = set()
    declared_total = 0
    for info in infos:
        parts = _safe_parts(info.filename)
        if not parts:
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise invalid(
                "package.symlink",
                f"zip entry {_shown(info.filename)} is a symbolic link",
                fix="replace the link with the file or folder it points to before zipping "
                "(for example `zip -r` without `--symlinks`)",
                path=_shown(info.filename, quote=False),
            )
        if info.flag_bits & 0x1:
            raise invalid(
                "package.encrypted",
                f"zip entry {_shown(info.filename)} is password-protected",
                fix="zip the package again without a password",
                path=_shown(info.filename, quote=False),
            )
        is_dir = info.filename.replace("\\", "/").endswith("/")
        clash = parts in files or (not is_dir and parts in dirs)
        clash = clash or any(parts[:i] in files for i in range(1, len(parts)))
        if clash:
            raise invalid(
                "package.duplicate_entry",
                f"zip entry {_shown(info.filename)} appears twice, or clashes with a file of that "
                "name",
                fix="zip the package again from a clean folder so each path appears once",
                path=_shown(info.filename, quote=False),
            )
        dirs.update(parts[:i] for i in range(1, len(parts) + (1 if is_dir else 0)))
        if not is_dir:
            files.add(parts)
            declared_total += info.file_size
        entries.append(_Entry(info, parts, is_dir))
    if declared_total > limits.max_uncompressed_bytes:
        raise _too_big(declared_total, limits)
    return entries


def _safe_parts(name: str) -> tuple[str, ...]:
    """Split an entry name into path parts, refusing any that could leave the destination."""
    norm = name.replace("\\", "/")
    if "\0" in norm:
        raise _slip(name, "contains a NUL byte")
    if norm.startswith("/") or _DRIVE.match(norm):
        raise _slip(name, "is an absolute path")
    parts = tuple(p for p in norm.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _slip(name, "climbs out of the package with '..'")
    longest = max((len(p.encode("utf-8", "surrogateescape")) for p in parts), default=0)
    if longest > NAME_MAX or len("/".join(parts).encode("utf-8", "surrogateescape")) > PATH_MAX:
        raise _name_too_long(name)
    return parts


def _write_entries(
    zf: zipfile.ZipFile, entries: list[_Entry], root: Path, limits: ArchiveLimits
) -> None:
    """Stream entries to disk, counting real bytes against the limit as they arrive."""
    written_total = 0
    for entry in entries:
        target = root.joinpath(*entry.parts)
        if entry.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        written = crc = 0
        try:
            with zf.open(entry.info) as fin, target.open("xb") as fout:
                while chunk := fin.read(_CHUNK):
                    written += len(chunk)
                    written_total += len(chunk)
                    if written_total > limits.max_uncompressed_bytes:
                        raise _too_big(written_total, limits, actual=True)
                    if written > entry.info.file_size:
                        raise _corrupt(entry.info.filename, "holds more data than its header says")
                    crc = zlib.crc32(chunk, crc)
                    fout.write(chunk)
            # zipfile stops at the declared size and checks the CRC only when the data ends
            # there too: a size that understates the data would be a silently cut file
            if crc != entry.info.CRC:
                raise _corrupt(entry.info.filename, "its data does not match its checksum "
                               "(a declared size that is smaller than the data)")
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise _corrupt(entry.info.filename, str(exc)) from None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:  # within the limits, but not on this disk
                raise _name_too_long(entry.info.filename) from None
            if exc.errno == errno.EINVAL:  # zipfile seeking to a header offset before 0
                raise _corrupt(entry.info.filename, "its header points outside the "
                               "archive") from None
            raise
        except NotImplementedError as exc:
            raise invalid(
                "package.unsupported_compression",
                f"zip entry {_shown(entry.info.filename)} uses a compression method this "
                f"server cannot read ({exc})",
                fix="zip the package again with standard deflate compression",
                path=_shown(entry.info.filename, quote=False),
            ) from None
        mode = entry.info.external_attr >> 16
        target.chmod(0o755 if entry.info.create_system == 3 and mode & 0o111 else 0o644)


def _declared_entry_count(fh: BinaryIO) -> int | None:
    """Read the entry count from the end-of-central-directory record without parsing
    the directory, so a zip claiming millions of entries is refused before it costs memory."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    span = min(size, 65535 + 22)
    fh.seek(size - span)
    tail = fh.read(span)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    (count,) = struct.unpack("<H", tail[at + 10 : at + 12])
    if count != 0xFFFF or at < 20 or tail[at - 20 : at - 16] != b"PK\x06\x07":
        return count
    (offset,) = struct.unpack("<Q", tail[at - 12 : at - 4])  # zip64 end record position
    if offset + 40 > size:
        return None
    fh.seek(offset)
    record = fh.read(40)
    if record[:4] != b"PK\x06\x06":
        return None
    return struct.unpack("<Q", record[32:40])[0]


def _slip(name: str, why: str) -> ModelportError:
    return invalid(
        "package.zip_slip",
        f"zip entry {_shown(name)} {why}",
        fix="zip the package from inside its folder so every entry is a relative path "
        "below the package root",
        path=_shown(name, quote=False),
    )


def _name_too_long(name: str) -> ModelportError:
    return invalid(
        "package.name_too_long",
        f"zip entry {_shown(name)} has a name or path longer than a file system takes "
        f"({NAME_MAX} bytes a name, {PATH_MAX} a path)",
        fix="shorten the file or folder names in the package and zip it again",
        path=_shown(name, quote=False),
    )


def _shown(name: str, quote: bool = True) -> str:
    """An entry name as errors quote it: at most SHOWN_NAME characters."""
    cut = name if len(name) <= SHOWN_NAME else name[: SHOWN_NAME - 3] + "..."
    return f"'{cut}'" if quote else cut


def _corrupt(name: str, why: str) -> ModelportError:
    return invalid(
        "package.corrupt_zip",
        f"zip entry {_shown(name)} is damaged: {why}",
        fix="create the zip again and upload it again",
        path=_shown(name, quote=False),
    )


def _too_many(count: int, limits: ArchiveLimits) -> ModelportError:
    return too_large(
        "package.too_many_entries",
        f"the zip has {count} entries, over the limit of {limits.max_entries}",
        fix="leave out files the model does not need at run time (datasets, caches, "
        "node_modules), or ask the operator to raise max_entries",
    )


def _too_big(total: int, limits: ArchiveLimits, *, actual: bool = False) -> ModelportError:
    what = "unpacks to more than" if actual else f"would unpack to {_human(total)}, over"
    return too_large(
        "package.too_large",
        f"the zip {what} the {_human(limits.max_uncompressed_bytes)} limit",
        fix="leave out files the model does not need at run time, or ask the operator to "
        "raise max_uncompressed_bytes",
    )


def _human(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
