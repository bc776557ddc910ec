"""Prometheus series on the request path, shared by the gateway's and the runtime's metrics.

``labels()`` validates and hashes its arguments on every call, and a request records
several observations, so each metric's child for a label set is looked up once and kept
(``LabelCache``). Both count requests by HTTP status class (``code_class``).
"""

from __future__ import annotations

from typing import Any


def code_class(http_status: int) -> str:
    """The ``code_class`` label: 2xx, 4xx, 5xx..."""
    return f"{http_status // 100}xx"


class LabelCache:
    """``metric.labels(*labels)``, each child made once."""

    __slots__ = ("_children",)

    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child
