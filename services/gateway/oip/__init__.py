"""The Open Inference Protocol (KServe v2) model shared by the REST and gRPC adapters:
readiness, metadata and infer (``models``), and tensors (``tensors``, over the worker's
codec in ``modelport/worker/tensors.py``)."""
