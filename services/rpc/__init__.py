"""The gRPC hops between components: one way to build a server, one way to carry an error."""
