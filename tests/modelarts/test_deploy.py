"""ModelArts packages deploy and answer unmodified: an image classifier (numpy behind
PTServingBaseService) over multipart and JSON, and a scikit-learn-style model behind
XgSkServingBaseService with the manual's req_data JSON."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import httpx
import pytest

import modelport
from tests.conftest import RunningPlatform

PACKAGES = Path(__file__).parent / "packages"


def png(grey: int, size: int = 16) -> bytes:
    """A size x size greyscale PNG of one shade, written with the stdlib."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + bytes([grey]) * size for _ in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0,
                                                              0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def services(platform: RunningPlatform) -> dict[str, dict]:
    with modelport.Client(platform.url) as c:
        return {"image": c.create(PACKAGES / "pt_image", name="ma-image"),
                "sk": c.create(PACKAGES / "sk_json", name="ma-sk")}


def test_image_over_multipart_and_json(services: dict[str, dict]) -> None:
    svc = services["image"]
    assert svc["kind"] == "modelarts"
    assert [(i["name"], i["type"]) for i in svc["inputs"]] == [("images", "file")]
    r = httpx.post(svc["url"], files={"images": ("white.png", png(250), "image/png")},
                   timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["predicted_label"] == "bright" and data["file_name"] == "white.png"
    assert [label for label, _ in data["scores"]] == ["dark", "bright"]
    # the JSON form of the same API: the image as base64, decoded by the service's own code
    r = httpx.post(svc["url"], json={"images": base64.b64encode(png(5)).decode()}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["predicted_label"] == "dark"


def test_model_error_names_the_exception(services: dict[str, dict]) -> None:
    r = httpx.post(services["image"]["url"], files={"images": ("x.png", b"not an image")},
                   timeout=60)
    assert r.status_code == 500, r.text
    assert r.json()["error"]["code"] == "model.error"
    assert "UnidentifiedImageError" in r.json()["error"]["message"]


def test_req_data_json_through_the_ml_base_class(services: dict[str, dict]) -> None:
    body = {"data": {"req_data": [{"x1": 0.9, "x2": 0.5}, {"x1": 0.1, "x2": 0.2}]}}
    r = httpx.post(services["sk"]["url"], json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"resp_data": [{"predictresult": 1}, {"predictresult": 0}]}


def test_the_modelarts_route_answers_the_raw_body_and_modelarts_errors(
        platform: RunningPlatform, services: dict[str, dict]) -> None:
    """`/v1/infers/{name}` is ModelArts' URL: the body `_postprocess` returned, no envelope
    (and a finer `apis` path reaches the same model); errors as {error_code, error_msg}."""
    body = {"data": {"req_data": [{"x1": 0.9, "x2": 0.5}]}}
    for path in ("/v1/infers/ma-sk", "/v1/infers/ma-sk/predictions/poetry"):
        r = httpx.post(platform.url + path, json=body, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json() == {"resp_data": [{"predictresult": 1}]}
        assert r.headers["content-type"] == "application/json"
    r = httpx.post(platform.url + "/v1/infers/ma-image",
                   files={"images": ("white.png", png(250), "image/png")}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["predicted_label"] == "bright" and "result" not in r.json()
    # the envelope route is unchanged
    enveloped = httpx.post(services["sk"]["url"], json=body, timeout=60).json()
    assert enveloped["result"] is True and enveloped["data"]["resp_data"]

    broken = httpx.post(platform.url + "/v1/infers/ma-image",
                        files={"images": ("x.png", b"not an image")}, timeout=60)
    assert broken.status_code == 500
    assert broken.json()["error_code"] == "model.error"
    assert "UnidentifiedImageError" in broken.json()["error_msg"]
    missing = httpx.post(platform.url + "/v1/infers/no-such-service", json=body, timeout=60)
    assert missing.status_code == 404
    assert set(missing.json()) == {"error_code", "error_msg"}
    assert "no-such-service" in missing.json()["error_msg"]
