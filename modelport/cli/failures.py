"""What the CLI says when a request gets no useful answer: each way of failing to reach
or to be let into the platform has its own message and fix, naming the URL and the
credential the command used and how it found them (modelport/discovery.py).

- nothing found and nothing on the default URL: ``platform.not_running``;
- a URL that refuses connections (given, or a found platform's gateway restarting):
  ``gateway.unreachable``;
- no answer in time: ``gateway.timeout``;
- a credential missing, refused (401) or short of a scope (403): the gateway's error,
  its fix replaced by one about where this command's credential came from.
"""

from __future__ import annotations

import httpx

from modelport.client import Client
from modelport.discovery import Found
from modelport.errors import Kind, ModelportError

_START = "start the platform with `modelport up` or `make up`"


def unreachable(exc: httpx.TransportError, platform: Found | None) -> ModelportError:
    """No answer from the gateway at all: not running, refused, timed out, reset."""
    try:
        url = f"{exc.request.url.scheme}://{exc.request.url.netloc.decode()}"
    except RuntimeError:  # the error has no request
        url = platform.url if platform else ""
    where = f" at {url}" if url else ""
    if isinstance(exc, httpx.TimeoutException):
        log = f" (its log: {platform.home / 'logs' / 'gateway.log'})" if platform else ""
        return ModelportError(
            Kind.DEADLINE, "gateway.timeout",
            f"the modelport gateway{where} did not answer in time: {exc or type(exc).__name__}",
            fix=f"retry; if it keeps happening, see what the gateway is doing{log}")
    if platform is not None and platform.how == "default" and isinstance(exc, httpx.ConnectError):
        return ModelportError(
            Kind.UNAVAILABLE, "platform.not_running",
            f"no modelport platform is running: none on the home {platform.home}, none "
            f"started by this user, nothing answers at {url}",
            fix=f"{_START}, or point --url / MODELPORT_URL at a running gateway")
    if platform is not None and platform.how in ("home", "pointer"):
        return ModelportError(
            Kind.UNAVAILABLE, "gateway.unreachable",
            f"cannot reach the modelport gateway{where} of {platform.detail}: {exc}",
            fix=f"it may be restarting: retry in a moment, or see "
                f"{platform.home / 'logs' / 'gateway.log'}; or point --url / MODELPORT_URL "
                "at another gateway")
    return ModelportError(Kind.UNAVAILABLE, "gateway.unreachable",
                          f"cannot reach the modelport gateway{where}: {exc}",
                          fix=f"{_START}, or point --url / MODELPORT_URL at a running gateway")


def refused(exc: ModelportError, client: Client) -> ModelportError:
    """A 401/403, its fix saying which credential was sent and where it came from."""
    source, url, home = client.token_source, client.url, client.platform.home
    if exc.kind is Kind.UNAUTHENTICATED and source == "none":
        exc.fix = (f"this command found no credential for {url}: log in with `modelport login`,"
                   f" set MODELPORT_TOKEN, or set MODELPORT_HOME to the platform's home (its "
                   f"admin.token; {home} has none)")
    elif exc.kind is Kind.UNAUTHENTICATED:
        exc.fix = (f"the credential sent came from {source} and {url} does not accept it: "
                   "expired, revoked or another platform's; log in again with "
                   "`modelport login`, or fix/unset MODELPORT_TOKEN")
    elif exc.kind is Kind.FORBIDDEN:
        exc.fix = (f"{exc.fix}; the credential sent came from {source}: use one with that "
                   "scope (`modelport whoami` shows what it may do)").lstrip("; ")
    return exc


def explain(exc: Exception, client: Client | None) -> Exception:
    """``exc`` as the CLI reports it."""
    if isinstance(exc, httpx.TransportError):
        said = unreachable(exc, client.platform if client else None)
        said.__cause__ = exc  # what --debug shows
        return said
    if (client is not None and isinstance(exc, ModelportError)
            and exc.kind in (Kind.UNAUTHENTICATED, Kind.FORBIDDEN)):
        return refused(exc, client)
    return exc

