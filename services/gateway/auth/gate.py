"""The data plane's first stage: a service whose spec says ``auth.required`` needs
``invoke:<service>`` / ``invoke:*`` (401/403), then the service's and key's token buckets (429)."""


from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import grpc

from modelport.errors import forbidden
from modelport.v1 import auth_pb2, auth_pb2_grpc
from services.gateway import registry_outage
from services.gateway.auth.authenticator import Authenticator
from services.gateway.auth.principal import (
    CREDENTIALS,
    INTERNAL,
    Credentials,
    Principal,
    describe_principal,
)
from services.gateway.limits import Limits
from services.gateway.single_flight import SingleFlight
from services.rpc.errors import from_rpc_error

log = logging.getLogger(__name__)


@dataclass
class _Policy:
    exists: bool
    owner: str
    required: bool
    rate: float
    burst: int
    expires: float


class InferenceGate:
    """auth -> limits, the first stage of every inference call (services/gateway/dataplane.py)."""

    def __init__(self, registry: auth_pb2_grpc.AuthStub, authenticator: Authenticator,
                 limits: Limits | None = None, enabled: bool = True,
                 policy_ttl_s: float = 1.0) -> None:
        self.registry = registry
        self.authenticator = authenticator
        self.limits = limits or Limits()
        self.enabled = enabled
        self.policy_ttl_s = policy_ttl_s
        self._policies: dict[str, _Policy] = {}
        self._lookups: SingleFlight[_Policy] = SingleFlight()

    def forget(self, service: str) -> None:
        self._policies.pop(service, None)
        self._lookups.forget(service)

    async def policy(self, service: str) -> _Policy:
        now = time.monotonic()
        hit = self._policies.get(service)
        if hit is not None and hit.expires > now:
            return hit
        return await self._lookups.run(service, lambda: self._fetch_policy(service, now))

    async def _fetch_policy(self, service: str, now: float) -> _Policy:
        try:
            p = await self.registry.GetPolicy(auth_pb2.PolicyRequest(service=service), timeout=10)
        except grpc.aio.AioRpcError as err:
            error = from_rpc_error(err, "registry")
            last = self._policies.get(service)
            if last is not None and registry_outage.away(error) and registry_outage.usable(
                    last.expires - self.policy_ttl_s, now):
                return last  # registry_outage.py: the registry is restarting
            raise error from None
        pol = _Policy(p.service_exists, p.service_owner, p.auth_required, p.rate_limit, p.burst,
                      now + self.policy_ttl_s)
        if len(self._policies) > 10_000:
            self._policies.clear()
        self._policies[service] = pol
        return pol

    async def admit(self, service: str, *, limit: bool = True, strict: bool = False) -> None:
        """Raise 401/403/429 unless this request may call ``service`` now.

        ``strict``: a service that does not exist (any more) needs a credential too (its
        tasks' results); otherwise an unknown name is left to routing (404).
        """
        creds = CREDENTIALS.get()
        if creds is INTERNAL:
            return  # the gateway's own call (an admitted async task running)
        creds = creds or Credentials({})  # fail closed: an unseen caller presented nothing
        pol = await self.policy(service)
        if not pol.exists and not strict:
            return
        principal: Principal | None = None
        if self.enabled and (pol.required or not pol.exists):
            principal = await self.authenticator.authenticate(creds)
            if not principal.can_invoke(service, pol.owner):
                who = describe_principal(principal)
                raise forbidden("auth.scope", f"this credential ({who}) may "
                                f"not call service {service!r}",
                                f"use a key with scope invoke:{service} or invoke:* "
                                f"(`modelport keys create --scope invoke:{service}`)")
        if limit:
            self.limits.check_service(service, pol.rate, pol.burst)
            if principal is not None and principal.rate_limit > 0:
                self.limits.check_key(principal.key_id, principal.rate_limit)
