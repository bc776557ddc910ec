"""Runtime-level tests here run real workers from an installed shim."""

from tests.runtime.conftest import shim_root  # noqa: F401
