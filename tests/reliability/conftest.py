"""The bad-input tests' platform (issue 18 §5): one real `modelport up` per test module on
loopback, with two services every inference route can reach: ``echo`` (one text input,
stdlib only) and ``oip-sum`` (an FP32 tensor, the OIP tests' package)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, RunningPlatform, start_platform
from tests.reliability.faults import package

#: answers whatever text it gets: a model that never raises, so any 5xx is the platform's
ECHO = """
class Predictor:
    def predict(self, text):
        return {"echo": text[:100], "length": len(text)}
"""
SERVICES = ("echo", "oip-sum")


def echo_package(dest: Path) -> Path:
    return package(dest, "echo", ECHO)


@pytest.fixture(scope="module")
def bad_input(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """A platform serving ``echo`` and ``oip-sum`` (both running when it is yielded)."""
    import modelport

    work = tmp_path_factory.mktemp("bad-input")
    plat = start_platform(work / "home")
    try:
        oip_sum = shutil.copytree(ROOT / "tests" / "protocols" / "packages" / "oip_sum",
                                  work / "oip_sum")
        with modelport.Client(plat.url, home=plat.home) as client:
            client.create(str(echo_package(work / "echo")), name="echo")
            client.create(str(oip_sum), name="oip-sum")
        yield plat
    finally:
        plat.stop()
