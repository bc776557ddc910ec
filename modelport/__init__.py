"""modelport: turn a model package into a production online service.

    import modelport
    client = modelport.Client()  # finds the running platform (modelport/discovery.py)
    svc = client.create("examples/predictor-iris")
    client.predict(svc["name"], features=[5.1, 3.5, 1.4, 0.2])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelport.client import Client, DeployFailed
    from modelport.errors import ModelportError

__all__ = ["Client", "DeployFailed", "ModelportError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The SDK on first use: every platform process imports a ``modelport.*`` module, and
    importing the client here would load httpx (and through it rich and click) into each
    of them for nothing (about 10 MB apiece)."""
    if name in ("Client", "DeployFailed"):
        from modelport import client

        return getattr(client, name)
    if name == "ModelportError":
        from modelport.errors import ModelportError

        return ModelportError
    raise AttributeError(f"module 'modelport' has no attribute {name!r}")
