"""What a worker's failure means to a caller: exit codes, worker errors and timeouts as
ModelportErrors (each with the fix), written once for the link, the batcher and the backends."""

from __future__ import annotations

import signal
from typing import Any

from modelport.errors import Kind, ModelportError
from modelport.worker.exit_codes import EXIT_MEMORY_LIMIT
from modelport.worker.protocol import ErrorCode

#: longest user error message passed on to clients; the full text is in the replica log
MAX_ERROR_MESSAGE = 2000

_CRASH_FIX = ("see the replica log for what the model printed before it exited; the replica "
              "is restarted automatically")


def describe_exit(code: int | None) -> str:
    """``exited (code 1)`` / ``was killed by SIGKILL`` / ``exited``."""
    if code is None:
        return "exited"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    if code == EXIT_MEMORY_LIMIT:
        return "ran out of its memory limit and was stopped"
    return f"exited (code {code})"


def crashed_error(code: int | None, request_id: str | None = None,
                  during: str = "while handling this request",
                  started: bool = True) -> ModelportError:
    """``worker.crashed``; ``started=False`` (``details.started``) for a request still
    queued in the worker behind another, which may safely be sent again."""
    details: dict[str, Any] = {}
    if code is not None:
        details["exit_code"] = code
    if request_id:
        details["request_id"] = request_id
    if not started:
        details["started"] = False
        during = "before it started this request (it was queued behind another one)"
    message = f"the model process {describe_exit(code)}" + (f" {during}" if during else "")
    return ModelportError(Kind.UNAVAILABLE, "worker.crashed", message, fix=_CRASH_FIX,
                          details=details)


#: errors the shim detected (its ``code``) -> (kind, our code ("" = the same), whether the
#: message names the exception type, the fix; ``{where}`` names the request)
_SHIM_ERRORS: dict[str, tuple[Kind, str, bool, str]] = {
    ErrorCode.INVALID_INPUT: (Kind.INVALID, "request.invalid_input", False,
                              "send the inputs declared in the package's config.json"),
    ErrorCode.TIMEOUT: (Kind.DEADLINE, "request.timeout", False,
                        "raise timeout_s, or make the model faster"),
    ErrorCode.CANCELLED: (Kind.UNAVAILABLE, "request.cancelled", False, ""),
    ErrorCode.SHUTTING_DOWN: (Kind.UNAVAILABLE, "", False,
                              "retry; another replica or the restarted one will serve it"),
    ErrorCode.NOT_READY: (Kind.UNAVAILABLE, "", False,
                          "retry; another replica or the restarted one will serve it"),
    ErrorCode.DUPLICATE_ID: (Kind.CONFLICT, "request.duplicate_id", False,
                             "use a fresh request id per request"),
    ErrorCode.OUTPUT_TOO_LARGE: (Kind.MODEL, "model.output_too_large", False,
                                 "return a smaller result"),
    ErrorCode.BATCH_INVALID: (Kind.MODEL, "model.batch_invalid", True,
                              "make predict_batch return a list with one result (or "
                              "Exception) per input, in input order"),
    ErrorCode.OUTPUT_INVALID: (Kind.MODEL, "model.output_invalid", True,
                               "return JSON-serialisable values or bytes (see the replica log)"),
    ErrorCode.ENTRYPOINT_FAILED: (Kind.MODEL, "model.entrypoint_failed", False,
                                  "see the replica log for the entrypoint's output{where}"),
}


def error_from_worker(err: dict[str, Any], request_id: str = "") -> ModelportError:
    """A ``done``/``setup_failed`` error from the worker as a ModelportError.

    Errors the shim detected carry a ``code``; anything else is the user's exception and
    becomes ``Kind.MODEL`` with ``Type: message`` (the traceback stays in the replica log).
    """
    code = err.get("code")
    type_name = str(err.get("type") or "Exception")
    message = str(err.get("message") or "")
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[:MAX_ERROR_MESSAGE] + "... (truncated; full text in the replica log)"
    details: dict[str, Any] = {"error_type": type_name}
    if request_id:
        details["request_id"] = request_id
    where = f" (request {request_id})" if request_id else ""
    known = _SHIM_ERRORS.get(code) if isinstance(code, str) else None
    if known is not None:
        kind, our_code, with_type, fix = known
        return ModelportError(kind, our_code or str(code),
                              f"{type_name}: {message}" if with_type else message,
                              fix=fix.format(where=where), details=details)
    return ModelportError(Kind.MODEL, "model.error", f"{type_name}: {message}",
                          fix=f"the model's code raised; the traceback is in the replica "
                              f"log{where}", details=details)


def unavailable_error(message: str) -> ModelportError:
    return ModelportError(Kind.UNAVAILABLE, "worker.unavailable", message,
                          fix="retry; the runtime restarts the model process")


def timeout_error(request_id: str, seconds: float) -> ModelportError:
    """``request.timeout``: the model did not answer within ``seconds`` (the link's unary,
    stream and batch calls and the batcher all say it the same way)."""
    return ModelportError(Kind.DEADLINE, "request.timeout",
                          f"the model did not answer within {seconds:g}s",
                          fix="raise the service's timeout_s, or make predict faster",
                          details={"request_id": request_id})


def whole_timeout(err: ModelportError, timeout_s: float, waited_s: float,
                  left_s: float | None = None) -> ModelportError:
    """``err``, and when it is a ``request.timeout`` of a request that first waited for its
    turn on the replica, said with the request's whole timeout: the worker only knew what
    was left of it ("did not answer within 0.01s" of a 2 s timeout misleads). ``left_s``:
    what the worker was given (default: the timeout less the wait)."""
    if err.code != "request.timeout" or not timeout_s or waited_s < 0.01:
        return err
    if left_s is None:
        left_s = max(0.001, round(timeout_s - waited_s, 2))
    if left_s >= timeout_s:
        return err
    return ModelportError(
        Kind.DEADLINE, "request.timeout",
        f"the model did not answer within the request's {timeout_s:g}s timeout "
        f"({waited_s:.1f}s waiting for its turn on the replica, then {left_s:g}s at the "
        "model)", fix="raise the service's timeout_s, add replicas, or make predict faster",
        details=err.details)


def duplicate_error(request_id: str, name: str) -> ModelportError:
    return ModelportError(Kind.CONFLICT, "request.duplicate_id",
                          f"request {request_id!r} is already in flight on {name}",
                          fix="use a fresh request id per request")


def setup_error(err: dict[str, Any]) -> ModelportError:
    type_name = str(err.get("type") or "Exception")
    message = str(err.get("message") or "")[:MAX_ERROR_MESSAGE]
    if type_name == "ConfigError":
        return ModelportError(Kind.INVALID, "package.config_invalid", f"config.json: {message}",
                              fix="fix the package's config.json and upload a new version",
                              details={"error_type": type_name})
    return ModelportError(Kind.MODEL, "worker.setup_failed", f"setup raised {type_name}: {message}",
                          fix="see the replica log for the traceback",
                          details={"error_type": type_name})

