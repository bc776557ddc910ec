"""Fixtures shared with other test packages: the real OTLP receiver of the tracing tests."""

from tests.observability.test_tracing import receiver  # noqa: F401 - a pytest fixture
