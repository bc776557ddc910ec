"""Credentials -> Principal, through the registry's Auth service, with a short cache (a
token's principal is kept ``auth_cache_s``; revocations through this gateway apply at once)."""


from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable

import grpc

from modelport import signing
from modelport.errors import ModelportError, forbidden, unauthenticated
from modelport.v1 import auth_pb2, auth_pb2_grpc
from services.gateway import registry_outage
from services.gateway.auth.principal import (
    CSRF_HEADER,
    UNSAFE_METHODS,
    Credentials,
    Principal,
    csrf_token,
)
from services.gateway.single_flight import SingleFlight
from services.rpc.errors import from_rpc_error

log = logging.getLogger(__name__)


class Authenticator:
    """Credentials -> Principal, through the registry's Auth service, with a short cache."""

    def __init__(self, registry: auth_pb2_grpc.AuthStub, cache_s: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.cache_s = cache_s
        self.clock = clock
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lookups: SingleFlight[Principal] = SingleFlight()

    def forget_all(self) -> None:
        """After a revoke, password change or user removal through this gateway."""
        self._cache.clear()
        self._lookups.forget()  # a check already running may predate the change

    async def authenticate(self, creds: Credentials) -> Principal:
        if creds.principal is not None:
            return creds.principal
        if creds.signed:
            principal = await self._signed(creds)
        else:
            token, source = creds.token()
            if not token:
                raise unauthenticated(
                    "auth.required", "this needs a credential",
                    "send 'Authorization: Bearer <token>' (the admin token is in "
                    "<home>/admin.token; `modelport keys create` makes API keys), an "
                    "'apikey' or 'X-Apig-AppCode' header, or an AK/SK signature")
            if source == "session" and creds.method in UNSAFE_METHODS and not hmac.compare_digest(
                    creds.headers.get(CSRF_HEADER, ""), csrf_token(token)):
                raise forbidden("auth.csrf", "the session cookie needs the X-CSRF-Token header "
                                "on this request", "send the csrf_token from the login answer "
                                "(or the modelport_csrf cookie) as X-CSRF-Token")
            principal = await self._token(token)
        creds.principal = principal
        return principal

    async def _token(self, token: str) -> Principal:
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            p = await self._lookups.run(key, lambda: self._check_token(token))
        except ModelportError as error:
            if hit is None or not registry_outage.away(error) or not registry_outage.usable(
                    hit[1] - self.cache_s, now):
                raise
            return hit[0]  # registry_outage.py: the registry is restarting
        if len(self._cache) > 10_000:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
        self._cache[key] = (p, now + self.cache_s)
        return p

    async def _check_token(self, token: str) -> Principal:
        return Principal.from_proto(await self._call(auth_pb2.AuthenticateRequest(token=token)))

    async def _signed(self, creds: Credentials) -> Principal:
        try:
            auth = signing.parse_authorization(creds.authorization)
        except ValueError as exc:
            raise unauthenticated("auth.signature_malformed",
                                  f"the Authorization header is not a valid signature: {exc}",
                                  "sign with modelport.signing or the APIG signer SDK") from None
        if signing.DATE_HEADER not in auth.signed_headers:
            raise unauthenticated("auth.signature_date", "x-sdk-date is not a signed header",
                                  "sign the X-Sdk-Date header")
        missing = [h for h in auth.signed_headers if h not in creds.headers]
        if missing:
            raise unauthenticated("auth.signature_headers", f"signed header(s) "
                                  f"{', '.join(missing)} are not in the request",
                                  "send every header listed in SignedHeaders")
        date_text = creds.headers[signing.DATE_HEADER]
        try:
            date = signing.parse_date(date_text)
        except ValueError:
            raise unauthenticated("auth.signature_date", f"X-Sdk-Date {date_text!r} is not "
                                  "YYYYMMDDTHHMMSSZ", "send the UTC time, e.g. "
                                  "20250101T120000Z") from None
        skew = self.clock() - date
        if abs(skew) > signing.MAX_SKEW_S:
            raise unauthenticated("auth.signature_expired", f"X-Sdk-Date is {abs(skew) / 60:.0f} "
                                  "minutes off the gateway's clock (15 allowed)",
                                  "sign each request when it is sent, with a synchronised clock")
        payload = creds.headers.get(signing.CONTENT_SHA256_HEADER, "")
        if payload == signing.UNSIGNED_PAYLOAD:
            if not creds.headers.get("content-type", "").startswith("multipart/form-data"):
                raise unauthenticated("auth.unsigned_payload", "UNSIGNED-PAYLOAD is accepted "
                                      "for multipart/form-data bodies only",
                                      "sign the body's SHA-256 instead")
        elif payload:
            if creds.body_sha256 is None or not hmac.compare_digest(payload.lower(),
                                                                      creds.body_sha256):
                raise unauthenticated("auth.signature_mismatch", "the body does not match "
                                      "x-sdk-content-sha256", "sign the body that is sent")
        else:
            payload = creds.body_sha256 or signing.body_hash(b"")
        canonical = signing.canonical_request(creds.method, creds.path, creds.query,
                                              creds.headers, auth.signed_headers, payload)
        to_sign = signing.string_to_sign(canonical, date_text)
        return Principal.from_proto(await self._call(auth_pb2.AuthenticateRequest(
            signed=auth_pb2.SignedRequest(access_key=auth.access_key, string_to_sign=to_sign,
                                          signature=auth.signature,
                                          expires_at=date + signing.MAX_SKEW_S))))

    async def _call(self, request: auth_pb2.AuthenticateRequest) -> auth_pb2.Principal:
        try:
            return await self.registry.Authenticate(request, timeout=10)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, "registry") from None
