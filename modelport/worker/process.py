"""The worker process itself, before and around the model: its resource limits, its exit on
running out of memory, its connection to the runtime and its working directory.

Stdlib only, Python >= 3.8: this module is copied into the user's environment.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import time
from typing import Any

from .exit_codes import EXIT_MEMORY_LIMIT


def stderr_line(message: str) -> None:
    sys.stderr.write(f"[modelport-worker] {message}\n")
    sys.stderr.flush()


def readable_poller(fd: int) -> Any:
    """``wait(timeout_s) -> bool``: whether ``fd`` has data (or hung up) within the time."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return lambda timeout_s: bool(poller.poll(int(timeout_s * 1000)))
    return lambda timeout_s: bool(select.select([fd], [], [], timeout_s)[0])


def limit_self() -> None:
    """The limits the runtime asks for (services/runtime/containment.py), set on this
    process before any model code runs; an unprivileged worker cannot raise them again."""
    import resource

    env = os.environ
    limits = [(resource.RLIMIT_CORE, 0)]
    for name, which in (("MODELPORT_MEMORY_LIMIT", resource.RLIMIT_DATA),
                        ("MODELPORT_MAX_OPEN_FILES", resource.RLIMIT_NOFILE),
                        ("MODELPORT_MAX_PROCESSES", resource.RLIMIT_NPROC)):
        if env.get(name, "").isdigit():
            limits.append((which, int(env[name])))
    for which, value in limits:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        try:
            resource.setrlimit(which, (value, value))
        except (OSError, ValueError) as exc:
            stderr_line(f"could not set resource limit {which}: {exc}")
    if env.get("MODELPORT_NO_NEW_PRIVS"):
        try:  # nothing the model runs can gain privileges (setuid binaries)
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
        except (OSError, AttributeError):
            stderr_line("could not set no_new_privs")


def exit_if_out_of_memory(exc: BaseException) -> None:
    """Under a memory limit a MemoryError stops the worker (without allocating more)."""
    if isinstance(exc, MemoryError) and os.environ.get("MODELPORT_MEMORY_LIMIT"):
        try:
            os.write(2, b"[modelport-worker] MemoryError: the model ran out of its memory "
                        b"limit; stopping the worker\n")
        finally:
            os._exit(EXIT_MEMORY_LIMIT)


def connect(path: str, timeout_s: float = 10.0) -> socket.socket:
    deadline = time.monotonic() + timeout_s
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def enter_package(package_dir: str) -> None:
    """Make the package directory the working directory, but not an import path.

    ``python -m`` puts the starting directory first on sys.path; the runtime starts the
    worker elsewhere and the shim drops that entry, so a ``json.py`` in a package cannot
    shadow the stdlib the shim uses. The kind adapter adds the package's own code
    directory when it loads the user's modules.
    """
    start = os.getcwd()
    sys.path[:] = [entry for entry in sys.path if entry not in ("", ".", start)]
    os.chdir(package_dir)
