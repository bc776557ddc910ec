"""A batch job's input, read from what a user has and packed into one archive to upload.

What `--input` may be (ModelArts' batch inputs, and one of our own):
- a folder: one item per file (hidden files and zip-tool noise left out), sent as the
  service's single file, image or text input;
- a ModelArts `.manifest`: one JSON per line whose `source` is a local file (relative to
  the manifest, or absolute), sent the same way; the output keeps each `source` as written;
- a `.csv`: one item per row, its cells mapped to the service's inputs by column index as
  ModelArts maps `req_data` (a first row equal to the input names is a header);
- a `.jsonl`: one request body per line, exactly as `POST /v1/services/NAME/infer` takes.

The archive holds `items.jsonl` (`{"source", "inputs", "files"}` per item) and the files;
the registry checks it again (services/registry/batches.py), so this module only has to
turn user input into it and say clearly what is wrong with that input.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import ModelportError, invalid

FILE_TYPES = ("file", "image")
SINGLE_TYPES = ("file", "image", "text")
_NOISE = {"__MACOSX", ".DS_Store", "Thumbs.db"}


@dataclass
class Packed:
    data: bytes
    kind: str  # folder | manifest | csv | jsonl
    total: int


def input_kind(path: Path) -> str:
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    kinds = {".manifest": "manifest", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
    if path.is_file() and suffix in kinds:
        return kinds[suffix]
    if not path.exists():
        raise invalid("batch.input_missing", f"{path} does not exist",
                      "point --input at a folder, a .manifest, a .csv or a .jsonl file")
    raise invalid("batch.input_kind", f"{path} is not a folder, .manifest, .csv or .jsonl",
                  "rename it, or put the files in a folder")


def pack(path: Path, inputs: list[dict[str, Any]]) -> Packed:
    """`path` read as its kind says, for a service with these `inputs` ({name, type})."""
    kind = input_kind(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        writer = _Writer(z)
        if kind == "folder":
            target = single_input(inputs, path)
            for file in sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(
                    p.relative_to(path))):
                writer.file_item(file.relative_to(path).as_posix(), file, target)
        elif kind == "manifest":
            target = single_input(inputs, path)
            for n, line in _lines(path):
                writer.file_item(*_manifest_source(path, n, line), target)
        elif kind == "csv":
            _csv_items(path, inputs, writer)
        else:
            for n, line in _lines(path):
                try:
                    body = json.loads(line)
                except ValueError as exc:
                    raise _bad(path, n, f"is not JSON: {exc}", "one JSON object per line") from exc
                if not isinstance(body, dict):
                    raise _bad(path, n, "is not a JSON object", "one request body per line")
                writer.json_item(f"{path.name}:{n}", body)
        writer.close()
    if writer.count == 0:
        raise invalid("batch.empty", f"{path} holds no items",
                      "a folder with files, or a file with at least one line")
    return Packed(buf.getvalue(), kind, writer.count)


class _Writer:
    def __init__(self, z: zipfile.ZipFile) -> None:
        self.z = z
        self.lines: list[str] = []

    @property
    def count(self) -> int:
        return len(self.lines)

    def file_item(self, source: str, file: Path, target: dict[str, Any]) -> None:
        if target["type"] == "text":
            try:
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise invalid("batch.not_text", f"{file} is not UTF-8 text, and the "
                              f"service's input {target['name']!r} is text",
                              "give text files, or use a service with a file input") from exc
            self.json_item(source, {target["name"]: text})
            return
        member = f"files/{self.count}"
        self.z.write(file, member)
        self.lines.append(json.dumps({"source": source, "inputs": {}, "files": {
            target["name"]: {"member": member, "filename": file.name}}}))

    def json_item(self, source: str, inputs: dict[str, Any]) -> None:
        self.lines.append(json.dumps({"source": source, "inputs": inputs, "files": {}}))

    def close(self) -> None:
        self.z.writestr("items.jsonl", "".join(line + "\n" for line in self.lines))


def single_input(inputs: list[dict[str, Any]], path: Path) -> dict[str, Any]:
    """The one input a file goes to, or a clear error naming what the service takes."""
    if len(inputs) == 1 and inputs[0].get("type") in SINGLE_TYPES:
        return inputs[0]
    takes = ", ".join(f"{i['name']}:{i.get('type')}" for i in inputs) or "no declared inputs"
    raise invalid("batch.needs_one_input",
                  f"{path.name}: one file per item needs a service with one file, image or "
                  f"text input; this one takes {takes}",
                  "give a .jsonl of request bodies (or a .csv) instead")


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") or part in _NOISE for part in rel.parts)


def _lines(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8-sig")
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _bad(path: Path, n: int, what: str, fix: str) -> ModelportError:
    return invalid("batch.bad_line", f"{path.name} line {n} {what}", fix, path=f"{path}:{n}")


def _manifest_source(path: Path, n: int, line: str) -> tuple[str, Path]:
    try:
        entry = json.loads(line)
    except ValueError as exc:
        raise _bad(path, n, f"is not JSON: {exc}", 'one {"source": "..."} per line') from exc
    source = entry.get("source") if isinstance(entry, dict) else None
    if not isinstance(source, str) or not source:
        raise _bad(path, n, "has no 'source'", 'each line is {"source": "path/to/file"}')
    local = Path(source.removeprefix("file://"))
    file = local if local.is_absolute() else path.parent / local
    if not file.is_file():
        raise _bad(path, n, f"names {source}, which is not a file here",
                   "a manifest's sources must be local files (download obs:// ones first)")
    return source, file


def _csv_items(path: Path, inputs: list[dict[str, Any]], writer: _Writer) -> None:
    names = [i["name"] for i in inputs]
    if any(i.get("type") in FILE_TYPES for i in inputs):
        raise invalid("batch.csv_file_input", f"{path.name}: a CSV cannot carry the "
                      "service's file inputs", "give a folder or a manifest of files")
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    for n, row in enumerate(rows, 1):
        if not row or (n == 1 and row == names):
            continue
        if len(row) > len(names):
            raise _bad(path, n, f"has {len(row)} columns; the service takes {len(names)} "
                       f"inputs ({', '.join(names)})", "one column per input, in that order")
        writer.json_item(f"{path.name}:{n}", {  # fewer cells: the inputs left out
            i["name"]: _cell(cell, i.get("type", "text"))
            for i, cell in zip(inputs, row, strict=False)})


def _cell(cell: str, type_: str) -> Any:
    """A CSV cell as the input's type takes it: numbers and JSON parsed, text as is."""
    if type_ in ("number", "json", "tensor"):
        try:
            return json.loads(cell)
        except ValueError:
            return cell  # the service's own input check says what is wrong
    return cell
