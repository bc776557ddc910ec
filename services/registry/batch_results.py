"""A finished batch job's output in ModelArts' layout, so existing post-processing works:

    infer-result-{id}.manifest         one JSON line per item: source, result
                                       (SUCCESSFUL | FAILED), inference-loc, error_message
    infer-result-{id}/<name>_result.txt  the item's output JSON (successful items only)

`<name>` is the last path segment of the item's source (ModelArts' own naming, e.g.
`IMG_1.jpg_result.txt`); when two items share it, the later ones use their whole source
flattened, then their index, so every item keeps a file of its own.
"""

from __future__ import annotations

import base64
import json
import re
import zipfile
from collections.abc import Iterable
from typing import IO

from services.registry.store.batches import ItemRecord

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def result_names(sources: Iterable[str]) -> list[str]:
    """One unique `<name>_result.txt` per source, in order."""
    taken: set[str] = set()
    out = []
    for index, source in enumerate(sources):
        last = source.rstrip("/").rsplit("/", 1)[-1]
        for candidate in (last, source, f"{source}-{index}"):
            name = _UNSAFE.sub("_", candidate).strip("._") or f"item-{index}"
            if name not in taken:
                break
        taken.add(name)
        out.append(f"{name}_result.txt")
    return out


def output_text(item: ItemRecord) -> bytes:
    """The item's output JSON as the model wrote it; bytes outputs as a base64 JSON string."""
    if item.output_kind == "json" and item.output is not None:
        return item.output
    return json.dumps(base64.b64encode(item.output or b"").decode()).encode()


def manifest_lines(batch_id: str, items: list[ItemRecord]) -> list[dict[str, str]]:
    folder = f"infer-result-{batch_id}"
    lines = []
    for item, name in zip(items, result_names(i.source for i in items), strict=True):
        ok = item.state == "succeeded"
        lines.append({"source": item.source, "result": "SUCCESSFUL" if ok else "FAILED",
                      "inference-loc": f"{folder}/{name}" if ok else "",
                      "error_message": "" if ok else (item.error or item.state)})
    return lines


def write_zip(batch_id: str, items: list[ItemRecord], out: IO[bytes]) -> None:
    lines = manifest_lines(batch_id, items)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr(f"infer-result-{batch_id}.manifest",
                   "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
        for item, line in zip(items, lines, strict=True):
            if line["inference-loc"]:
                z.writestr(line["inference-loc"], output_text(item))
