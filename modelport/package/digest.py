"""A digest of what a package contains, not of how it was zipped.

Two zips of the same files (different timestamps, order, compression, tool) give the
same digest, so an unchanged re-upload can be recognised as the same version.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from modelport.package.tree import is_executable, iter_files

_CHUNK = 1 << 20


def content_digest(root: Path) -> str:
    """Return ``"sha256:<hex>"`` over sorted relative paths, executable bits and contents.

    Each file is framed as ``path NUL mode NUL size NUL`` followed by its bytes, so no
    two different trees can produce the same byte stream. Directories contribute only
    through the files in them; ignored caches (``__pycache__``, ``.git``, ``*.pyc``) not at all.
    """
    h = hashlib.sha256()
    for rel, full in iter_files(Path(root)):
        mode = "x" if is_executable(full) else "-"
        size = full.stat().st_size
        h.update(f"{rel}\0{mode}\0{size}\0".encode())
        with full.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    return f"sha256:{h.hexdigest()}"
