"""The gateway <-> runtime data socket: worker-protocol frames on a unix socket, not gRPC."""
