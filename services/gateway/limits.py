"""Traffic limits: token buckets per service (spec.rate_limit, ModelArts' "traffic limit")
and per API key (its rate_limit), checked by the data plane right after auth.

A bucket holds up to ``burst`` tokens and refills at ``rate`` per second; a request takes
one. An empty bucket is a 429 whose ``Retry-After`` says when the next token comes.
Buckets live in this gateway's memory: with several gateways each enforces its share.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from modelport.errors import Kind, ModelportError

#: buckets kept before idle ones are dropped
MAX_BUCKETS = 10_000


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float:
        """0 when a token was taken, else seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def effective_burst(rate: float, burst: int) -> float:
    return float(burst) if burst > 0 else max(1.0, math.ceil(rate))


class Limits:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def _bucket(self, key: str, rate: float, burst: int) -> TokenBucket:
        cap = effective_burst(rate, burst)
        b = self._buckets.get(key)
        if b is None or b.rate != rate or b.burst != cap:
            if len(self._buckets) >= MAX_BUCKETS:
                self._prune()
            b = self._buckets[key] = TokenBucket(rate, cap, cap, self.clock())
        return b

    def _prune(self) -> None:
        """Drop buckets that have refilled (idle): forgetting them changes nothing."""
        now = self.clock()
        self._buckets = {k: b for k, b in self._buckets.items()
                         if b.tokens + (now - b.stamp) * b.rate < b.burst}

    def take(self, key: str, rate: float, burst: int = 0) -> float:
        """0 when allowed, else seconds to wait; ``rate`` <= 0 means no limit."""
        if rate <= 0:
            return 0.0
        return self._bucket(key, rate, burst).take(self.clock())

    def check_service(self, service: str, rate: float, burst: int = 0) -> None:
        wait = self.take(f"service:{service}", rate, burst)
        if wait:
            raise rate_limited(wait, "rate.service_limit",
                               f"service {service!r} accepts {rate:g} requests/s and is at "
                               "its limit", "retry after the Retry-After seconds, or raise "
                               "the service's spec.rate_limit.rps")

    def check_key(self, key_id: str, rate: float) -> None:
        wait = self.take(f"key:{key_id}", rate)
        if wait:
            raise rate_limited(wait, "rate.key_limit",
                               f"API key {key_id} may send {rate:g} requests/s and is at its "
                               "limit", "retry after the Retry-After seconds, or use a key "
                               "with a higher rate limit")


def rate_limited(wait_s: float, code: str, message: str, fix: str) -> ModelportError:
    return ModelportError(Kind.EXHAUSTED, code, message, fix,
                          details={"retry_after_s": round(wait_s, 3)})
