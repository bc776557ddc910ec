"""AK/SK request signing, as ModelArts' AK/SK and AppKey/AppSecret modes (APIG's signer).

A client signs a request with an access key (AK, public) and a secret key (SK):

    Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=host;x-sdk-date, Signature=<hex>
    X-Sdk-Date: 20250101T120000Z

    canonical request = METHOD \\n canonical URI \\n sorted query \\n
                        signed headers as name:value lines \\n signed header names \\n
                        SHA-256 of the body (or the x-sdk-content-sha256 header, whose
                        value UNSIGNED-PAYLOAD leaves a multipart body unsigned)
    string to sign    = SDK-HMAC-SHA256 \\n X-Sdk-Date \\n SHA-256(canonical request)
    signature         = hex HMAC-SHA256(SK, string to sign)

The layout is APIG's (`apig_sdk.signer`), so ModelArts client code signs modelport
requests unchanged. The SDK (``modelport.Client(access_key=, secret_key=)``), the CLI
(``MODELPORT_ACCESS_KEY``/``MODELPORT_SECRET_KEY``) and the gateway all use this module;
the gateway refuses a date more than 15 minutes off and a signature it has seen before.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "x-sdk-date"
CONTENT_SHA256_HEADER = "x-sdk-content-sha256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
#: how far X-Sdk-Date may be from the gateway's clock
MAX_SKEW_S = 15 * 60

_AUTH = re.compile(r"^SDK-HMAC-SHA256\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*"
                   r"Signature=([0-9a-fA-F]{64})\s*$")


def _encode(text: str) -> str:
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """Each segment percent-encoded (only ``~`` kept), always ending with ``/``."""
    uri = "/".join(_encode(seg) for seg in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(query: str) -> str:
    """``k=v`` pairs sorted by key, then value, percent-encoded, joined by ``&``."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs))


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str],
                      signed_headers: list[str], payload_hash: str) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    lines = "".join(f"{name}:{lower[name].strip()}\n" for name in signed_headers)
    return "\n".join([method.upper(), canonical_uri(path), canonical_query(query), lines,
                      ";".join(signed_headers), payload_hash])


def string_to_sign(canonical: str, date: str) -> str:
    return "\n".join([ALGORITHM, date, hashlib.sha256(canonical.encode()).hexdigest()])


def signature(secret_key: str, to_sign: str) -> str:
    return hmac.new(secret_key.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def format_date(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime(DATE_FORMAT)


def parse_date(value: str) -> float:
    """Unix time of an X-Sdk-Date value; ValueError when it is not ``YYYYMMDDTHHMMSSZ``."""
    return datetime.strptime(value.strip(), DATE_FORMAT).replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Authorization:
    access_key: str
    signed_headers: list[str]
    signature: str


def is_signed(authorization: str) -> bool:
    return authorization.lstrip().startswith(ALGORITHM)


def parse_authorization(value: str) -> Authorization:
    """The parts of an ``SDK-HMAC-SHA256`` Authorization header; ValueError if malformed."""
    m = _AUTH.match(value.strip())
    if not m:
        raise ValueError("expected 'SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, "
                         "Signature=<64 hex>'")
    names = [h.strip().lower() for h in m.group(2).split(";") if h.strip()]
    return Authorization(m.group(1), names, m.group(3).lower())


def sign(method: str, url: str, headers: Mapping[str, str], body: bytes | None,
         access_key: str, secret_key: str, now: float | None = None,
         sign_headers: list[str] | None = None) -> dict[str, str]:
    """Headers to add to a request so that it is signed: X-Sdk-Date, Host, Authorization.

    ``sign_headers`` (default: host, x-sdk-date and content-type / x-sdk-content-sha256
    when present) are covered by the signature. ``body`` None with no
    x-sdk-content-sha256 header signs an empty body.
    """
    parts = urlsplit(url)
    out: dict[str, str] = {}
    lower = {k.lower(): v for k, v in headers.items()}
    if DATE_HEADER not in lower:
        out["X-Sdk-Date"] = lower[DATE_HEADER] = format_date(now)
    if "host" not in lower:
        out["Host"] = lower["host"] = parts.netloc
    names = sign_headers or ["host", DATE_HEADER, *(
        h for h in ("content-type", CONTENT_SHA256_HEADER) if h in lower)]
    names = sorted({n.lower() for n in names})
    payload = lower.get(CONTENT_SHA256_HEADER) or body_hash(body or b"")
    canonical = canonical_request(method, parts.path or "/", parts.query, lower, names, payload)
    sig = signature(secret_key, string_to_sign(canonical, lower[DATE_HEADER]))
    out["Authorization"] = (f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(names)}, "
                            f"Signature={sig}")
    return out


def httpx_auth(access_key: str, secret_key: str) -> Any:
    """An ``httpx.Auth`` that signs every request (multipart bodies as UNSIGNED-PAYLOAD,
    so uploads stream without being read twice)."""
    import httpx

    class Signer(httpx.Auth):
        requires_request_body = False

        def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
            ctype = request.headers.get("content-type", "")
            if ctype.startswith("multipart/form-data"):
                request.headers[CONTENT_SHA256_HEADER] = UNSIGNED_PAYLOAD
                body = None
            else:
                body = request.read()
            for key, value in sign(request.method, str(request.url), request.headers, body,
                                   access_key, secret_key).items():
                if key != "Host":  # httpx sends Host itself, with the same value
                    request.headers[key] = value
            yield request

    return Signer()
