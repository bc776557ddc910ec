"""gRPC adapters of the gateway (public inference service)."""
