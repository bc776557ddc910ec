"""The suite's wrk report parser (bench/harness/wrk.py), on real wrk 4.1.0 output captured
on this machine."""

from __future__ import annotations

import pytest
from harness.wrk import duration_ms, parse_wrk

# `wrk -t1 -c32 -d2s --latency -s bench/wrk/post.lua` against bench/limit_app.py (noop)
OK_C32 = """\
Running 2s test @ http://127.0.0.1:18765/v1/services/noop/infer
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.00ms    1.75ms  29.49ms   80.12%
    Req/Sec    10.70k     1.96k   16.09k    75.00%
  Latency Distribution
     50%    2.77ms
     75%    3.70ms
     90%    4.72ms
     99%    9.76ms
  21337 requests in 2.01s, 2.81MB read
Requests/sec:  10627.15
Transfer/sec:      1.40MB
"""

# the same at c=1 against a path the app does not route: every answer is a 404
NON_2XX = """\
Running 1s test @ http://127.0.0.1:18765/v1/services/nope
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   232.80us  205.40us   4.07ms   97.65%
    Req/Sec     4.63k   506.93     5.85k    81.82%
  Latency Distribution
     50%  207.00us
     75%  238.00us
     90%  272.00us
     99%    1.06ms
  5071 requests in 1.10s, 737.87KB read
  Non-2xx or 3xx responses: 5071
Requests/sec:   4611.26
Transfer/sec:    670.97KB
"""

# a server that closes every other connection right after reading the request
SOCKET_ERRORS = """\
Running 1s test @ http://127.0.0.1:18768/x
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    91.57us   90.51us   2.49ms   98.91%
    Req/Sec     3.26k   362.17     3.76k    54.55%
  Latency Distribution
     50%   89.00us
     75%   99.00us
     90%  109.00us
     99%  191.00us
  3560 requests in 1.10s, 139.06KB read
  Socket errors: connect 0, read 7119, write 0, timeout 0
Requests/sec:   3237.52
Transfer/sec:    126.47KB
"""

# a server that accepts connections and never answers
NOTHING = """\
Running 2s test @ http://127.0.0.1:18767/x
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     0.00      0.00     0.00      -nan%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  0 requests in 2.01s, 0.00B read
Requests/sec:      0.00
Transfer/sec:       0.00B"""


def test_success_report_gives_percentiles_and_rate() -> None:
    r = parse_wrk(OK_C32)
    assert (r.requests, r.duration_s, r.rps) == (21337, 2.01, 10627.15)
    assert (r.p50_ms, r.p75_ms, r.p90_ms, r.p99_ms) == (2.77, 3.70, 4.72, 9.76)
    assert r.non2xx == 0 and r.socket_errors == {}
    assert r.problems() == ""


def test_microsecond_latencies_and_non_2xx_count() -> None:
    r = parse_wrk(NON_2XX)
    assert r.p50_ms == pytest.approx(0.207) and r.p99_ms == pytest.approx(1.06)
    assert r.non2xx == 5071
    assert r.problems() == "5071 non-2xx/3xx responses"


def test_socket_errors_fail_the_run() -> None:
    r = parse_wrk(SOCKET_ERRORS)
    assert r.socket_errors == {"connect": 0, "read": 7119, "write": 0, "timeout": 0}
    assert r.problems() == "socket errors read 7119"


def test_no_completed_request_fails_the_run() -> None:
    r = parse_wrk(NOTHING)
    assert r.requests == 0 and r.rps == 0.0
    assert r.problems() == "no request completed"


def test_report_without_latency_distribution_is_refused() -> None:
    without = "\n".join(line for line in OK_C32.splitlines() if "%  " not in line)
    with pytest.raises(ValueError, match="--latency"):
        parse_wrk(without)


@pytest.mark.parametrize(("text", "ms"), [("207.00us", 0.207), ("9.76ms", 9.76),
                                          ("1.02s", 1020.0), ("1.50m", 90_000.0)])
def test_time_units(text: str, ms: float) -> None:
    assert duration_ms(text) == pytest.approx(ms)
