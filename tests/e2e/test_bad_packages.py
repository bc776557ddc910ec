"""Bad packages each get a clear error (REST 4xx naming the problem, CLI exit 1) and leave
nothing half-created."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import AUTH_HEADERS, start_platform
from tests.e2e.packages import EXAMPLES, zipped

CLI = str(Path(sys.executable).parent / "modelport")
GOOD_CONFIG = {"name": "bad", "predictor": "predict:Predictor",
               "input": [{"name": "text", "type": "text"}]}
GOOD_CODE = "class Predictor:\n    def predict(self, text):\n        return text\n"
LIMITS = {"MODELPORT_REGISTRY_MAX_ENTRIES": "200",
          "MODELPORT_REGISTRY_MAX_UNCOMPRESSED_BYTES": str(4 * 1024 * 1024),
          "MODELPORT_REGISTRY_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024),
          "MODELPORT_GATEWAY_MAX_UPLOAD_BYTES": str(2 * 1024 * 1024)}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory):
    plat = start_platform(tmp_path_factory.mktemp("home"), env=LIMITS)
    yield plat
    plat.stop()


def _zip(entries: dict[str, bytes | str], *, symlink: str | None = None,
         stored: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _good(**extra: bytes | str) -> dict[str, bytes | str]:
    return {"config.json": json.dumps(GOOD_CONFIG), "predict.py": GOOD_CODE, **extra}


BAD: dict[str, tuple[bytes, str, str]] = {
    # case: (zip bytes, expected error code, word the message must contain)
    "no_config": (_zip({"predict.py": GOOD_CODE}), "package.config_missing", "config.json"),
    "invalid_json": (_zip({"config.json": "{not json", "predict.py": GOOD_CODE}),
                     "package.config_invalid_json", "JSON"),
    "unknown_input_type": (_zip(_good(**{"config.json": json.dumps(
        {**GOOD_CONFIG, "input": [{"name": "v", "type": "video"}]})})), "package.invalid",
        "video"),
    "missing_entrypoint": (_zip({"config.json": json.dumps(
        {"name": "fc", "input": [{"path": "in.txt", "type": "text"}],
         "output": [{"path": "out.json", "type": "json"}], "base_image": "python:3.11",
         "entrypoint": "python inference.py"})}), "package.invalid", "inference.py"),
    "dotdot": (_zip(_good(**{"../evil.py": "x"})), "package.zip_slip", ".."),
    "absolute": (_zip(_good(**{"/etc/evil.py": "x"})), "package.zip_slip", "/etc/evil.py"),
    "symlink": (_zip(_good(), symlink="link"), "package.symlink", "link"),
    "too_many_entries": (_zip(_good(**{f"f{i}.txt": "x" for i in range(250)})),
                         "package.too_many_entries", "200"),
    "too_large_uncompressed": (_zip(_good(**{"zeros.bin": b"\0" * (6 * 1024 * 1024)})),
                               "package.too_large", "4.0 MiB"),
    "not_a_zip": (b"this is not a zip file", "package.not_a_zip", "zip"),
}


def _state_is_clean(plat, client: httpx.Client) -> None:
    assert client.get("/api/v1/services").json()["services"] == []
    packages = plat.home / "packages"
    assert not [p for p in packages.iterdir() if p.name.startswith(".incoming")]
    assert not list((plat.home / "uploads").iterdir())


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_package_rest(limited, case: str) -> None:
    data, code, word = BAD[case]
    with httpx.Client(base_url=limited.url, timeout=60, headers=AUTH_HEADERS) as client:
        r = client.post("/api/v1/services", files={"package": ("p.zip", data)})
        assert 400 <= r.status_code < 500, r.text
        err = r.json()["error"]
        text = json.dumps(err)
        assert err["code"] == code, text
        assert word in text, text
        assert err.get("fix") or all(p.get("fix") for p in err.get("problems", [])), text
        _state_is_clean(limited, client)


@pytest.mark.parametrize("case", ["no_config", "symlink", "unknown_input_type"])
def test_bad_package_cli(limited, tmp_path: Path, case: str) -> None:
    data, code, word = BAD[case]
    pkg = tmp_path / "bad.zip"
    pkg.write_bytes(data)
    res = subprocess.run([CLI, "create", str(pkg), "--url", limited.url], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 1
    assert word in res.stderr, res.stderr
    res = subprocess.run([CLI, "create", str(pkg), "--url", limited.url, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and json.loads(res.stdout)["error"]["code"] == code


def test_upload_over_limit_is_413(limited) -> None:
    import os

    blob = _zip(_good(**{"noise.bin": os.urandom(3 * 1024 * 1024)}), stored=True)
    with httpx.Client(base_url=limited.url, timeout=60, headers=AUTH_HEADERS) as client:
        r = client.post("/api/v1/services", files={"package": ("p.zip", blob)})
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "package.upload_too_large"
        _state_is_clean(limited, client)


def test_uninstallable_requirement_fails_cleanly(limited, tmp_path: Path) -> None:
    src = tmp_path / "badreq"
    src.mkdir()
    (src / "config.json").write_text(json.dumps(GOOD_CONFIG))
    (src / "predict.py").write_text(GOOD_CODE)
    (src / "requirements.txt").write_text("this-package-does-not-exist-xyz==1.0\n")
    res = subprocess.run([CLI, "create", str(zipped(src, tmp_path / "b.zip")), "--url",
                          limited.url, "--json"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 1, res.stdout
    err = json.loads(res.stdout)["error"]
    assert "this-package-does-not-exist-xyz" in err["build_log_tail"]
    assert "failed to build" in err["reason"]
    assert err["service_removed"] is True
    with httpx.Client(base_url=limited.url, timeout=60, headers=AUTH_HEADERS) as client:
        assert err["service"] not in [s["name"] for s in
                                      client.get("/api/v1/services").json()["services"]]
        versions = client.get(f"/api/v1/models/{err['service']}/versions").json()["versions"]
        assert [v["state"] for v in versions] == ["failed"]
        log = client.get(f"/api/v1/models/{err['service']}/versions/1/build-log")
        assert "this-package-does-not-exist-xyz" in log.text


def test_good_package_still_deploys_after_bad_ones(limited, tmp_path: Path) -> None:
    import modelport

    with modelport.Client(limited.url) as c:
        svc = c.create(EXAMPLES / "predictor-iris", name="after-bad")
        r = c.predict(svc["name"], features=[5.1, 3.5, 1.4, 0.2])
        assert r["data"]["label"] == "setosa"
        c.delete(svc["name"])
