"""Streaming front ends (SSE, WebSocket) over the data plane's chunk stream.

SSE and WebSocket are two encodings of one async iterator (``stream.ChunkStream``);
the gRPC ``PredictStream`` is the third, in ``grpc/inference.py``.
"""
