"""A Prometheus histogram for hot paths that all run on one event loop thread."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import Histogram
from prometheus_client.metrics import _use_created
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString


class CheapHistogram(Histogram):
    """prometheus_client's Histogram, exposed the same, with an ``observe`` about four
    times cheaper: a bisect and two additions instead of a lock taken per bucket and sum
    (the runtime records up to seven per request, the gateway one). Observations and
    scrapes must all run in one thread (an event loop's): nothing takes a lock."""

    def _metric_init(self) -> None:
        super()._metric_init()
        self._counts = [0.0] * len(self._upper_bounds)
        self._total = 0.0

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        if amount != amount:  # NaN falls in no bucket (as in the stock Histogram)
            self._total += amount
            return
        self._counts[bisect_left(self._upper_bounds, amount)] += 1.0
        self._total += amount

    def _child_samples(self) -> Iterable[Sample]:
        samples = []
        acc = 0.0
        for bound, n in zip(self._upper_bounds, self._counts, strict=True):
            acc += n
            samples.append(Sample("_bucket", {"le": floatToGoString(bound)}, acc, None, None))
        samples.append(Sample("_count", {}, acc, None, None))
        if self._upper_bounds[0] >= 0:
            samples.append(Sample("_sum", {}, self._total, None, None))
        if _use_created:
            samples.append(Sample("_created", {}, self._created, None, None))
        return tuple(samples)
