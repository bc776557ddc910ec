"""Helpers for runtime tests: specs for the test packages, and running coroutines."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from modelport.worker.values import Result, Value, encode_inputs
from services.runtime.backends import ReplicaSpec
from services.runtime.dataplane import calls
from services.runtime.supervisor import ReplicaInfo, Supervisor

T = TypeVar("T")
PACKAGES = Path(__file__).resolve().parents[1] / "packages"


def run(coro: Coroutine[Any, Any, T], timeout_s: float = 90.0) -> T:
    """Run a test's coroutine on a fresh loop, bounded so a hang fails instead of stalling."""
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout_s)

    return asyncio.run(bounded())


def make_spec(package: str, tmp_path: Path, replica_id: str | None = None,
              **overrides: Any) -> ReplicaSpec:
    """A spec for a fresh copy of a test package, run by this interpreter as the 'venv'."""
    target = tmp_path / "packages" / package
    if not target.exists():
        shutil.copytree(PACKAGES / package, target)
    fields: dict[str, Any] = dict(
        replica_id=replica_id or f"{package.replace('_', '-')}-r1", service=package, version=1,
        kind="", python=sys.executable, package_dir=target, config={}, env={}, timeout_s=30.0,
        startup_timeout_s=30.0)
    fields.update(overrides)
    return ReplicaSpec(**fields)


async def until(check: Callable[[], Any], what: str, timeout_s: float = 15.0) -> None:
    """Poll ``check()`` until it is true, bounded, so a broken path fails instead of
    hanging."""
    for _ in range(int(timeout_s / 0.005)):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def wait_state(sup: Supervisor, replica_id: str, *states: str,
                     timeout_s: float = 30.0, where: Any = None) -> ReplicaInfo:
    """Poll until the replica is in one of ``states`` (and ``where(info)`` holds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = sup.get(replica_id)
        assert info is not None
        if info.state in states and (where is None or where(info)):
            return info
        if time.monotonic() > deadline:
            raise AssertionError(f"{replica_id} never reached {states}: {info}")
        await asyncio.sleep(0.02)


def alive(pid: int) -> bool:
    """True if ``pid`` is a live process (a zombie awaiting its reaper counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


async def gone(pid: int, timeout_s: float = 5.0) -> bool:
    """True once ``pid`` is dead (signals are delivered asynchronously: poll briefly)."""
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def log_text(path: Path, *needles: str, timeout_s: float = 10.0) -> str:
    """The log's text once it holds every needle (it arrives through the worker's stdout
    pipe, which may trail the answer on the socket); fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = path.read_text()
        if all(n in text for n in needles):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never held {needles}: ...{text[-2000:]}")
        await asyncio.sleep(0.02)


async def link_predict(link: Any, request_id: str, inputs: dict[str, Value],
                       timeout_s: float | None = None, tensor_outputs: bool = False) -> Result:
    """One unary predict straight on a WorkerLink (``link.call``, awaited)."""
    parts: list[Any] = []
    wire = encode_inputs(inputs, parts)
    reply = await calls.awaited(lambda done: link.call(request_id, wire, parts, timeout_s,
                                                      tensor_outputs, done))
    return reply.decoded()


async def replica_predict(sup: Supervisor, replica_id: str, request_id: str,
                          inputs: dict[str, Value], timeout_s: float | None = None,
                          tensor_outputs: bool = False) -> Result:
    """One unary predict on a supervised replica (``calls.start``, awaited): batching
    and the replica's default timeout apply, as for the runtime's own callers."""
    parts: list[Any] = []
    wire = encode_inputs(inputs, parts)
    reply = await calls.awaited(lambda done: calls.start(sup, replica_id, request_id, wire,
                                                         parts, timeout_s, tensor_outputs,
                                                         done))
    return reply.decoded()
