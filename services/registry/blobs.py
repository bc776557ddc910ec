"""Package blobs, content-addressed: the uploaded zip and its validated, extracted tree.

`packages/<hex>/` holds the extracted package whose content digest is sha256:<hex>;
`blobs/<hex>.zip` keeps the upload as received. The same content uploaded twice is
stored once. Validation happens before anything lands under its final name, so a
rejected upload leaves nothing behind.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from modelport.errors import not_found
from modelport.home import HomeLayout
from modelport.package import ArchiveLimits, Package, extract_zip, load_package


def _hex(digest: str) -> str:
    return digest.split(":", 1)[-1]


class PackageStore:
    def __init__(self, layout: HomeLayout, limits: ArchiveLimits) -> None:
        self.layout = layout
        self.limits = limits
        for d in (layout.packages, layout.blobs, layout.uploads):
            d.mkdir(parents=True, exist_ok=True)

    def new_upload_path(self) -> Path:
        return self.layout.uploads / f"{uuid.uuid4().hex}.zip"

    def ingest(self, zip_path: Path) -> Package:
        """Extract, validate and store an uploaded zip; returns the stored package."""
        staging = self.layout.packages / f".incoming-{uuid.uuid4().hex}"
        try:
            extract_zip(zip_path, staging, self.limits)
            pkg = load_package(staging)
            final = self.layout.packages / _hex(pkg.digest)
            if final.exists():
                shutil.rmtree(staging)
            else:
                staging.rename(final)
            blob = self.layout.blobs / f"{_hex(pkg.digest)}.zip"
            if not blob.exists():  # whole or not at all: a cut copy would pass for the blob
                part = blob.with_name(f".{blob.name}.{uuid.uuid4().hex}.part")
                try:
                    shutil.copyfile(zip_path, part)
                    part.replace(blob)
                finally:
                    part.unlink(missing_ok=True)
            return load_package(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            zip_path.unlink(missing_ok=True)

    def get(self, digest: str) -> Package:
        path = self.layout.packages / _hex(digest)
        if not path.is_dir():
            raise not_found("package.not_found", f"no uploaded package with digest {digest}",
                            "upload the package again")
        return load_package(path)
