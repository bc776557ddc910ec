"""Authentication and authorization at the edge: one data-plane stage, one management gate.

- ``principal.py``: credentials (``Authorization: Bearer``, ``apikey``, ``X-Apig-AppCode``,
  the console's session cookie, or an ``SDK-HMAC-SHA256`` signature, see
  modelport/signing.py) and the principal they resolve to, carried in context variables;
- ``authenticator.py``: credentials -> principal through the registry, cached;
- ``gate.py``: ``InferenceGate``, the data plane's first stage (``DataPlane.route``); REST,
  SSE, WebSocket, OIP, KServe and gRPC all pass through it, adapters never look at
  credentials;
- ``asgi.py``: ``AuthMiddleware``, the management API's gate and audit;
- ``grpc_credentials.py``: public gRPC metadata as credentials, and the identity the
  gateway's registry channel passes on (services/registry/ownership.py keeps members to their own).

The registry holds users, keys and the audit log.
"""
