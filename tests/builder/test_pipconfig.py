"""Carrying the host's pip index configuration over to uv."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from services.builder.pipconfig import (
    parse_config_list,
    read_pip_config,
    redact,
    uv_environment,
)


def test_config_list_output_is_parsed_with_pip_precedence() -> None:
    text = (
        "global.index-url='https://mirror.example/simple'\n"
        "global.find-links='/opt/wheels'\n"
        "install.find-links='/srv/wheels'\n"
        "global.timeout='60'\n"
        ":env:.extra-index-url='https://a.example/simple https://b.example/simple'\n"
    )

    assert parse_config_list(text) == {
        "index-url": "https://mirror.example/simple",
        "find-links": "/srv/wheels",
        "extra-index-url": "https://a.example/simple https://b.example/simple",
    }


def test_pip_options_become_uv_variables(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    cert = tmp_path / "ca.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    local_index = tmp_path / "simple"
    local_index.mkdir()
    pip = {
        "index-url": "https://mirror.example/simple",
        "extra-index-url": f"file://{local_index} file:///does/not/exist/simple "
                           "https://extra.example/simple",
        "find-links": f"{wheels} /does/not/exist",
        "cert": str(cert),
        "trusted-host": "mirror.example",
    }

    assert uv_environment(pip, {}) == {
        "UV_INDEX_URL": "https://mirror.example/simple",
        "UV_EXTRA_INDEX_URL": f"file://{local_index} https://extra.example/simple",
        "UV_INDEX_STRATEGY": "unsafe-best-match",
        "UV_FIND_LINKS": str(wheels),
        "SSL_CERT_FILE": str(cert),
        "UV_INSECURE_HOST": "mirror.example",
    }


def test_what_the_operator_set_for_uv_wins(tmp_path: Path) -> None:
    pip = {"index-url": "https://mirror.example/simple",
           "extra-index-url": "https://extra.example/simple", "no-index": "true"}
    environ = {"UV_DEFAULT_INDEX": "https://uv.example/simple", "UV_INDEX_STRATEGY": "first-index"}

    assert uv_environment(pip, environ) == {
        "UV_EXTRA_INDEX_URL": "https://extra.example/simple", "UV_NO_INDEX": "1"}
    assert uv_environment({"index-url": "file:///does/not/exist"}, {}) == {}


def test_the_real_pip_reports_a_config_file_and_pip_variables(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.example/simple\n"
                    "extra-index-url =\n    https://a.example/simple\n"
                    "    https://b.example/simple\n"
                    f"[install]\nfind-links = {wheels}\n")
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
               "PIP_CONFIG_FILE": str(conf), "PIP_TRUSTED_HOST": "a.example"}

    pip = asyncio.run(read_pip_config(sys.executable, environ))

    assert pip["index-url"] == "https://mirror.example/simple"
    assert pip["extra-index-url"].split() == ["https://a.example/simple",
                                              "https://b.example/simple"]
    assert pip["find-links"] == str(wheels)
    assert pip["trusted-host"] == "a.example"
    uv = uv_environment(pip, {})
    assert uv["UV_EXTRA_INDEX_URL"] == "https://a.example/simple https://b.example/simple"
    assert uv["UV_FIND_LINKS"] == str(wheels)


def test_a_python_without_pip_gives_just_the_pip_variables(tmp_path: Path) -> None:
    environ = {"PATH": os.environ.get("PATH", ""), "PIP_INDEX_URL": "https://m.example/simple"}

    pip = asyncio.run(read_pip_config(str(tmp_path / "no-such-python"), environ))

    assert pip == {"index-url": "https://m.example/simple"}


def test_credentials_are_hidden_in_logged_urls() -> None:
    assert redact("https://user:s3cret@mirror.example/simple https://plain.example/") == \
        "https://***@mirror.example/simple https://plain.example/"
