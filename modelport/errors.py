"""One error type for the whole platform, translated once per transport.

Each error carries a transport-neutral ``kind`` (what the caller should do), a
stable ``code`` (what went wrong, for scripts and docs), a human ``message``, a
``fix`` saying how to put it right, and optionally the JSON ``path`` it concerns
and a list of sub-``problems`` (validation reports every problem at once).
Adapters map ``kind`` to HTTP and gRPC status through the tables below and never
send ``str()`` of an arbitrary exception to a client.
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Kind(StrEnum):
    INVALID = "invalid"  # the request or package is wrong: fix it and retry
    UNAUTHENTICATED = "unauthenticated"  # no valid credential: send one (401)
    FORBIDDEN = "forbidden"  # a valid credential without the right scope (403)
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"  # the path exists; use one of its methods
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    EXHAUSTED = "exhausted"  # queue full, rate limited: retry later
    STORAGE = "storage"  # the platform's disk is full: free space, then retry (507)
    DEADLINE = "deadline"
    UNAVAILABLE = "unavailable"  # not ready yet / stopped: retry later
    MODEL = "model"  # the user's model code failed
    INTERNAL = "internal"  # our bug: only the request id goes out


HTTP_STATUS: dict[Kind, int] = {
    Kind.INVALID: 422,
    Kind.UNAUTHENTICATED: 401,
    Kind.FORBIDDEN: 403,
    Kind.NOT_FOUND: 404,
    Kind.METHOD_NOT_ALLOWED: 405,
    Kind.CONFLICT: 409,
    Kind.TOO_LARGE: 413,
    Kind.EXHAUSTED: 429,
    Kind.STORAGE: 507,
    Kind.DEADLINE: 504,
    Kind.UNAVAILABLE: 503,
    Kind.MODEL: 500,
    Kind.INTERNAL: 500,
}

# Names of grpc.StatusCode members; kept as strings so this module stays import-light.
GRPC_STATUS: dict[Kind, str] = {
    Kind.INVALID: "INVALID_ARGUMENT",
    Kind.UNAUTHENTICATED: "UNAUTHENTICATED",
    Kind.FORBIDDEN: "PERMISSION_DENIED",
    Kind.NOT_FOUND: "NOT_FOUND",
    Kind.METHOD_NOT_ALLOWED: "UNIMPLEMENTED",
    Kind.CONFLICT: "ALREADY_EXISTS",
    Kind.TOO_LARGE: "RESOURCE_EXHAUSTED",
    Kind.EXHAUSTED: "RESOURCE_EXHAUSTED",
    Kind.STORAGE: "RESOURCE_EXHAUSTED",
    Kind.DEADLINE: "DEADLINE_EXCEEDED",
    Kind.UNAVAILABLE: "UNAVAILABLE",
    Kind.MODEL: "ABORTED",
    Kind.INTERNAL: "INTERNAL",
}

#: trailing-metadata key that carries the full error as JSON across gRPC hops
GRPC_METADATA_KEY = "modelport-error"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located by its JSON path."""

    path: str
    message: str
    fix: str = ""
    code: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"path": self.path, "message": self.message}
        if self.fix:
            out["fix"] = self.fix
        if self.code:
            out["code"] = self.code
        return out


@dataclass
class ModelportError(Exception):
    kind: Kind
    code: str
    message: str
    fix: str = ""
    path: str = ""
    problems: list[Problem] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        text = self.message
        if self.fix:
            text += f" ({self.fix})"
        for p in self.problems:
            text += f"\n  - {p.path}: {p.message}" + (f" -> {p.fix}" if p.fix else "")
        return text

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": str(self.kind), "code": self.code, "message": self.message}
        if self.fix:
            out["fix"] = self.fix
        if self.path:
            out["path"] = self.path
        if self.problems:
            out["problems"] = [p.to_dict() for p in self.problems]
        if self.details:
            out["details"] = self.details
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelportError:
        return cls(
            kind=Kind(data.get("kind", "internal")),
            code=data.get("code", "internal"),
            message=data.get("message", ""),
            fix=data.get("fix", ""),
            path=data.get("path", ""),
            problems=[Problem(**p) for p in data.get("problems", [])],
            details=data.get("details", {}),
        )


def invalid(code: str, message: str, fix: str = "", path: str = "", **kw: Any) -> ModelportError:
    return ModelportError(Kind.INVALID, code, message, fix, path, **kw)


class ErrorOfKind(Protocol):
    """``not_found("service.not_found", "no service 'x'", "list them with ...")``."""

    def __call__(self, code: str, message: str, fix: str = "") -> ModelportError: ...


def _of_kind(kind: Kind) -> ErrorOfKind:
    def make(code: str, message: str, fix: str = "") -> ModelportError:
        return ModelportError(kind, code, message, fix)

    make.__name__ = make.__qualname__ = kind.name.lower()
    make.__doc__ = f"A ModelportError of Kind.{kind.name}."
    return make


#: one constructor per kind the platform raises most
not_found = _of_kind(Kind.NOT_FOUND)
conflict = _of_kind(Kind.CONFLICT)
too_large = _of_kind(Kind.TOO_LARGE)
unavailable = _of_kind(Kind.UNAVAILABLE)
unauthenticated = _of_kind(Kind.UNAUTHENTICATED)
forbidden = _of_kind(Kind.FORBIDDEN)


#: SQLite's "database or disk is full" (sqlite3.Error.sqlite_errorcode)
_SQLITE_FULL = 13


def disk_full(exc: BaseException) -> ModelportError | None:
    """``storage.full`` when ``exc`` (or what it was raised from) is a write the disk had no
    room for: ENOSPC or EDQUOT, or SQLite's SQLITE_FULL; else None. Whatever failed was
    not written (a SQLite transaction rolls back, files go in under their final name only
    once whole), so the fix is to free space and retry."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f" writing {seen.filename}" if seen.filename else ""
            break
        if getattr(seen, "sqlite_errorcode", None) == _SQLITE_FULL:
            where = " writing the registry's database"
            break
        seen = seen.__cause__ or seen.__context__
    else:
        return None
    return ModelportError(
        Kind.STORAGE, "storage.full",
        f"the disk of the platform's home is full: no space left{where}, so the request "
        "was not carried out",
        fix="free space on the file system that holds the home (`df -h` there; `modelport "
            "where` shows the home; rotated logs under logs/ can go), then retry")
