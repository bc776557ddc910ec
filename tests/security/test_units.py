"""The pieces on their own: the signer, token buckets, the key store, containment helpers."""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from modelport import signing
from modelport.worker import exit_codes
from services.gateway.limits import Limits, TokenBucket
from services.registry.credentials import ReplayCache, role_scopes
from services.registry.store.accounts import AuthStore, KeyRecord, UserRecord
from services.runtime import containment

# ------------------------------------------------------------------------ signing


def test_the_canonical_request_is_apigs() -> None:
    """Written out by hand from the APIG signer's rules (sorted query, '/'-ended URI)."""
    headers = {"Host": "gw:8000", "X-Sdk-Date": "20250101T120000Z",
               "Content-Type": "application/json"}
    canonical = signing.canonical_request(
        "post", "/v1/services/a b/infer", "z=1&a=2&a=1&e=", headers,
        ["content-type", "host", "x-sdk-date"], signing.body_hash(b"{}"))
    assert canonical == "\n".join([
        "POST", "/v1/services/a%20b/infer/", "a=1&a=2&e=&z=1",
        "content-type:application/json\nhost:gw:8000\nx-sdk-date:20250101T120000Z\n",
        "content-type;host;x-sdk-date", hashlib.sha256(b"{}").hexdigest()])
    to_sign = signing.string_to_sign(canonical, "20250101T120000Z")
    assert to_sign.startswith("SDK-HMAC-SHA256\n20250101T120000Z\n")
    assert signing.signature("sk", to_sign) == hmac.new(b"sk", to_sign.encode(),
                                                        hashlib.sha256).hexdigest()


def test_sign_produces_a_header_the_parser_reads_back() -> None:
    out = signing.sign("POST", "http://gw:8000/v1/services/x/infer?b=1", {}, b"body",
                       "ak1", "sk1", now=0)
    assert out["X-Sdk-Date"] == "19700101T000000Z" and out["Host"] == "gw:8000"
    auth = signing.parse_authorization(out["Authorization"])
    assert auth.access_key == "ak1" and auth.signed_headers == ["host", "x-sdk-date"]
    canonical = signing.canonical_request("POST", "/v1/services/x/infer", "b=1",
                                          {"host": "gw:8000", "x-sdk-date": out["X-Sdk-Date"]},
                                          auth.signed_headers, signing.body_hash(b"body"))
    assert auth.signature == signing.signature(
        "sk1", signing.string_to_sign(canonical, out["X-Sdk-Date"]))
    for bad in ("Bearer x", "SDK-HMAC-SHA256 Access=a, SignedHeaders=h, Signature=zz"):
        with pytest.raises(ValueError):
            signing.parse_authorization(bad)
    assert signing.parse_date("20250101T120000Z") == 1735732800.0


def test_replayed_signatures_are_refused_until_their_window_ends(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    cache = ReplayCache(db)
    assert cache.first_use("sig", expires_at=100.0, now=10.0)
    assert not cache.first_use("sig", expires_at=100.0, now=50.0)
    # what was seen is on disk: a new cache over the same file (a restarted registry) knows
    restarted = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    assert not ReplayCache(restarted).first_use("sig", expires_at=100.0, now=60.0)
    restarted.close()
    assert cache.first_use("sig", expires_at=200.0, now=101.0)


# ------------------------------------------------------------------------ limits


def test_a_token_bucket_allows_its_burst_then_its_rate() -> None:
    clock = [0.0]
    limits = Limits(clock=lambda: clock[0])
    assert [limits.take("k", rate=2.0, burst=3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limits.take("k", rate=2.0, burst=3)
    assert wait == pytest.approx(0.5)
    clock[0] += 0.5
    assert limits.take("k", rate=2.0, burst=3) == 0.0
    assert limits.take("other", rate=0, burst=0) == 0.0  # no limit
    with pytest.raises(Exception) as exc:
        limits.check_service("svc", 1.0, 1)
        limits.check_service("svc", 1.0, 1)
    assert exc.value.code == "rate.service_limit" and exc.value.details["retry_after_s"] > 0
    bucket = TokenBucket(rate=1.0, burst=1.0, tokens=0.0, stamp=0.0)
    assert bucket.take(0.25) == pytest.approx(0.75)


# ------------------------------------------------------------------------ store


def test_the_store_keeps_hashes_and_ownership(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    db.row_factory = sqlite3.Row
    store = AuthStore(db)
    assert store.add_user(UserRecord("ann", "member", "argon2-hash"))
    assert not store.add_user(UserRecord("ann", "admin"))
    store.add_key(KeyRecord("0123456789abcdef", "ann", "k", ["invoke:x"], "key",
                            secret_hash="ab" * 32, salt="cd" * 32, expires_at=50.0))
    k = store.get_key("0123456789abcdef")
    assert k is not None and k.scopes == ["invoke:x"] and k.active(10.0)
    assert not k.active(60.0)
    store.revoke_user_keys("ann", 20.0)
    assert store.list_keys("ann") == [] and store.list_keys("ann", include_revoked=True)
    store.set_owner("service", "s1", "ann")
    assert store.owner("service", "s1") == "ann" and store.owned("service", "ann") == {"s1"}
    assert role_scopes("member") == ["deploy", "read", "invoke:*"]


# ------------------------------------------------------------------------ containment


def test_memory_sizes() -> None:
    assert containment.parse_memory("512Mi") == 512 * 2**20
    assert containment.parse_memory("2G") == 2 * 10**9
    assert containment.parse_memory("") == 0


def test_the_runtime_reports_the_shims_memory_exit_as_a_memory_limit() -> None:
    from services.runtime.worker.errors import describe_exit

    assert "memory limit" in describe_exit(exit_codes.EXIT_MEMORY_LIMIT)
    assert "memory" not in describe_exit(1)


def test_the_shim_limits_itself_before_model_code(tmp_path: Path) -> None:
    """The limits the runtime asks for hold in the worker, and a MemoryError under them
    stops it with the code the runtime reports as 'memory limit'."""
    root = str(Path(__file__).resolve().parents[2])
    code = (f"import resource, sys; sys.path.insert(0, {root!r})\n"
            "from modelport.worker import process\nprocess.limit_self()\n"
            "print(resource.getrlimit(resource.RLIMIT_NOFILE)[1],"
            " resource.getrlimit(resource.RLIMIT_CORE)[1], flush=True)\n"
            "try:\n    x = [bytearray(2**20) for _ in range(10**6)]\n"
            "except BaseException as exc:\n    process.exit_if_out_of_memory(exc)\n")
    env = {"PATH": os.environ["PATH"], "MODELPORT_MEMORY_LIMIT": str(200 * 2**20),
           "MODELPORT_MAX_OPEN_FILES": "64"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.stdout.split() == ["64", "0"]
    assert out.returncode == exit_codes.EXIT_MEMORY_LIMIT, out.stderr
    assert "memory limit" in out.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as the platform in CI")
def test_secure_home_and_stable_worker_ids(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "registry.db").write_text("x")
    (home / "logs").mkdir(mode=0o755)
    containment.secure_home(home, contained=True)
    mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.iterdir()}
    assert stat.S_IMODE(home.stat().st_mode) == 0o711
    assert mode["registry.db"] == 0o600 and mode["logs"] == 0o700 and mode["blobs"] == 0o700
    assert mode["envs"] == 0o755 and mode["packages"] == 0o711
    pool = containment.IdPool(home / "ids.json", 200_000, 10)
    a, b = pool.get("service:a"), pool.get("service:b")
    assert a != b and containment.IdPool(home / "ids.json", 200_000, 10).get("service:a") == a
    assert stat.S_IMODE((home / "ids.json").stat().st_mode) == 0o600
