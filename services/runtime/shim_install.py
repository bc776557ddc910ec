"""The worker shim, installed where replicas import it from.

Every replica's python runs ``-m modelport_worker.shim``: a copy of ``modelport/worker``
(stdlib only) under a name of its own, so it never clashes with whatever the model's
environment has installed, and so a Docker replica can mount it read-only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

import modelport.worker

SHIM_PACKAGE = "modelport_worker"
_DIGEST_FILE = ".modelport-shim-digest"


def _shim_sources() -> list[tuple[str, Path]]:
    src = Path(modelport.worker.__file__).parent
    return sorted((p.relative_to(src).as_posix(), p) for p in src.rglob("*.py")
                  if "__pycache__" not in p.parts)


def install_shim(dest_root: Path) -> Path:
    """Copy ``modelport/worker`` to ``dest_root/modelport_worker``; returns that directory.

    Idempotent: a copy whose recorded digest matches the sources is left alone; a
    changed one is replaced whole (built beside it, then renamed into place).
    """
    dest_root = Path(dest_root)
    dest_root.mkdir(parents=True, exist_ok=True)
    dest = dest_root / SHIM_PACKAGE
    sources = _shim_sources()
    h = hashlib.sha256()
    for rel, path in sources:
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    digest = h.hexdigest()
    marker = dest / _DIGEST_FILE
    if marker.is_file() and marker.read_text().strip() == digest:
        return dest
    staging = dest_root / f".{SHIM_PACKAGE}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    for rel, path in sources:
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    (staging / _DIGEST_FILE).write_text(digest + "\n")
    old = None
    if dest.exists():
        old = dest_root / f".{SHIM_PACKAGE}.old.{uuid.uuid4().hex[:8]}"
        os.rename(dest, old)
    try:
        os.rename(staging, dest)
    except OSError:  # another installer got there first
        shutil.rmtree(staging, ignore_errors=True)
        if not (marker.is_file() and marker.read_text().strip() == digest):
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dest
