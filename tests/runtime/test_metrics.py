"""The runtime's cheaper histogram must expose exactly what prometheus_client's does."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from services.runtime.metrics import LATENCY_BUCKETS
from services.telemetry.cheap_histogram import CheapHistogram

OBSERVED = [0.0, 0.0003, 0.0005, 0.0007, 0.001, 0.02, 0.02, 3.0, 119.0, 120.0, 500.0, -1.0]


def exposition(cls: type[Histogram]) -> str:
    registry = CollectorRegistry()
    metric = cls("modelport_test_seconds", "a test histogram", ["service", "version"],
                 buckets=LATENCY_BUCKETS, registry=registry)
    for i, value in enumerate(OBSERVED):
        metric.labels("svc", str(i % 2)).observe(value)
    metric.labels("idle", "1")  # a child with nothing observed yet
    text = generate_latest(registry).decode()
    return re.sub(r"(_created\{[^}]*\}) [0-9.e+]+", r"\1 T", text)  # creation times differ


def test_cheap_histogram_exposes_the_same_samples_as_the_stock_one() -> None:
    cheap, stock = exposition(CheapHistogram), exposition(Histogram)
    assert "modelport_test_seconds_bucket" in cheap and "_created" in cheap
    assert cheap == stock
