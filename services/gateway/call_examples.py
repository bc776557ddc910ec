"""Runnable call examples (curl, stdlib Python, SDK) built from a service's actual inputs.

Values come from an input's `example` in config.json when it has one; files are
read from a path named after the input (the file contract's own `path` basename).
"""

from __future__ import annotations

import json
import shlex
from typing import Any


def _sample(inp: dict[str, Any]) -> Any:
    if "example" in inp:
        return inp["example"]
    return {"text": "hello", "number": 1, "json": {}, "tensor": [[0.0]]}.get(inp["type"], None)


def _filename(inp: dict[str, Any]) -> str:
    path = inp.get("path") or ""
    return path.rsplit("/", 1)[-1] if path else f"{inp['name']}.bin"


def _is_file(inp: dict[str, Any]) -> bool:
    return inp["type"] in ("image", "file")


def curl(url: str, inputs: list[dict[str, Any]]) -> str:
    if any(_is_file(i) for i in inputs):
        parts = []
        for i in inputs:
            if _is_file(i):
                parts.append(f"-F {shlex.quote(i['name'] + '=@' + _filename(i))}")
            else:
                v = _sample(i)
                text = v if isinstance(v, str) else json.dumps(v)
                parts.append(f"-F {shlex.quote(i['name'] + '=' + text)}")
        return f"curl -sS -X POST {url} " + " ".join(parts)
    body = json.dumps({i["name"]: _sample(i) for i in inputs})
    return f"curl -sS -X POST {url} -H 'Content-Type: application/json' -d {shlex.quote(body)}"


def python(url: str, inputs: list[dict[str, Any]]) -> str:
    lines = ["import base64, json, urllib.request", "", "inputs = {"]
    for i in inputs:
        if _is_file(i):
            lines.append(f"    {i['name']!r}: base64.b64encode(open({_filename(i)!r}, 'rb')"
                         ".read()).decode(),")
        else:
            lines.append(f"    {i['name']!r}: {_sample(i)!r},")
    lines += [
        "}",
        f"req = urllib.request.Request({url!r}, data=json.dumps(inputs).encode(),",
        "                             headers={'Content-Type': 'application/json'})",
        "print(json.load(urllib.request.urlopen(req)))",
    ]
    return "\n".join(lines)


def sdk(base_url: str, name: str, inputs: list[dict[str, Any]]) -> str:
    args = ", ".join(
        f"{i['name']}=open({_filename(i)!r}, 'rb').read()" if _is_file(i)
        else f"{i['name']}={_sample(i)!r}" for i in inputs)
    return (f"import modelport\nclient = modelport.Client({base_url!r})\n"
            f"print(client.predict({name!r}, {args}))")


def with_auth(examples: dict[str, str], base_url: str, name: str,
              inputs: list[dict[str, Any]]) -> dict[str, str]:
    """The examples of a service with ``auth.required``: a key from the environment
    (``MODELPORT_KEY``, from ``modelport keys create --scope invoke:NAME``), and an
    AK/SK-signed call (docs/security.md)."""
    out = dict(examples)
    out["curl"] = examples["curl"].replace(
        "curl -sS -X POST ", "curl -sS -X POST -H \"Authorization: Bearer $MODELPORT_KEY\" ", 1)
    out["python"] = ("import os\n" + examples["python"]).replace(
        "headers={'Content-Type': 'application/json'}",
        "headers={'Content-Type': 'application/json',\n"
        "                                      'Authorization': 'Bearer ' + "
        "os.environ['MODELPORT_KEY']}", 1)
    out["sdk"] = examples["sdk"].replace(
        f"modelport.Client({base_url!r})",
        f"modelport.Client({base_url!r}, token=os.environ['MODELPORT_KEY'])", 1)
    out["sdk"] = "import os\n" + out["sdk"]
    out["signed"] = examples["sdk"].replace(
        f"modelport.Client({base_url!r})",
        f"modelport.Client({base_url!r}, access_key=os.environ['MODELPORT_ACCESS_KEY'],\n"
        "                          secret_key=os.environ['MODELPORT_SECRET_KEY'])", 1)
    out["signed"] = "import os\n" + out["signed"]
    return out
