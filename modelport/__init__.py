"""modelport: turn a model package into a production online service.

    import modelport
    client = modelport.Client("http://127.0.0.1:8000")
    svc = client.create("examples/predictor-iris")
    client.predict(svc["name"], features=[5.1, 3.5, 1.4, 0.2])
"""

from modelport.client import Client, DeployFailed
from modelport.errors import ModelportError

__all__ = ["Client", "DeployFailed", "ModelportError"]
__version__ = "0.1.0"
