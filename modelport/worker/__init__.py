"""The worker shim: the process that runs a model package inside the user's environment.

Stdlib only and Python >= 3.8, with relative imports only: the runtime copies this
directory into place as ``modelport_worker`` (see ``services/runtime/supervisor.py``
``install_shim``) and runs ``<env python> -m modelport_worker.shim``. Nothing else of
modelport exists in the user's environment.

- ``protocol.py``: the wire (frames, message kinds, Value/Result), shared with the runtime
- ``shim.py``: the process's loop
- ``kinds/``: one adapter per package kind
"""
