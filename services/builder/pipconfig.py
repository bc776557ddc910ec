"""The host's package-index configuration, carried over to uv.

pip reads pip.conf and the `PIP_*` variables itself; uv reads neither. So before its
first uv build the builder asks the host's pip for its configuration (`pip config list`)
and translates the index settings into uv's variables, so that uv installs from the same
places pip would. Settings the operator gave uv directly (`UV_*`) are left alone.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

#: the pip options that say where packages come from
KEYS = ("index-url", "extra-index-url", "find-links", "cert", "no-index", "trusted-host")
#: later sections override earlier ones, as in pip: [global] < [install] < PIP_* variables
_SECTIONS = ("global", "install", ":env:")
_LINE = re.compile(r"^(?P<section>[^.]+)\.(?P<key>[^=]+)=(?P<value>.*)$")


async def read_pip_config(python: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The index options pip on this host would use: its config files, then `PIP_*`."""
    found: dict[str, str] = {}
    try:
        proc = await asyncio.create_subprocess_exec(
            python, "-m", "pip", "config", "list", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=dict(environ))
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except (OSError, TimeoutError) as exc:
        log.warning("could not read the host's pip configuration: %s", exc)
        out, err = b"", b""
    else:
        if proc.returncode != 0:
            log.warning("`pip config list` failed (exit %s): %s", proc.returncode,
                        err.decode(errors="replace").strip()[-500:])
    found.update(parse_config_list(out.decode(errors="replace")))
    for key in KEYS:
        if value := environ.get("PIP_" + key.upper().replace("-", "_")):
            found[key] = value
    return found


def parse_config_list(text: str) -> dict[str, str]:
    """`pip config list` output (`global.index-url='https://...'`) -> {option: value}."""
    ranked: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m or m["key"] not in KEYS or m["section"] not in _SECTIONS:
            continue
        raw = m["value"]
        try:
            value = str(ast.literal_eval(raw))
        except (ValueError, SyntaxError):
            value = raw
        rank = _SECTIONS.index(m["section"])
        if m["key"] not in ranked or rank >= ranked[m["key"]][0]:
            ranked[m["key"]] = (rank, value)
    return {key: value for key, (_, value) in ranked.items()}


def uv_environment(pip: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Translate pip's index options into the uv variables that say the same thing.

    `file://` indexes and local find-links that do not exist are dropped (uv fails on
    them where pip only warns). Extra indexes get pip's resolution strategy (the best
    version across all indexes) unless the operator chose one for uv.
    """
    out: dict[str, str] = {}

    def unset(*names: str) -> bool:
        return not any(name in environ for name in names)

    index = pip.get("index-url", "").strip()
    if index and _reachable(index) and unset("UV_INDEX_URL", "UV_DEFAULT_INDEX"):
        out["UV_INDEX_URL"] = index
    extras = [url for url in pip.get("extra-index-url", "").split() if _reachable(url)]
    if extras and unset("UV_EXTRA_INDEX_URL", "UV_INDEX"):
        out["UV_EXTRA_INDEX_URL"] = " ".join(extras)
        if unset("UV_INDEX_STRATEGY"):
            out["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    links = [link for link in pip.get("find-links", "").split() if _reachable(link)]
    if links and unset("UV_FIND_LINKS"):
        out["UV_FIND_LINKS"] = ",".join(links)
    cert = pip.get("cert", "").strip()
    if cert and Path(cert).is_file() and unset("SSL_CERT_FILE"):
        out["SSL_CERT_FILE"] = cert
    if _truthy(pip.get("no-index", "")) and unset("UV_NO_INDEX"):
        out["UV_NO_INDEX"] = "1"
    hosts = pip.get("trusted-host", "").split()
    if hosts and unset("UV_INSECURE_HOST"):
        out["UV_INSECURE_HOST"] = " ".join(hosts)
    return out


def redact(value: str) -> str:
    """Hide credentials in index URLs (`https://user:token@host`) before logging them."""
    return re.sub(r"(://)[^/@\s]+@", r"\1***@", value)


def _reachable(location: str) -> bool:
    """False only for local locations (file:// URLs, paths) that do not exist."""
    if location.startswith("file:"):
        return Path(unquote(urlsplit(location).path)).exists()
    if "://" in location:
        return True
    return Path(location).expanduser().exists()


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}
