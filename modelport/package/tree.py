"""Which files make up a package directory, in a stable order.

Shared by ``zip_directory`` and ``content_digest`` so that zipping a directory and
digesting it agree on what counts as package content (caches and VCS metadata do not).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from modelport.errors import invalid

#: directory names never packaged: caches and version-control metadata
IGNORED_DIRS = frozenset({"__pycache__", ".git"})
#: file suffixes never packaged: compiled bytecode differs per interpreter
IGNORED_SUFFIXES = (".pyc",)


def is_ignored(rel_parts: tuple[str, ...]) -> bool:
    """True when a relative path lies in an ignored directory or is an ignored file."""
    if any(part in IGNORED_DIRS for part in rel_parts[:-1]):
        return True
    name = rel_parts[-1] if rel_parts else ""
    return name in IGNORED_DIRS or name.endswith(IGNORED_SUFFIXES)


def iter_files(root: Path, *, skip: tuple[Path, ...] = ()) -> Iterator[tuple[str, Path]]:
    """Yield ``(posix relative path, absolute path)`` for every package file, sorted by path.

    Symlinked files count as their target's content (a zip cannot carry links safely);
    a symlinked directory is refused rather than followed, since it may loop or reach
    outside the package. ``skip`` excludes files (a zip being written into ``root``).
    """
    root = Path(root)
    skipped = {p.resolve() for p in skip}
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        current = Path(dirpath)
        for d in list(dirnames):
            full = current / d
            if d in IGNORED_DIRS:
                dirnames.remove(d)
            elif full.is_symlink():
                rel = full.relative_to(root).as_posix()
                raise invalid(
                    "package.symlink",
                    f"'{rel}' is a symbolic link to a directory",
                    fix="replace the link with a copy of the directory it points to",
                    path=rel,
                )
        for f in filenames:
            full = current / f
            rel_path = full.relative_to(root)
            if is_ignored(rel_path.parts):
                continue
            if skipped and full.resolve() in skipped:
                continue
            if not full.is_file():  # dangling link, socket, fifo: not content
                continue
            found.append((rel_path.as_posix(), full))
    found.sort(key=lambda item: item[0])
    yield from found


def is_executable(path: Path) -> bool:
    """Only the executable bit survives into zips and digests; other mode bits are noise."""
    return bool(path.stat().st_mode & 0o111)
