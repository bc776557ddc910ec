"""A blocking call in a daemon thread of its own, awaited as a future of the running loop.

For calls that may block for minutes (a docker build, ``container.wait()``): run on the
loop's default executor they would hold one of its few threads, and an executor thread
still blocked keeps the process from exiting. A daemon thread of its own does neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def in_own_thread(fn: Callable[[], T], name: str) -> asyncio.Future[T]:
    """``fn()`` in a new daemon thread named ``name``; its result (or exception) as a
    future of this loop. A loop that closed meanwhile is left alone."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def body() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the loop, raised where awaited
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(settle, False, exc)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, True, result)

    threading.Thread(target=body, name=name, daemon=True).start()
    return future
