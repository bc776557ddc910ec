from tests.runtime.conftest import shim_root  # noqa: F401  (the installed worker shim)
