"""The runtime: a per-host agent that supervises replicas and serves their data plane.

- ``supervisor.py``: replicas' lifecycle (start, health, restart with backoff, stop)
- ``backends/``: where a replica runs (``process.py``: a local worker subprocess)
- ``worker/``: the runtime's end of the worker protocol (link, requests in flight, listener, errors)
"""
