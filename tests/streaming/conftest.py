"""One platform for the streaming tests, with the `ticker` streaming model deployed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelport
from tests.conftest import RunningPlatform, open_to_workers, start_platform

TICKER = Path(__file__).parent / "packages" / "ticker"


@pytest.fixture(autouse=True)
def _ticker_reaches_tmp_path(tmp_path: Path) -> None:
    """The ticker writes its log (and reads gates) under tmp_path, as its own user."""
    open_to_workers(tmp_path)


@pytest.fixture(scope="package")
def stream_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    plat = start_platform(tmp_path_factory.mktemp("home"))
    try:
        with modelport.Client(plat.url) as c:
            c.create(TICKER, name="ticker")
        yield plat
    finally:
        plat.stop()


@pytest.fixture
def ticker_url(stream_platform: RunningPlatform) -> str:
    return f"{stream_platform.url}/v1/services/ticker/infer"


def ticker_inputs(n: int, *, delay: float = 0.0, gate: str = "", log: str = "",
                  fail_at: int = -1, size: int = 0) -> dict:
    return {"n": n, "delay": delay, "gate": gate, "log": log, "fail_at": fail_at, "size": size}


def model_log(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_for_line(path: Path, line: str, timeout: float = 30) -> list[str]:
    """The model's log once it holds `line` (the model reached that point)."""
    deadline = time.monotonic() + timeout
    while line not in model_log(path):
        assert time.monotonic() < deadline, f"model log never said {line!r}: {model_log(path)}"
        time.sleep(0.05)
    return model_log(path)


def wait_until_still(path: Path, quiet: float = 1.0, timeout: float = 60) -> list[str]:
    """The model's log once it has not grown for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = model_log(path), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the model never stopped producing"
        time.sleep(0.1)
        now = model_log(path)
        if now != last:
            last, since = now, time.monotonic()
    return last
