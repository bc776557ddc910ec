"""The gateway: the only public edge. Protocol adapters (rest/, grpc/) over one data plane."""
