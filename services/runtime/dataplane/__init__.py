"""The runtime's data plane: a request from its front door (the gRPC servicer, the data
socket) to a worker: admission to a replica, adaptive batching, the one calling
convention (``calls.py``), deadlines on one timer, and each request's observation."""
