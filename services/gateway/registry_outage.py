"""What the gateway does while the registry is away: it serves from what it knows.

The registry is restarted by the launcher within seconds of dying, and nothing a request
needs changes in that time. So when a refresh of a route table, a service's auth policy
or a token's principal fails because the registry is unreachable (UNAVAILABLE), the last
answer is used again, for at most ``MAX_STALE_S`` since it was fetched, and the next
request tries the registry again. Any other error (not found, refused) is never papered
over, and nothing is served stale that was never fetched. Signed requests still need the
registry (its replay check is the point of them).
"""

from __future__ import annotations

import logging

from modelport.errors import ModelportError

log = logging.getLogger(__name__)

#: how old a last answer may be and still be used while the registry is away
MAX_STALE_S = 300.0
#: a stale answer used now is looked at again this soon
RETRY_S = 0.5
_last_warning = [0.0]


def away(err: ModelportError) -> bool:
    """True when ``err`` means the registry could not be reached (not that it refused)."""
    return err.code == "component.unavailable"


def usable(fetched_at: float, now: float) -> bool:
    """Whether an answer fetched at ``fetched_at`` (monotonic) may stand in now."""
    if now - fetched_at > MAX_STALE_S:
        return False
    if now - _last_warning[0] > 5.0:
        _last_warning[0] = now
        log.warning("registry unreachable: serving from answers up to %.0fs old",
                    now - fetched_at)
    return True
