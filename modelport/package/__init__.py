"""Model packages: safe unpacking, content digests, discovery and validation.

A package is a zip or folder whose config.json says which of three kinds it is
(file contract, predictor, ModelArts); see DESIGN.md "Model package formats".
"""

from modelport.package.archive import ArchiveLimits, extract_zip, zip_directory
from modelport.package.digest import content_digest
from modelport.package.load import load_package
from modelport.package.model import InputSpec, OutputSpec, Package

__all__ = [
    "ArchiveLimits",
    "InputSpec",
    "OutputSpec",
    "Package",
    "content_digest",
    "extract_zip",
    "load_package",
    "zip_directory",
]
