"""What the bench scripts share: the platform under test, process trees, wrk, timing, reports.

The scripts run as ``.venv/bin/python bench/<script>.py``, so ``bench/`` is on ``sys.path``
and they import this package as ``harness`` (``from harness.platform import Platform``);
the tests in ``tests/bench`` put ``bench/`` on ``sys.path`` the same way (their conftest).

- ``paths``: where the checkout and the bench folder are.
- ``platform``: ``modelport up`` on a fresh home: start, ready line, deploy, stop, logs.
- ``processes``: process trees from /proc (labels, CPU time, RSS), children in their own
  session, SIGTERM turned into an exception so every ``finally`` cleans up.
- ``wrk``: one wrk run and its report, parsed.
- ``timing``: bounded timing loops (sequential and concurrent) and their latency stats.
- ``iris``: the iris example measured in-process and through the gateway (run.py, tracing.py).
- ``report``: the run's context (machine, load, commit, command), tables, RESULTS.md.
"""
