"""The upload path fuzzed (issue 18 §5): hypothesis makes hostile zips and config.json
files; each goes through the unpacker and the loader (modelport/package) directly, and a
smaller seeded set plus the known hard cases through `POST /api/v1/services` on a real
platform. Every one is refused with a 4xx ModelportError that says how to fix it, or
accepted whole; nothing stays behind in the home's uploads/ or packages/, and a good
upload still works afterwards.

Zips: names with ``..``, absolute and drive paths, NUL, backslashes, over-long names
and paths, symlinks, duplicates, the password flag, declared sizes that lie (smaller,
larger, 4 GiB), bombs (a megabyte of zeros in a few bytes, over a small limit), truncated
and corrupted archives, and bytes that are no zip at all. config.json: random JSON, the
right keys with wrong types, unknown and 20,000-character keys, 50,000-deep nesting, lone
surrogates, NaN and Infinity, 1e400 and 400-digit numbers, bytes that are not UTF-8.
Runs are seeded (``derandomize=True``) and bounded by example counts, never by time."""

from __future__ import annotations

import contextlib
import io
import json
import stat
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelport.errors import ModelportError
from modelport.package import ArchiveLimits, extract_zip, load_package
from modelport.v1 import runtime_pb2
from services.runtime.containment import parse_memory
from tests.conftest import AUTH_HEADERS, RunningPlatform
from tests.reliability.conftest import ECHO, echo_package
from tests.reliability.errors import assert_response

DIRECT = settings(max_examples=120, derandomize=True, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.function_scoped_fixture])
PLATFORM = settings(DIRECT, max_examples=30)
#: small enough that a bomb is a few KiB
LIMITS = ArchiveLimits(max_upload_bytes=4 << 20, max_entries=200,
                       max_uncompressed_bytes=1 << 20)
GOOD_CONFIG = {"name": "fuzzed", "predictor": "predict:Predictor",
               "input": [{"name": "text", "type": "text"}]}

# ------------------------------------------------------------------ zips


def _name_part() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(["config.json", "predict.py", "model", "a", "..", ".", "", "x" * 300,
                         "é" * 200, "con", "a\\..\\..\\b", "\x00", "C:", "C:\\win", " ",
                         "__MACOSX", "model/config.json"]),
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1,
                max_size=20))


@st.composite
def entry_names(draw: st.DrawFn) -> str:
    parts = draw(st.lists(_name_part(), min_size=1, max_size=4))
    name = "/".join(parts)
    prefix = draw(st.sampled_from(["", "", "", "/", "../", "C:/", "\\\\host\\", "./"]))
    deep = draw(st.sampled_from([0, 0, 0, 300]))  # a path longer than PATH_MAX
    return prefix + "d/" * deep + name + draw(st.sampled_from(["", "", "/"]))


@st.composite
def zips(draw: st.DrawFn) -> bytes:
    """A zip built entry by entry with hostile names, modes, flags and contents, then
    maybe lied about, truncated or corrupted."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        if draw(st.booleans()):
            zf.writestr("config.json", draw(configs()))
            zf.writestr("predict.py", ECHO)
        for _ in range(draw(st.integers(0, 5))):
            info = zipfile.ZipInfo(draw(entry_names()))
            info.compress_type = draw(st.sampled_from([zipfile.ZIP_STORED,
                                                       zipfile.ZIP_DEFLATED]))
            kind = draw(st.sampled_from(["file", "file", "symlink", "exec", "dir"]))
            mode = {"file": 0o100644, "symlink": stat.S_IFLNK | 0o777, "exec": 0o100755,
                    "dir": stat.S_IFDIR | 0o755}[kind]
            info.create_system = draw(st.sampled_from([3, 0]))
            info.external_attr = mode << 16
            data = draw(st.one_of(st.binary(max_size=64),
                                  st.just(b"\0" * (2 << 20)),  # a bomb over LIMITS
                                  st.just(b"../../etc/passwd")))
            _write(zf, info, data)
        if draw(st.booleans()) and zf.namelist():  # a duplicate of the last entry
            _write(zf, zf.namelist()[-1], b"again")
    raw = bytearray(buf.getvalue())
    for _ in range(draw(st.integers(0, 2))):
        how = draw(st.sampled_from(["size", "flags", "truncate", "flip", "count"]))
        raw = _mangle(raw, how, draw(st.integers(0, 2**32 - 1)))
    return bytes(raw)


def _write(zf: zipfile.ZipFile, info: zipfile.ZipInfo | str, data: bytes) -> None:
    """One entry, unless zipfile itself refuses to write it (an empty name, say)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": meant
        with contextlib.suppress(ValueError, IndexError, zipfile.BadZipFile):
            zf.writestr(info, data)


def _headers(raw: bytes | bytearray, sig: bytes) -> list[int]:
    out, at = [], raw.find(sig)
    while at >= 0:
        out.append(at)
        at = raw.find(sig, at + 1)
    return out


def _mangle(raw: bytearray, how: str, n: int) -> bytearray:
    central = _headers(raw, b"PK\x01\x02")
    if how == "truncate":
        return raw[: n % max(1, len(raw))]
    if how == "flip" and raw:
        raw[n % len(raw)] ^= 1 + n % 255
        return raw
    if how == "count":  # the end record claims another number of entries
        end = raw.rfind(b"PK\x05\x06")
        if end >= 0 and end + 12 <= len(raw):
            raw[end + 8:end + 12] = struct.pack("<HH", n & 0xFFFF, n & 0xFFFF)
        return raw
    if not central:
        return raw
    at = central[n % len(central)]
    if how == "size":  # declared uncompressed size: smaller, larger or 4 GiB
        size = (0, 1, 0xFFFFFFFF, n)[n % 4]
        raw[at + 24:at + 28] = struct.pack("<I", size)
    else:  # general purpose flags: the password bit, or anything
        raw[at + 8:at + 10] = struct.pack("<H", 1 if n % 2 else n & 0xFFFF)
    return raw


def known_zips() -> dict[str, bytes]:
    """The cases every run includes, by what they are."""
    def make(*entries: tuple[Any, bytes]) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for info, data in entries:
                _write(zf, info, data)
        return buf.getvalue()

    def link(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name)
        info.create_system, info.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        return info

    good = [("config.json", json.dumps(GOOD_CONFIG).encode()), ("predict.py", ECHO.encode())]
    bomb = make(*good, ("weights.bin", b"\0" * (3 << 20)))
    encrypted = bytearray(make(*good))
    for at in _headers(encrypted, b"PK\x01\x02"):
        encrypted[at + 8:at + 10] = b"\x01\x00"
    lying = bytearray(make(*good, ("weights.bin", b"\0" * 4096)))
    at = _headers(lying, b"PK\x01\x02")[-1]  # weights.bin: says 16 bytes, holds 4096
    lying[at + 24:at + 28] = struct.pack("<I", 16)
    return {
        "dotdot": make(*good, ("../evil.py", b"x")),
        "absolute": make(*good, ("/etc/evil", b"x")),
        "drive": make(*good, ("C:\\evil.py", b"x")),
        "symlink": make(*good, (link("model"), b"/etc")),
        "duplicate": make(*good, ("predict.py", b"again")),
        "file_and_dir": make(*good, ("data", b"x"), ("data/x", b"y")),
        "encrypted": bytes(encrypted),
        "lying_size": bytes(lying),
        "bomb": bomb,
        "long_name": make(*good, ("x" * 300, b"x")),
        "long_path": make(*good, ("d/" * 3000 + "x", b"x")),
        "huge_name": make(*good, ("n" * 60_000, b"x")),
        "many_problems": make(("config.json", json.dumps(
            {"name": "x", "predictor": "p:P", **{f"k{i}" * 20: i for i in range(800)},
             "input": [{"name": f"bad name {i}", "type": "nope"} for i in range(300)]}
        ).encode()), ("predict.py", b"class P: pass")),
        "truncated": make(*good)[:-30],
        "not_a_zip": b"PK\x03\x04 this is not a zip at all",
        "empty_zip": make(),
        "no_config": make(("predict.py", ECHO.encode())),
        "zero_entries_claimed_many": b"PK\x05\x06" + b"\0" * 4 + b"\xff\xff\xff\xff"
        + b"\0" * 10,
    }


# ------------------------------------------------------------------ config.json


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                          allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=20)
_ODD = st.sampled_from([
    '"\\ud800"', '"a\\udfffb"', "NaN", "Infinity", "-Infinity", "1e400", "-1e400",
    "1" + "0" * 400, "-9" * 1 + "9" * 30, "18446744073709551616", "2147483648",
    "9223372036854775808", "1.5", "-1", "0", '""', "[]", "{}", "true", "null",
    '"' + "x" * 20_000 + '"', '"٣"', '"²"', '"1e400Gi"', '"' + "9" * 400 + 'Gi"',
    '"3.١١"', '"١٢٣Mi"',
])
_FIELDS = ["name", "predictor", "input", "output", "timeout_s", "resources", "env", "health",
           "python", "batching", "description", "base_image", "model_type",
           "model_algorithm", "apis", "dependencies", "entrypoint", "image", "port"]


@st.composite
def configs(draw: st.DrawFn) -> bytes:
    """config.json bytes: random JSON, or a good config with fields swapped for odd
    literals (written as text, so NaN, lone surrogate escapes and huge numbers get in)."""
    how = draw(st.sampled_from(["random", "mutated", "mutated", "nested", "deep", "bytes",
                                "long_key"]))
    if how == "random":
        return json.dumps(draw(_JSON)).encode()
    if how == "bytes":
        return draw(st.sampled_from([b"\xff\xfe{}", b'{"name": "\xc3\x28"}', b"\xef\xbb\xbf{",
                                     b"{\"a\": 1,}", b""])) + draw(st.binary(max_size=8))
    if how == "deep":
        depth = draw(st.sampled_from([65, 1000, 50_000]))
        return (b'{"name": "x", "predictor": "p:P", "input": [], "description": '
                + b"[" * depth + b"]" * depth + b"}")
    if how == "long_key":
        return json.dumps({**GOOD_CONFIG, "k" * 20_000: 1}).encode()
    doc: dict[str, str] = {k: json.dumps(v) for k, v in GOOD_CONFIG.items()}
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(_FIELDS))
        where = draw(st.sampled_from(["top", "input", "resources", "shape", "batching",
                                      "env", "health"]))
        value = draw(_ODD | _JSON.map(json.dumps))
        if where == "top":
            doc[field] = value
        elif where == "input":
            doc["input"] = ('[{"name": "text", "type": "tensor", "dtype": "FP32", '
                            f'"shape": [-1], "{field}": {value}}}]')
        elif where == "shape":
            doc["input"] = ('[{"name": "text", "type": "tensor", "dtype": "FP32", '
                            f'"shape": [{value}, 2]}}]')
        elif where == "resources":
            key = draw(st.sampled_from(["cpu", "memory", "gpu"]))
            doc["resources"] = f'{{"{key}": {value}}}'
        elif where == "batching":
            doc["batching"] = f'{{"max_batch_size": {value}}}'
        elif where == "env":  # as a value, and (when it is a string) as a name
            doc["env"] = f'{{"A": {value}}}' if not value.startswith('"') else (
                f'{{"A": {value}, {value}: "v"}}')
        else:
            key = draw(st.sampled_from(["period_seconds", "initial_delay_seconds",
                                        "failure_threshold", "url", "check_method"]))
            doc["health"] = f'{{"{key}": {value}}}'
    return ("{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in doc.items()) + "}").encode()


# ------------------------------------------------------------------ the checks


def assert_refused_well(err: ModelportError, what: str) -> None:
    """A ModelportError of a 4xx kind, with a message and a fix, that fits a gRPC
    trailer (the registry sends it as one)."""
    assert 400 <= err.http_status < 500, f"{what}: {err.kind} {err.code}: {err.message}"
    assert err.code and err.message and err.fix, f"{what}: {err.to_dict()!r:.400}"
    assert len(err.to_json()) < 8192, f"{what}: the error is {len(err.to_json())} bytes"


def unpack_and_load(data: bytes, tmp: Path, what: str) -> bool:
    """Whether the zip was refused (well: see assert_refused_well)."""
    src, dest = tmp / "upload.zip", tmp / "pkg"
    src.write_bytes(data)
    try:
        extract_zip(src, dest, LIMITS)
    except ModelportError as err:
        assert_refused_well(err, what)
        assert not dest.exists(), f"{what}: a refused zip left {dest}"
        assert [p.name for p in tmp.iterdir()] == ["upload.zip"], f"{what}: left files"
        return True
    return load(dest, what)


def load(root: Path, what: str) -> bool:
    """Whether the package was refused; an accepted one is checked as the platform uses it."""
    try:
        pkg = load_package(root)
    except ModelportError as err:
        assert_refused_well(err, what)
        return True
    # accepted: what the platform does with it next must work too: the registry stores
    # config and interface as JSON, the gateway renders the interface with orjson, the
    # controller starts replicas with the config's resources (runtime_pb2 int32/double
    # fields, parse_memory) and timeout
    orjson.dumps(orjson.loads(json.dumps(pkg.interface())))
    json.dumps(pkg.config)
    json.dumps(pkg.summary())
    res = pkg.resources
    runtime_pb2.StartReplicaRequest(
        cpu=float(res.cpu or 0) if res else 0.0, memory=str(res.memory or "") if res else "",
        gpu=int(res.gpu or 0) if res else 0, timeout_s=float(pkg.timeout_s or 0),
        max_concurrency=pkg.batching.max_batch_size if pkg.batching else 1)
    if res is not None and res.memory:
        assert parse_memory(res.memory) == res.memory_bytes, res.memory
    assert pkg.digest.startswith("sha256:")
    return False


@pytest.fixture
def fresh(tmp_path: Path) -> Any:
    """A new empty directory per hypothesis example (tmp_path is per test)."""
    count = iter(range(10**9))

    def make() -> Path:
        d = tmp_path / f"ex{next(count)}"
        d.mkdir()
        return d
    return make


@DIRECT
@given(data=zips())
def test_hostile_zips_are_refused_with_a_fix(data: bytes, fresh: Any) -> None:
    unpack_and_load(data, fresh(), f"zip {data[:60]!r}...")


@pytest.mark.parametrize("case", sorted(known_zips()))
def test_known_hostile_zips(case: str, tmp_path: Path) -> None:
    assert unpack_and_load(known_zips()[case], tmp_path, case), f"{case} was accepted"


@DIRECT
@given(config=configs())
def test_hostile_config_json_is_refused_with_a_fix(config: bytes, fresh: Any) -> None:
    root = fresh()
    (root / "config.json").write_bytes(config)
    (root / "predict.py").write_text(ECHO)
    load(root, f"config.json {config[:120]!r}")


# ------------------------------------------------------------------ through the platform


def _contents(home: Path) -> set[str]:
    return {p.relative_to(home).as_posix() for d in ("uploads", "packages")
            for p in (home / d).rglob("*")}


def upload(plat: RunningPlatform, data: bytes, what: str) -> None:
    """Refused: a 4xx with a fix that leaves nothing in uploads/ or packages/. Accepted
    (a valid package, with replicas 0): its view renders, and it is deleted again."""
    before = _contents(plat.home)
    r = httpx.post(f"{plat.url}/api/v1/services", headers=AUTH_HEADERS, timeout=120,
                   files={"package": ("model.zip", data, "application/zip")},
                   data={"spec": json.dumps({"replicas": 0})})
    if r.status_code == 201:  # accepted whole: its view renders, then it goes
        name = r.json()["name"]
        view = httpx.get(f"{plat.url}/api/v1/services/{name}", headers=AUTH_HEADERS,
                         timeout=60)
        assert view.status_code == 200, f"{what}: created, then {view.status_code} {view.text}"
        assert httpx.delete(f"{plat.url}/api/v1/services/{name}", headers=AUTH_HEADERS,
                            timeout=60).status_code == 200
        return
    assert_response(r, what)
    left = _contents(plat.home) - before
    assert not left, f"{what}: refused, but left {sorted(left)[:5]}"


def zip_of(config: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", config)
        zf.writestr("predict.py", ECHO)
    return buf.getvalue()


def test_the_platform_refuses_hostile_uploads_and_keeps_nothing(
        bad_input: RunningPlatform, tmp_path: Path) -> None:
    home = bad_input.home
    for case, data in sorted(known_zips().items()):
        upload(bad_input, data, case)

    @PLATFORM
    @given(data=zips())
    def zips_through_the_api(data: bytes) -> None:
        upload(bad_input, data, f"zip {data[:60]!r}")

    @PLATFORM
    @given(config=configs())
    def configs_through_the_api(config: bytes) -> None:
        upload(bad_input, zip_of(config), f"config.json {config[:120]!r}")

    zips_through_the_api()
    configs_through_the_api()
    deep = b'{"name": "x", "predictor": "p:P", "input": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    for what, config in (("deep", deep), ("surrogate", b'{"name": "\\ud800", "predictor": '
                                                       b'"predict:Predictor", "input": []}'),
                         ("nan", b'{"name": "x", "predictor": "predict:Predictor", '
                                 b'"input": [], "timeout_s": NaN}'),
                         ("wide shape", json.dumps({**GOOD_CONFIG, "input": [
                             {"name": "text", "type": "tensor", "shape": [2**70]}]}).encode())):
        upload(bad_input, zip_of(config), what)
    # a good upload still works
    good = echo_package(tmp_path / "good")
    (good / "config.json").write_text(json.dumps({**GOOD_CONFIG, "name": "after-fuzz"}))
    (good / "predict.py").write_text(ECHO)
    import modelport

    with modelport.Client(bad_input.url, home=home) as client:
        svc = client.create(str(good), name="after-fuzz")
        assert svc["phase"] == "running", svc
        r = httpx.post(f"{bad_input.url}/v1/services/after-fuzz/infer", json={"text": "ok"},
                       timeout=60)
        assert r.status_code == 200 and r.json()["data"]["echo"] == "ok", r.text
        client.delete("after-fuzz")

