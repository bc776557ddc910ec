"""What the worker says when a call fails: the error as data (the user's traceback from
their own first frame), and the size check a result must pass before it is sent.

Stdlib only, Python >= 3.8: this module is copied into the user's environment.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from . import protocol as p
from .frames import MAX_PART_BYTES
from .kinds.base import ShimError
from .values import Result

_SHIM_DIR = os.path.dirname(os.path.abspath(__file__))


def user_traceback(exc: BaseException) -> str:
    """The traceback from the first frame outside the shim: the user's own code."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_SHIM_DIR):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def error_from(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ShimError):
        return p.error_dict(exc.type_name, exc.message, "", exc.code)
    return p.error_dict(type(exc).__name__, str(exc), user_traceback(exc))


def check_size(result: Result) -> None:
    if result.kind != "tensors" and len(result.data) <= MAX_PART_BYTES:
        return
    size = max(result.sizes(), default=0)
    if size > MAX_PART_BYTES:
        raise ShimError(p.ErrorCode.OUTPUT_TOO_LARGE, "OutputTooLarge",
                        f"the result is {size} bytes, over the "
                        f"{MAX_PART_BYTES}-byte limit")
